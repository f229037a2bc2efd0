/*
 * netnotify.h - the one header every C source of netnotify includes.
 *
 * Layers:
 *   core     (nn_core.c, nn_module.c, nn_rows.c)  Python-facing, platform-independent
 *   backend  (nn_linux.c / nn_windows.c)          implements the netioapi contract natively
 *   netlink  (nn_netlink.c, nn_map.c)             pure C, no Python: rtnetlink parsing, fuzzable
 *
 * Rows travel between the layers as the plain C structs below (nn_*_row), which mirror
 * the MIB_* structures of netioapi.h field by field. The core turns them into immutable
 * Python objects; a backend fills them from iphlpapi (Windows) or from rtnetlink (Linux).
 */
#ifndef NETNOTIFY_H
#define NETNOTIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef _WIN32
#  ifndef WIN32_LEAN_AND_MEAN
#    define WIN32_LEAN_AND_MEAN
#  endif
#  include <winsock2.h>
#  include <ws2tcpip.h>
#  include <windows.h>
#else
#  include <pthread.h>
#  include <sys/socket.h>
#  include <netinet/in.h>
#endif

/* Bumped whenever the C ABI between the package and the extension changes. */
#define NN_BUILD_VERSION "0.1.0"

/* ---------------------------------------------------------------- kinds */

typedef enum {
    NN_KIND_INTERFACE = 0, /* NotifyIpInterfaceChange            */
    NN_KIND_ADDRESS = 1,   /* NotifyUnicastIpAddressChange       */
    NN_KIND_ROUTE = 2,     /* NotifyRouteChange2                 */
    NN_KIND_STABLE = 3,    /* NotifyStableUnicastIpAddressTable  */
    NN_KIND_TEREDO = 4,    /* NotifyTeredoPortChange             */
    NN_KIND_COUNT = 5
} nn_kind;

/* MIB_NOTIFICATION_TYPE */
typedef enum {
    NN_PARAMETER_NOTIFICATION = 0,
    NN_ADD_INSTANCE = 1,
    NN_DELETE_INSTANCE = 2,
    NN_INITIAL_NOTIFICATION = 3
} nn_notification_type;

/* ---------------------------------------------------------------- errors */

/* Win32 error codes: the error vocabulary of netioapi, used on every platform. */
#define NN_NO_ERROR 0u
#define NN_ERROR_FILE_NOT_FOUND 2u
#define NN_ERROR_ACCESS_DENIED 5u
#define NN_ERROR_INVALID_HANDLE 6u
#define NN_ERROR_NOT_ENOUGH_MEMORY 8u
#define NN_ERROR_GEN_FAILURE 31u
#define NN_ERROR_NOT_SUPPORTED 50u
#define NN_ERROR_INVALID_PARAMETER 87u
#define NN_ERROR_INVALID_NAME 123u
#define NN_ERROR_PROC_NOT_FOUND 127u
#define NN_ERROR_IO_PENDING 997u
#define NN_ERROR_NOT_FOUND 1168u

/* What went wrong, filled by any layer; the core turns it into a Python exception.
 * winerror: the Win32 code (native on Windows, mapped from errnum on Linux).
 * errnum:   the errno (native on Linux, mapped from winerror on Windows; 0 if none).
 * call:     the native call that failed, a static string ("NotifyRouteChange2", "recvmsg").
 * detail:   optional static text appended to the message. */
typedef struct {
    uint32_t winerror;
    int errnum;
    const char *call;
    const char *detail;
} nn_error;

/* Sets *err from an errno value (Linux) and returns -1. Implemented in nn_netlink.c. */
int nn_error_from_errno(nn_error *err, int errnum, const char *call);
/* Sets *err from a Win32 code, deriving errnum, and returns -1. */
int nn_error_set(nn_error *err, uint32_t winerror, const char *call);

/* ---------------------------------------------------------------- rows */

/* SOCKADDR_INET, reduced: family is the native AF_* value (0 = none / unspecified).
 * IPv4 addresses use addr[0..3]. scope_id is sin6_scope_id for IPv6, 0 otherwise. */
typedef struct {
    uint16_t family;
    uint16_t reserved_; /* always zero: rows are compared with memcmp */
    uint32_t scope_id;
    uint8_t addr[16];
} nn_ip;

#define NN_SCOPE_LEVEL_COUNT 16

/* MIB_IPINTERFACE_ROW. Booleans are 0/1 in uint8_t. */
typedef struct {
    uint16_t family;
    uint16_t reserved_;
    uint32_t interface_index;
    uint64_t interface_luid;
    uint32_t max_reassembly_size;
    uint32_t reserved2_;
    uint64_t interface_identifier;
    uint32_t min_router_advertisement_interval;
    uint32_t max_router_advertisement_interval;
    uint8_t advertising_enabled;
    uint8_t forwarding_enabled;
    uint8_t weak_host_send;
    uint8_t weak_host_receive;
    uint8_t use_automatic_metric;
    uint8_t use_neighbor_unreachability_detection;
    uint8_t managed_address_configuration_supported;
    uint8_t other_stateful_configuration_supported;
    uint8_t advertise_default_route;
    uint8_t connected;
    uint8_t supports_wake_up_patterns;
    uint8_t supports_neighbor_discovery;
    uint8_t supports_router_discovery;
    uint8_t disable_default_routes;
    uint8_t transmit_offload; /* INTERFACE_OFFLOAD_ROD bit field, as a byte */
    uint8_t receive_offload;
    int32_t router_discovery_behavior;   /* NL_ROUTER_DISCOVERY_BEHAVIOR */
    int32_t link_local_address_behavior; /* NL_LINK_LOCAL_ADDRESS_BEHAVIOR */
    uint32_t dad_transmits;
    uint32_t base_reachable_time; /* ms */
    uint32_t retransmit_time;     /* ms */
    uint32_t path_mtu_discovery_timeout;
    uint32_t link_local_address_timeout;
    uint32_t zone_indices[NN_SCOPE_LEVEL_COUNT];
    uint32_t site_prefix_length;
    uint32_t metric;
    uint32_t nl_mtu;
    uint32_t reachable_time; /* ms */
} nn_if_row;

/* MIB_UNICASTIPADDRESS_ROW */
typedef struct {
    nn_ip address;
    uint64_t interface_luid;
    uint32_t interface_index;
    int32_t prefix_origin; /* NL_PREFIX_ORIGIN */
    int32_t suffix_origin; /* NL_SUFFIX_ORIGIN */
    uint32_t valid_lifetime;     /* seconds, 0xffffffff = infinite */
    uint32_t preferred_lifetime; /* seconds, 0xffffffff = infinite */
    uint8_t on_link_prefix_length;
    uint8_t skip_as_source;
    uint16_t reserved_;
    int32_t dad_state; /* NL_DAD_STATE */
    uint32_t scope_id;
    uint32_t reserved2_;
    int64_t creation_time_stamp; /* FILETIME: 100 ns units since 1601-01-01 UTC */
} nn_addr_row;

/* MIB_IPFORWARD_ROW2. The trailing linux_* members are private to the Linux backend
 * (part of the kernel's identity of a route); they are zero on Windows. */
typedef struct {
    uint64_t interface_luid;
    uint32_t interface_index;
    uint8_t destination_prefix_length;
    uint8_t site_prefix_length;
    uint8_t loopback;
    uint8_t autoconfigure_address;
    nn_ip destination_prefix;
    nn_ip next_hop;
    uint32_t valid_lifetime;
    uint32_t preferred_lifetime;
    uint32_t metric;
    int32_t protocol; /* NL_ROUTE_PROTOCOL */
    uint8_t publish;
    uint8_t immortal;
    uint16_t reserved_;
    uint32_t age;
    int32_t origin; /* NL_ROUTE_ORIGIN */
    uint32_t linux_table;
    uint8_t linux_tos;
    uint8_t linux_type;
    uint16_t reserved2_;
} nn_route_row;

/* A growable array of rows of one kind, as returned by the table calls. */
typedef struct {
    nn_kind kind;
    size_t count;
    size_t capacity;
    size_t row_size;
    void *rows;
} nn_table;

void nn_table_init(nn_table *t, nn_kind kind);
void *nn_table_push(nn_table *t); /* zeroed slot, or NULL on out of memory */
void nn_table_free(nn_table *t);
size_t nn_row_size(nn_kind kind);

/* ---------------------------------------------------------------- locks */

#ifdef _WIN32
typedef SRWLOCK nn_mutex;
typedef CONDITION_VARIABLE nn_cond;
typedef DWORD nn_thread_id;
#  define NN_MUTEX_INIT SRWLOCK_INIT
#  define NN_COND_INIT CONDITION_VARIABLE_INIT
#  define nn_mutex_lock(m) AcquireSRWLockExclusive(m)
#  define nn_mutex_unlock(m) ReleaseSRWLockExclusive(m)
#  define nn_cond_wait(c, m) SleepConditionVariableSRW((c), (m), INFINITE, 0)
#  define nn_cond_broadcast(c) WakeAllConditionVariable(c)
#  define nn_thread_self() GetCurrentThreadId()
#  define nn_thread_equal(a, b) ((a) == (b))
#else
typedef pthread_mutex_t nn_mutex;
typedef pthread_cond_t nn_cond;
typedef pthread_t nn_thread_id;
#  define NN_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
#  define NN_COND_INIT PTHREAD_COND_INITIALIZER
#  define nn_mutex_lock(m) pthread_mutex_lock(m)
#  define nn_mutex_unlock(m) pthread_mutex_unlock(m)
#  define nn_cond_wait(c, m) pthread_cond_wait((c), (m))
#  define nn_cond_broadcast(c) pthread_cond_broadcast(c)
#  define nn_thread_self() pthread_self()
#  define nn_thread_equal(a, b) pthread_equal((a), (b))
#endif

/* ---------------------------------------------------------------- registrations */

/* One registration (one Notify* call). Allocated by the core with malloc because
 * backend threads touch it without the GIL; freed when its reference count drops to 0.
 * Fields marked [core] are guarded by the core lock; [const] never change after
 * nn_backend_register is called; [backend] belong to the backend. */
typedef struct nn_reg nn_reg;
struct nn_reg {
    nn_kind kind;              /* [const] */
    int family;                /* [const] native AF_UNSPEC / AF_INET / AF_INET6 */
    int initial_notification;  /* [const] */
    void *owner;               /* [const] the core's Python handle object */
    int refcnt;                /* [core] */
    int cancelled;             /* [core] no callback may start once set */
    int running;               /* [core] a callback is executing now */
    int finished;              /* [core] cancel has completed */
    nn_thread_id runner;       /* [core] its thread, valid while running */
    unsigned forks;            /* [core] forks the process had gone through when it registered */
    nn_reg *next, *prev;       /* [core] list of live registrations */
    void *backend;             /* [backend] */
};

/* What a backend hands to the core for one callback. */
typedef struct {
    nn_notification_type type;
    const void *row;        /* nn_if_row / nn_addr_row / nn_route_row, or NULL (initial) */
    const nn_table *table;  /* NN_KIND_STABLE: the stable table */
    unsigned teredo_port;   /* NN_KIND_TEREDO */
} nn_event;

/* Core entry points a backend calls (any thread, GIL not held). */

/* Deliver one event to the registration's Python callback; serialisation is the
 * backend's job. Returns 0, or -1 when the registration is cancelled or the
 * interpreter is shutting down (the event was dropped; the backend may stop). */
int nn_core_deliver(nn_reg *reg, const nn_event *ev);
/* The core lock: guards the [core] fields. */
void nn_core_lock(void);
void nn_core_unlock(void);
void nn_reg_incref(nn_reg *reg);
void nn_reg_decref(nn_reg *reg); /* frees via nn_backend_release at zero */
int nn_reg_is_cancelled(nn_reg *reg);
/* A delivery session: the GIL is taken at the first event and kept for the events of
 * the same registration that follow, until nn_core_session_end. Cancellation is still
 * checked before every event. For a backend thread that delivers bursts (Linux). */
#define NN_SESSION_BELLS 32
typedef struct nn_bell nn_bell; /* a doorbell (nn_bell.c, Linux) */
typedef struct {
    nn_reg *reg; /* the registration whose callbacks run, NULL when no session is open */
    int gilstate;
    /* Doorbells to ring once the session has dropped the GIL: see nn_core_defer_ring. */
    int nbells;
    nn_bell *bell[NN_SESSION_BELLS];
    unsigned bell_count[NN_SESSION_BELLS];
} nn_session;
int nn_core_session_deliver(nn_session *s, nn_reg *reg, const nn_event *ev);
void nn_core_session_end(nn_session *s);
/* GIL held. When the calling thread runs a callback inside a delivery session, records
 * that doorbell b gets count added when the session ends, after its GIL release (a
 * consumer woken then finds the GIL free instead of waking twice; the session holds a
 * reference to b until then), and returns 1; otherwise returns 0: the caller rings now. */
int nn_core_defer_ring(nn_bell *b, unsigned count);
/* Doorbells (nn_bell.c): references are guarded by the core lock; write needs no lock. */
void nn_bell_incref(nn_bell *b);
void nn_bell_decref(nn_bell *b);
int nn_bell_write(nn_bell *b, unsigned count);
/* Gives the calling backend-owned thread a Python thread state for its whole life, so
 * that each delivery does not create and destroy one. Call it while the interpreter is
 * surely alive (the registering thread waits for it). */
void nn_core_thread_attach(void);
/* Reports an asynchronous failure of a registration (a lost subscription, an overflow)
 * through sys.unraisablehook, naming the registration's callback. */
void nn_core_report_error(nn_reg *reg, const nn_error *err);

/* Backend entry points the core calls (GIL released unless said otherwise). */

/* Process-wide initialisation, called once at module exec with the GIL held. */
int nn_backend_init(nn_error *err);
/* Starts the registration. May deliver the initial notification (on any thread)
 * before returning. For NN_KIND_STABLE: sets *stable_now to 1 and fills *table when
 * the table is already stable (the registration is then not started), else 0. */
int nn_backend_register(nn_reg *reg, int *stable_now, nn_table *table, nn_error *err);
/* Stops the registration: once it returns, the backend starts no new delivery.
 * from_callback is 1 when called from inside a callback of this registration
 * (the backend must not wait for that callback). The core waits for a running
 * callback itself (not when from_callback). */
void nn_backend_cancel(nn_reg *reg, int from_callback);
/* Frees the backend part; called once, when the reference count reaches zero. */
void nn_backend_release(nn_reg *reg);
/* Get*Table: fills *table with all rows of kind/family. */
int nn_backend_get_table(nn_kind kind, int family, nn_table *table, nn_error *err);
/* Get*Entry: completes *row (of the kind's struct) in place; NN_ERROR_NOT_FOUND if absent. */
int nn_backend_get_entry(nn_kind kind, void *row, nn_error *err);
/* GetTeredoPort. */
int nn_backend_get_teredo_port(unsigned *port, nn_error *err);
/* ConvertInterface*: LUID <-> index <-> name (UTF-8). NN_ERROR_NOT_FOUND if absent. */
int nn_backend_luid_to_index(uint64_t luid, uint32_t *index, nn_error *err);
int nn_backend_index_to_luid(uint32_t index, uint64_t *luid, nn_error *err);
int nn_backend_luid_to_name(uint64_t luid, char *name, size_t size, nn_error *err);
int nn_backend_name_to_luid(const char *name, uint64_t *luid, nn_error *err);
/* Called in the child after fork(): forget every inherited registration. */
void nn_backend_after_fork_child(void);
#ifdef __linux__
/* Linux: a consumer's thread reads the registration's notifications itself while it waits
 * (nn_linux.c). 1 read, 0 not now, -1 with *err set (EINTR: a signal). Without the GIL. */
int nn_backend_read_here(nn_reg *reg, nn_error *err);
/* Makes a consumer's read that sleeps, or is about to, return (events reached its queue
 * another way meanwhile). Without the GIL. */
void nn_backend_poke_here(nn_reg *reg);
/* The same for an event loop, which never blocks: nn_backend_lend puts the socket in the
 * loop's epoll set epfd, out of the dispatcher's (1 lent, 0 not now, -1 with *err set);
 * once it is readable, nn_backend_lent_read reads what is queued, then gives it back with
 * give_back (0 not lent, nothing read; 1 read, still lent; 2 read, and the dispatcher has
 * it back: given back, an overflow to repair, or a cancel); nn_backend_lend_end gives it
 * back. Without the GIL. */
int nn_backend_lend(nn_reg *reg, int epfd, nn_error *err);
int nn_backend_lent_read(nn_reg *reg, int give_back);
void nn_backend_lend_end(nn_reg *reg);
#endif

#endif /* NETNOTIFY_H */
