/*
 * nn_windows.c - the netioapi contract, natively: iphlpapi does the work, this file
 * converts its MIB_* rows into the core's rows and its callbacks into core deliveries.
 *
 * Every iphlpapi function is resolved at run time with GetProcAddress: Wine and
 * stripped-down Windows lack some of them (GetIpInterfaceEntry, GetTeredoPort, ...),
 * and a missing import must become a Python NotSupportedError, never a dead process.
 *
 * The OS owns the callback threads. It serializes the callbacks of one registration,
 * and CancelMibChangeNotify2 waits for a running callback of its handle: so a cancel
 * asked for from inside that callback is handed to the thread pool instead.
 */
#include "netnotify.h"

#include <iphlpapi.h>
#include <netioapi.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ resolved calls */

typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_notify_if)(ADDRESS_FAMILY, PIPINTERFACE_CHANGE_CALLBACK, PVOID, BOOLEAN,
                                                    HANDLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_notify_addr)(ADDRESS_FAMILY, PUNICAST_IPADDRESS_CHANGE_CALLBACK, PVOID,
                                                      BOOLEAN, HANDLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_notify_route)(ADDRESS_FAMILY, PIPFORWARD_CHANGE_CALLBACK, PVOID, BOOLEAN,
                                                       HANDLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_notify_stable)(ADDRESS_FAMILY, PMIB_UNICASTIPADDRESS_TABLE *,
                                                        PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK, PVOID, HANDLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_notify_teredo)(PTEREDO_PORT_CHANGE_CALLBACK, PVOID, BOOLEAN, HANDLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_cancel)(HANDLE);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_if_entry)(PMIB_IPINTERFACE_ROW);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_if_table)(ADDRESS_FAMILY, PMIB_IPINTERFACE_TABLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_addr_entry)(PMIB_UNICASTIPADDRESS_ROW);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_addr_table)(ADDRESS_FAMILY, PMIB_UNICASTIPADDRESS_TABLE *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_route_entry)(PMIB_IPFORWARD_ROW2);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_route_table)(ADDRESS_FAMILY, PMIB_IPFORWARD_TABLE2 *);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_get_teredo_port)(USHORT *);
typedef VOID(NETIOAPI_API_ *nn_fn_free_table)(PVOID);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_luid_to_index)(CONST NET_LUID *, PNET_IFINDEX);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_index_to_luid)(NET_IFINDEX, PNET_LUID);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_luid_to_name)(CONST NET_LUID *, PWSTR, SIZE_T);
typedef NETIO_STATUS(NETIOAPI_API_ *nn_fn_name_to_luid)(CONST WCHAR *, NET_LUID *);

static struct {
    nn_fn_notify_if notify_if;
    nn_fn_notify_addr notify_addr;
    nn_fn_notify_route notify_route;
    nn_fn_notify_stable notify_stable;
    nn_fn_notify_teredo notify_teredo;
    nn_fn_cancel cancel;
    nn_fn_get_if_entry get_if_entry;
    nn_fn_get_if_table get_if_table;
    nn_fn_get_addr_entry get_addr_entry;
    nn_fn_get_addr_table get_addr_table;
    nn_fn_get_route_entry get_route_entry;
    nn_fn_get_route_table get_route_table;
    nn_fn_get_teredo_port get_teredo_port;
    nn_fn_free_table free_table;
    nn_fn_luid_to_index luid_to_index;
    nn_fn_index_to_luid index_to_luid;
    nn_fn_luid_to_name luid_to_name;
    nn_fn_name_to_luid name_to_luid;
} nn_api;

/* GetProcAddress returns FARPROC; the cast through void (*)(void) says we mean it. */
#define NN_RESOLVE(dll, field, type, name) nn_api.field = (type)(void (*)(void))GetProcAddress((dll), (name))

/* Fails the calling function with ERROR_PROC_NOT_FOUND when a call is absent. */
#define NN_NEED(field, name)                                                   \
    do {                                                                       \
        if (nn_api.field == NULL) {                                            \
            nn_error_set(err, NN_ERROR_PROC_NOT_FOUND, (name));                \
            err->detail = "this system's iphlpapi.dll does not export it";     \
            return -1;                                                         \
        }                                                                      \
    } while (0)

int nn_backend_init(nn_error *err)
{
    HMODULE dll = LoadLibraryExW(L"iphlpapi.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);

    (void)err;
    if (dll == NULL)
        return 0; /* every call then reports ERROR_PROC_NOT_FOUND */
    NN_RESOLVE(dll, notify_if, nn_fn_notify_if, "NotifyIpInterfaceChange");
    NN_RESOLVE(dll, notify_addr, nn_fn_notify_addr, "NotifyUnicastIpAddressChange");
    NN_RESOLVE(dll, notify_route, nn_fn_notify_route, "NotifyRouteChange2");
    NN_RESOLVE(dll, notify_stable, nn_fn_notify_stable, "NotifyStableUnicastIpAddressTable");
    NN_RESOLVE(dll, notify_teredo, nn_fn_notify_teredo, "NotifyTeredoPortChange");
    NN_RESOLVE(dll, cancel, nn_fn_cancel, "CancelMibChangeNotify2");
    NN_RESOLVE(dll, get_if_entry, nn_fn_get_if_entry, "GetIpInterfaceEntry");
    NN_RESOLVE(dll, get_if_table, nn_fn_get_if_table, "GetIpInterfaceTable");
    NN_RESOLVE(dll, get_addr_entry, nn_fn_get_addr_entry, "GetUnicastIpAddressEntry");
    NN_RESOLVE(dll, get_addr_table, nn_fn_get_addr_table, "GetUnicastIpAddressTable");
    NN_RESOLVE(dll, get_route_entry, nn_fn_get_route_entry, "GetIpForwardEntry2");
    NN_RESOLVE(dll, get_route_table, nn_fn_get_route_table, "GetIpForwardTable2");
    NN_RESOLVE(dll, get_teredo_port, nn_fn_get_teredo_port, "GetTeredoPort");
    NN_RESOLVE(dll, free_table, nn_fn_free_table, "FreeMibTable");
    NN_RESOLVE(dll, luid_to_index, nn_fn_luid_to_index, "ConvertInterfaceLuidToIndex");
    NN_RESOLVE(dll, index_to_luid, nn_fn_index_to_luid, "ConvertInterfaceIndexToLuid");
    NN_RESOLVE(dll, luid_to_name, nn_fn_luid_to_name, "ConvertInterfaceLuidToNameW");
    NN_RESOLVE(dll, name_to_luid, nn_fn_name_to_luid, "ConvertInterfaceNameToLuidW");
    return 0; /* the module stays loaded for the life of the process */
}

static int nn_fail(nn_error *err, NETIO_STATUS status, const char *call)
{
    return nn_error_set(err, (uint32_t)status, call);
}

/* ------------------------------------------------------------------ rows */

static void nn_ip_from_sockaddr(nn_ip *ip, const SOCKADDR_INET *sa)
{
    memset(ip, 0, sizeof(*ip));
    if (sa->si_family == AF_INET) {
        ip->family = AF_INET;
        memcpy(ip->addr, &sa->Ipv4.sin_addr, 4);
    }
    else if (sa->si_family == AF_INET6) {
        ip->family = AF_INET6;
        memcpy(ip->addr, &sa->Ipv6.sin6_addr, 16);
        ip->scope_id = sa->Ipv6.sin6_scope_id;
    }
}

static void nn_sockaddr_from_ip(SOCKADDR_INET *sa, const nn_ip *ip)
{
    memset(sa, 0, sizeof(*sa));
    if (ip->family == AF_INET) {
        sa->Ipv4.sin_family = AF_INET;
        memcpy(&sa->Ipv4.sin_addr, ip->addr, 4);
    }
    else if (ip->family == AF_INET6) {
        sa->Ipv6.sin6_family = AF_INET6;
        memcpy(&sa->Ipv6.sin6_addr, ip->addr, 16);
        sa->Ipv6.sin6_scope_id = ip->scope_id;
    }
}

static uint8_t nn_offload_byte(const NL_INTERFACE_OFFLOAD_ROD *rod)
{
    uint8_t b = 0;
    memcpy(&b, rod, sizeof(*rod) < 1 ? sizeof(*rod) : 1);
    return b;
}

static void nn_if_from_mib(nn_if_row *r, const MIB_IPINTERFACE_ROW *m)
{
    int i;

    memset(r, 0, sizeof(*r));
    r->family = m->Family;
    r->interface_luid = m->InterfaceLuid.Value;
    r->interface_index = m->InterfaceIndex;
    r->max_reassembly_size = m->MaxReassemblySize;
    r->interface_identifier = m->InterfaceIdentifier;
    r->min_router_advertisement_interval = m->MinRouterAdvertisementInterval;
    r->max_router_advertisement_interval = m->MaxRouterAdvertisementInterval;
    r->advertising_enabled = m->AdvertisingEnabled != 0;
    r->forwarding_enabled = m->ForwardingEnabled != 0;
    r->weak_host_send = m->WeakHostSend != 0;
    r->weak_host_receive = m->WeakHostReceive != 0;
    r->use_automatic_metric = m->UseAutomaticMetric != 0;
    r->use_neighbor_unreachability_detection = m->UseNeighborUnreachabilityDetection != 0;
    r->managed_address_configuration_supported = m->ManagedAddressConfigurationSupported != 0;
    r->other_stateful_configuration_supported = m->OtherStatefulConfigurationSupported != 0;
    r->advertise_default_route = m->AdvertiseDefaultRoute != 0;
    r->router_discovery_behavior = (int32_t)m->RouterDiscoveryBehavior;
    r->dad_transmits = m->DadTransmits;
    r->base_reachable_time = m->BaseReachableTime;
    r->retransmit_time = m->RetransmitTime;
    r->path_mtu_discovery_timeout = m->PathMtuDiscoveryTimeout;
    r->link_local_address_behavior = (int32_t)m->LinkLocalAddressBehavior;
    r->link_local_address_timeout = m->LinkLocalAddressTimeout;
    for (i = 0; i < NN_SCOPE_LEVEL_COUNT && i < ScopeLevelCount; i++)
        r->zone_indices[i] = m->ZoneIndices[i];
    r->site_prefix_length = m->SitePrefixLength;
    r->metric = m->Metric;
    r->nl_mtu = m->NlMtu;
    r->connected = m->Connected != 0;
    r->supports_wake_up_patterns = m->SupportsWakeUpPatterns != 0;
    r->supports_neighbor_discovery = m->SupportsNeighborDiscovery != 0;
    r->supports_router_discovery = m->SupportsRouterDiscovery != 0;
    r->reachable_time = m->ReachableTime;
    r->transmit_offload = nn_offload_byte(&m->TransmitOffload);
    r->receive_offload = nn_offload_byte(&m->ReceiveOffload);
    r->disable_default_routes = m->DisableDefaultRoutes != 0;
}

static void nn_addr_from_mib(nn_addr_row *r, const MIB_UNICASTIPADDRESS_ROW *m)
{
    memset(r, 0, sizeof(*r));
    nn_ip_from_sockaddr(&r->address, &m->Address);
    r->interface_luid = m->InterfaceLuid.Value;
    r->interface_index = m->InterfaceIndex;
    r->prefix_origin = (int32_t)m->PrefixOrigin;
    r->suffix_origin = (int32_t)m->SuffixOrigin;
    r->valid_lifetime = m->ValidLifetime;
    r->preferred_lifetime = m->PreferredLifetime;
    r->on_link_prefix_length = m->OnLinkPrefixLength;
    r->skip_as_source = m->SkipAsSource != 0;
    r->dad_state = (int32_t)m->DadState;
    r->scope_id = m->ScopeId.Value;
    r->creation_time_stamp = m->CreationTimeStamp.QuadPart;
}

static void nn_route_from_mib(nn_route_row *r, const MIB_IPFORWARD_ROW2 *m)
{
    memset(r, 0, sizeof(*r));
    r->interface_luid = m->InterfaceLuid.Value;
    r->interface_index = m->InterfaceIndex;
    nn_ip_from_sockaddr(&r->destination_prefix, &m->DestinationPrefix.Prefix);
    r->destination_prefix_length = m->DestinationPrefix.PrefixLength;
    nn_ip_from_sockaddr(&r->next_hop, &m->NextHop);
    r->site_prefix_length = m->SitePrefixLength;
    r->valid_lifetime = m->ValidLifetime;
    r->preferred_lifetime = m->PreferredLifetime;
    r->metric = m->Metric;
    r->protocol = (int32_t)m->Protocol;
    r->loopback = m->Loopback != 0;
    r->autoconfigure_address = m->AutoconfigureAddress != 0;
    r->publish = m->Publish != 0;
    r->immortal = m->Immortal != 0;
    r->age = m->Age;
    r->origin = (int32_t)m->Origin;
}

/* ------------------------------------------------------------------ callbacks */

typedef struct {
    HANDLE handle;      /* NULL is possible with NO_ERROR (Wine's stubs) */
    HANDLE published;   /* event: the Notify* call has returned and handle is set */
    volatile LONG done; /* a stable-table callback has run: the OS ended it */
} nn_wreg;

static VOID NETIOAPI_API_ nn_if_callback(PVOID context, PMIB_IPINTERFACE_ROW row, MIB_NOTIFICATION_TYPE type)
{
    nn_if_row r;
    nn_event ev;

    memset(&ev, 0, sizeof ev);
    ev.type = (nn_notification_type)type;
    if (row != NULL && type != MibInitialNotification) {
        nn_if_from_mib(&r, row);
        ev.row = &r;
    }
    nn_core_deliver((nn_reg *)context, &ev);
}

static VOID NETIOAPI_API_ nn_addr_callback(PVOID context, PMIB_UNICASTIPADDRESS_ROW row, MIB_NOTIFICATION_TYPE type)
{
    nn_addr_row r;
    nn_event ev;

    memset(&ev, 0, sizeof ev);
    ev.type = (nn_notification_type)type;
    if (row != NULL && type != MibInitialNotification) {
        nn_addr_from_mib(&r, row);
        ev.row = &r;
    }
    nn_core_deliver((nn_reg *)context, &ev);
}

static VOID NETIOAPI_API_ nn_route_callback(PVOID context, PMIB_IPFORWARD_ROW2 row, MIB_NOTIFICATION_TYPE type)
{
    nn_route_row r;
    nn_event ev;

    memset(&ev, 0, sizeof ev);
    ev.type = (nn_notification_type)type;
    if (row != NULL && type != MibInitialNotification) {
        nn_route_from_mib(&r, row);
        ev.row = &r;
    }
    nn_core_deliver((nn_reg *)context, &ev);
}

static VOID NETIOAPI_API_ nn_teredo_callback(PVOID context, USHORT port, MIB_NOTIFICATION_TYPE type)
{
    nn_event ev;

    memset(&ev, 0, sizeof ev);
    ev.type = (nn_notification_type)type;
    ev.teredo_port = port;
    nn_core_deliver((nn_reg *)context, &ev);
}

static int nn_addr_table_from_mib(nn_table *table, const MIB_UNICASTIPADDRESS_TABLE *t)
{
    ULONG i;

    for (i = 0; t != NULL && i < t->NumEntries; i++) {
        nn_addr_row *slot = (nn_addr_row *)nn_table_push(table);
        if (slot == NULL)
            return -1;
        nn_addr_from_mib(slot, &t->Table[i]);
    }
    return 0;
}

/* The callback owns the table it receives (it frees it). */
static VOID NETIOAPI_API_ nn_stable_callback(PVOID context, PMIB_UNICASTIPADDRESS_TABLE t)
{
    nn_reg *reg = (nn_reg *)context;
    nn_wreg *w = (nn_wreg *)reg->backend;
    nn_table table;
    nn_event ev;

    if (w != NULL)
        InterlockedExchange(&w->done, 1);
    nn_table_init(&table, NN_KIND_STABLE);
    if (nn_addr_table_from_mib(&table, t) == 0) {
        memset(&ev, 0, sizeof ev);
        ev.table = &table;
        nn_core_deliver(reg, &ev);
    }
    nn_table_free(&table);
    if (t != NULL && nn_api.free_table != NULL)
        nn_api.free_table(t);
}

/* ------------------------------------------------------------------ register, cancel */

int nn_backend_register(nn_reg *reg, int *stable_now, nn_table *table, nn_error *err)
{
    ADDRESS_FAMILY family = (ADDRESS_FAMILY)reg->family;
    BOOLEAN initial = reg->initial_notification ? TRUE : FALSE;
    PMIB_UNICASTIPADDRESS_TABLE stable = NULL;
    NETIO_STATUS status = NO_ERROR;
    const char *call = "";
    nn_wreg *w;

    *stable_now = 0;
    switch (reg->kind) {
    case NN_KIND_INTERFACE:
        NN_NEED(notify_if, call = "NotifyIpInterfaceChange");
        break;
    case NN_KIND_ADDRESS:
        NN_NEED(notify_addr, call = "NotifyUnicastIpAddressChange");
        break;
    case NN_KIND_ROUTE:
        NN_NEED(notify_route, call = "NotifyRouteChange2");
        break;
    case NN_KIND_STABLE:
        NN_NEED(notify_stable, call = "NotifyStableUnicastIpAddressTable");
        NN_NEED(free_table, "FreeMibTable");
        break;
    case NN_KIND_TEREDO:
        NN_NEED(notify_teredo, call = "NotifyTeredoPortChange");
        break;
    default:
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "netnotify");
    }
    NN_NEED(cancel, "CancelMibChangeNotify2");
    w = (nn_wreg *)calloc(1, sizeof(*w));
    if (w == NULL)
        return nn_error_set(err, NN_ERROR_NOT_ENOUGH_MEMORY, call);
    w->published = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (w->published == NULL) {
        free(w);
        return nn_fail(err, GetLastError(), "CreateEventW");
    }
    reg->backend = w;
    /* The OS's reference: the context pointer stays valid until the cancel is done. */
    nn_reg_incref(reg);
    switch (reg->kind) {
    case NN_KIND_INTERFACE:
        status = nn_api.notify_if(family, nn_if_callback, reg, initial, &w->handle);
        break;
    case NN_KIND_ADDRESS:
        status = nn_api.notify_addr(family, nn_addr_callback, reg, initial, &w->handle);
        break;
    case NN_KIND_ROUTE:
        status = nn_api.notify_route(family, nn_route_callback, reg, initial, &w->handle);
        break;
    case NN_KIND_STABLE:
        status = nn_api.notify_stable(family, &stable, nn_stable_callback, reg, &w->handle);
        if (status == NO_ERROR) {
            int rc = nn_addr_table_from_mib(table, stable);
            nn_api.free_table(stable);
            SetEvent(w->published);
            nn_reg_decref(reg); /* nothing was registered */
            if (rc < 0)
                return nn_error_set(err, NN_ERROR_NOT_ENOUGH_MEMORY, call);
            *stable_now = 1;
            return 0;
        }
        if (status == ERROR_IO_PENDING)
            status = NO_ERROR;
        break;
    default: /* NN_KIND_TEREDO */
        status = nn_api.notify_teredo(nn_teredo_callback, reg, initial, &w->handle);
        break;
    }
    if (status != NO_ERROR)
        w->handle = NULL;
    /* A cancel asked for by a callback that ran inside the Notify* call waits for this. */
    SetEvent(w->published);
    if (status != NO_ERROR) {
        nn_reg_decref(reg);
        return nn_fail(err, status, call);
    }
    return 0;
}

static void nn_cancel_now(nn_reg *reg)
{
    nn_wreg *w = (nn_wreg *)reg->backend;

    /* The initial notification can run, and ask for this cancel, before the Notify*
     * call has returned the handle to cancel. */
    WaitForSingleObject(w->published, INFINITE);
    /* A NULL handle (Wine) was never a registration; a stable one that has called
     * back was ended by the OS. */
    if (w->handle != NULL && !InterlockedCompareExchange(&w->done, 0, 0))
        nn_api.cancel(w->handle);
    w->handle = NULL;
    nn_reg_decref(reg); /* the OS's reference */
}

static VOID CALLBACK nn_cancel_work(PTP_CALLBACK_INSTANCE instance, PVOID context)
{
    (void)instance;
    nn_cancel_now((nn_reg *)context);
}

void nn_backend_cancel(nn_reg *reg, int from_callback)
{
    if (reg->backend == NULL)
        return;
    /* CancelMibChangeNotify2 on the callback's own thread would wait for itself. The
     * core's cancelled flag already stops every later delivery. */
    if (from_callback && TrySubmitThreadpoolCallback(nn_cancel_work, reg, NULL))
        return;
    if (from_callback)
        return; /* no worker to be had: the registration stays, silenced, until exit */
    nn_cancel_now(reg);
}

void nn_backend_release(nn_reg *reg)
{
    nn_wreg *w = (nn_wreg *)reg->backend;

    if (w != NULL && w->published != NULL)
        CloseHandle(w->published);
    free(reg->backend);
    reg->backend = NULL;
}

void nn_backend_after_fork_child(void)
{
}

/* ------------------------------------------------------------------ tables, entries */

int nn_backend_get_table(nn_kind kind, int family, nn_table *table, nn_error *err)
{
    ADDRESS_FAMILY af = (ADDRESS_FAMILY)family;
    NETIO_STATUS status;
    ULONG i;
    int rc = 0;

    NN_NEED(free_table, "FreeMibTable");
    if (kind == NN_KIND_INTERFACE) {
        PMIB_IPINTERFACE_TABLE t = NULL;
        NN_NEED(get_if_table, "GetIpInterfaceTable");
        if ((status = nn_api.get_if_table(af, &t)) != NO_ERROR)
            return nn_fail(err, status, "GetIpInterfaceTable");
        for (i = 0; i < t->NumEntries && rc == 0; i++) {
            nn_if_row *slot = (nn_if_row *)nn_table_push(table);
            if (slot == NULL)
                rc = nn_error_set(err, NN_ERROR_NOT_ENOUGH_MEMORY, "GetIpInterfaceTable");
            else
                nn_if_from_mib(slot, &t->Table[i]);
        }
        nn_api.free_table(t);
    }
    else if (kind == NN_KIND_ROUTE) {
        PMIB_IPFORWARD_TABLE2 t = NULL;
        NN_NEED(get_route_table, "GetIpForwardTable2");
        if ((status = nn_api.get_route_table(af, &t)) != NO_ERROR)
            return nn_fail(err, status, "GetIpForwardTable2");
        for (i = 0; i < t->NumEntries && rc == 0; i++) {
            nn_route_row *slot = (nn_route_row *)nn_table_push(table);
            if (slot == NULL)
                rc = nn_error_set(err, NN_ERROR_NOT_ENOUGH_MEMORY, "GetIpForwardTable2");
            else
                nn_route_from_mib(slot, &t->Table[i]);
        }
        nn_api.free_table(t);
    }
    else {
        PMIB_UNICASTIPADDRESS_TABLE t = NULL;
        NN_NEED(get_addr_table, "GetUnicastIpAddressTable");
        if ((status = nn_api.get_addr_table(af, &t)) != NO_ERROR)
            return nn_fail(err, status, "GetUnicastIpAddressTable");
        if (nn_addr_table_from_mib(table, t) < 0)
            rc = nn_error_set(err, NN_ERROR_NOT_ENOUGH_MEMORY, "GetUnicastIpAddressTable");
        nn_api.free_table(t);
    }
    return rc;
}

int nn_backend_get_entry(nn_kind kind, void *row, nn_error *err)
{
    NETIO_STATUS status;

    if (kind == NN_KIND_INTERFACE) {
        nn_if_row *r = (nn_if_row *)row;
        MIB_IPINTERFACE_ROW m;
        NN_NEED(get_if_entry, "GetIpInterfaceEntry");
        memset(&m, 0, sizeof m);
        m.Family = r->family;
        m.InterfaceLuid.Value = r->interface_luid;
        m.InterfaceIndex = r->interface_index;
        if ((status = nn_api.get_if_entry(&m)) != NO_ERROR)
            return nn_fail(err, status, "GetIpInterfaceEntry");
        nn_if_from_mib(r, &m);
    }
    else if (kind == NN_KIND_ROUTE) {
        nn_route_row *r = (nn_route_row *)row;
        MIB_IPFORWARD_ROW2 m;
        NN_NEED(get_route_entry, "GetIpForwardEntry2");
        memset(&m, 0, sizeof m);
        m.InterfaceLuid.Value = r->interface_luid;
        m.InterfaceIndex = r->interface_index;
        nn_sockaddr_from_ip(&m.DestinationPrefix.Prefix, &r->destination_prefix);
        m.DestinationPrefix.PrefixLength = r->destination_prefix_length;
        nn_sockaddr_from_ip(&m.NextHop, &r->next_hop);
        if ((status = nn_api.get_route_entry(&m)) != NO_ERROR)
            return nn_fail(err, status, "GetIpForwardEntry2");
        nn_route_from_mib(r, &m);
    }
    else {
        nn_addr_row *r = (nn_addr_row *)row;
        MIB_UNICASTIPADDRESS_ROW m;
        NN_NEED(get_addr_entry, "GetUnicastIpAddressEntry");
        memset(&m, 0, sizeof m);
        nn_sockaddr_from_ip(&m.Address, &r->address);
        m.InterfaceLuid.Value = r->interface_luid;
        m.InterfaceIndex = r->interface_index;
        if ((status = nn_api.get_addr_entry(&m)) != NO_ERROR)
            return nn_fail(err, status, "GetUnicastIpAddressEntry");
        nn_addr_from_mib(r, &m);
    }
    return 0;
}

int nn_backend_get_teredo_port(unsigned *port, nn_error *err)
{
    USHORT value = 0;
    NETIO_STATUS status;

    NN_NEED(get_teredo_port, "GetTeredoPort");
    if ((status = nn_api.get_teredo_port(&value)) != NO_ERROR)
        return nn_fail(err, status, "GetTeredoPort");
    *port = value;
    return 0;
}

/* ------------------------------------------------------------------ ConvertInterface* */

int nn_backend_luid_to_index(uint64_t luid, uint32_t *index, nn_error *err)
{
    NET_LUID l;
    NET_IFINDEX i = 0;
    NETIO_STATUS status;

    NN_NEED(luid_to_index, "ConvertInterfaceLuidToIndex");
    l.Value = luid;
    if ((status = nn_api.luid_to_index(&l, &i)) != NO_ERROR)
        return nn_fail(err, status, "ConvertInterfaceLuidToIndex");
    if (i == 0) /* NET_IFINDEX_UNSPECIFIED */
        return nn_error_set(err, NN_ERROR_NOT_FOUND, "ConvertInterfaceLuidToIndex");
    *index = i;
    return 0;
}

int nn_backend_index_to_luid(uint32_t index, uint64_t *luid, nn_error *err)
{
    NET_LUID l;
    NETIO_STATUS status;

    NN_NEED(index_to_luid, "ConvertInterfaceIndexToLuid");
    l.Value = 0;
    if ((status = nn_api.index_to_luid(index, &l)) != NO_ERROR)
        return nn_fail(err, status, "ConvertInterfaceIndexToLuid");
    if (l.Value == 0)
        return nn_error_set(err, NN_ERROR_NOT_FOUND, "ConvertInterfaceIndexToLuid");
    *luid = l.Value;
    return 0;
}

int nn_backend_luid_to_name(uint64_t luid, char *name, size_t size, nn_error *err)
{
    WCHAR wide[NDIS_IF_MAX_STRING_SIZE + 1];
    NET_LUID l;
    NETIO_STATUS status;
    int n;

    NN_NEED(luid_to_name, "ConvertInterfaceLuidToNameW");
    l.Value = luid;
    if ((status = nn_api.luid_to_name(&l, wide, sizeof wide / sizeof wide[0])) != NO_ERROR)
        return nn_fail(err, status, "ConvertInterfaceLuidToNameW");
    n = WideCharToMultiByte(CP_UTF8, 0, wide, -1, name, (int)size, NULL, NULL);
    if (n <= 0)
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "WideCharToMultiByte");
    return 0;
}

int nn_backend_name_to_luid(const char *name, uint64_t *luid, nn_error *err)
{
    WCHAR wide[NDIS_IF_MAX_STRING_SIZE + 1];
    NET_LUID l;
    NETIO_STATUS status;

    NN_NEED(name_to_luid, "ConvertInterfaceNameToLuidW");
    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, wide, (int)(sizeof wide / sizeof wide[0])) <= 0)
        return nn_error_set(err, NN_ERROR_INVALID_PARAMETER, "MultiByteToWideChar");
    l.Value = 0;
    if ((status = nn_api.name_to_luid(wide, &l)) != NO_ERROR)
        return nn_fail(err, status, "ConvertInterfaceNameToLuidW");
    *luid = l.Value;
    return 0;
}
