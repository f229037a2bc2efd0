/*
 * nn_rows.c - the immutable row types MibIpInterfaceRow, MibUnicastIpAddressRow and
 * MibIpForwardRow2. A row object holds a copy of the C struct and builds the Python
 * value of a member only when it is read, so a callback that does not look at a member
 * pays nothing for it. One table of members per type drives the getters, the keyword
 * constructor, repr, _asdict and _replace.
 */
#include "nn_py.h"

#include <string.h>

typedef enum {
    NN_F_FAMILY, /* uint16_t native AF_* -> socket.AddressFamily */
    NN_F_BOOL,   /* uint8_t -> bool */
    NN_F_U8,     /* uint8_t -> int */
    NN_F_U32,    /* uint32_t -> int */
    NN_F_U64,    /* uint64_t -> int */
    NN_F_I64,    /* int64_t -> int */
    NN_F_ENUM,   /* int32_t -> IntEnum of st->enums[aux] (int when unknown) */
    NN_F_ADDR,   /* nn_ip -> IPv4Address / IPv6Address / None */
    NN_F_PREFIX, /* nn_ip + uint8_t length at offset aux -> IPv4Network / IPv6Network / None */
    NN_F_ZONES   /* uint32_t[16] -> tuple */
} nn_ftype;

typedef struct {
    const char *name;
    nn_ftype type;
    size_t offset;
    size_t aux;
} nn_field;

typedef struct {
    PyObject_HEAD
    nn_kind kind;
    union {
        nn_if_row i;
        nn_addr_row a;
        nn_route_row r;
    } u;
} nn_rowobj;

/* ------------------------------------------------------------------ member tables */

#define IF_FIELDS(X)                                                              \
    X(family, NN_F_FAMILY, 0)                                                     \
    X(interface_luid, NN_F_U64, 0)                                                \
    X(interface_index, NN_F_U32, 0)                                               \
    X(max_reassembly_size, NN_F_U32, 0)                                           \
    X(interface_identifier, NN_F_U64, 0)                                          \
    X(min_router_advertisement_interval, NN_F_U32, 0)                             \
    X(max_router_advertisement_interval, NN_F_U32, 0)                             \
    X(advertising_enabled, NN_F_BOOL, 0)                                          \
    X(forwarding_enabled, NN_F_BOOL, 0)                                           \
    X(weak_host_send, NN_F_BOOL, 0)                                               \
    X(weak_host_receive, NN_F_BOOL, 0)                                            \
    X(use_automatic_metric, NN_F_BOOL, 0)                                         \
    X(use_neighbor_unreachability_detection, NN_F_BOOL, 0)                        \
    X(managed_address_configuration_supported, NN_F_BOOL, 0)                      \
    X(other_stateful_configuration_supported, NN_F_BOOL, 0)                       \
    X(advertise_default_route, NN_F_BOOL, 0)                                      \
    X(router_discovery_behavior, NN_F_ENUM, NN_ENUM_ROUTER_DISCOVERY)             \
    X(dad_transmits, NN_F_U32, 0)                                                 \
    X(base_reachable_time, NN_F_U32, 0)                                           \
    X(retransmit_time, NN_F_U32, 0)                                               \
    X(path_mtu_discovery_timeout, NN_F_U32, 0)                                    \
    X(link_local_address_behavior, NN_F_ENUM, NN_ENUM_LINK_LOCAL)                 \
    X(link_local_address_timeout, NN_F_U32, 0)                                    \
    X(zone_indices, NN_F_ZONES, 0)                                                \
    X(site_prefix_length, NN_F_U32, 0)                                            \
    X(metric, NN_F_U32, 0)                                                        \
    X(nl_mtu, NN_F_U32, 0)                                                        \
    X(connected, NN_F_BOOL, 0)                                                    \
    X(supports_wake_up_patterns, NN_F_BOOL, 0)                                    \
    X(supports_neighbor_discovery, NN_F_BOOL, 0)                                  \
    X(supports_router_discovery, NN_F_BOOL, 0)                                    \
    X(reachable_time, NN_F_U32, 0)                                                \
    X(transmit_offload, NN_F_U8, 0)                                               \
    X(receive_offload, NN_F_U8, 0)                                                \
    X(disable_default_routes, NN_F_BOOL, 0)

#define ADDR_FIELDS(X)                                                            \
    X(address, NN_F_ADDR, 0)                                                      \
    X(interface_luid, NN_F_U64, 0)                                                \
    X(interface_index, NN_F_U32, 0)                                               \
    X(prefix_origin, NN_F_ENUM, NN_ENUM_PREFIX_ORIGIN)                            \
    X(suffix_origin, NN_F_ENUM, NN_ENUM_SUFFIX_ORIGIN)                            \
    X(valid_lifetime, NN_F_U32, 0)                                                \
    X(preferred_lifetime, NN_F_U32, 0)                                            \
    X(on_link_prefix_length, NN_F_U8, 0)                                          \
    X(skip_as_source, NN_F_BOOL, 0)                                               \
    X(dad_state, NN_F_ENUM, NN_ENUM_DAD_STATE)                                    \
    X(scope_id, NN_F_U32, 0)                                                      \
    X(creation_time_stamp, NN_F_I64, 0)

#define ROUTE_FIELDS(X)                                                           \
    X(interface_luid, NN_F_U64, 0)                                                \
    X(interface_index, NN_F_U32, 0)                                               \
    X(destination_prefix, NN_F_PREFIX, offsetof(nn_route_row, destination_prefix_length)) \
    X(next_hop, NN_F_ADDR, 0)                                                     \
    X(site_prefix_length, NN_F_U8, 0)                                             \
    X(valid_lifetime, NN_F_U32, 0)                                                \
    X(preferred_lifetime, NN_F_U32, 0)                                            \
    X(metric, NN_F_U32, 0)                                                        \
    X(protocol, NN_F_ENUM, NN_ENUM_ROUTE_PROTOCOL)                                 \
    X(loopback, NN_F_BOOL, 0)                                                     \
    X(autoconfigure_address, NN_F_BOOL, 0)                                        \
    X(publish, NN_F_BOOL, 0)                                                      \
    X(immortal, NN_F_BOOL, 0)                                                     \
    X(age, NN_F_U32, 0)                                                           \
    X(origin, NN_F_ENUM, NN_ENUM_ROUTE_ORIGIN)

#define NN_FIELD_IF(n, t, a) {#n, t, offsetof(nn_if_row, n), a},
#define NN_FIELD_ADDR(n, t, a) {#n, t, offsetof(nn_addr_row, n), a},
#define NN_FIELD_ROUTE(n, t, a) {#n, t, offsetof(nn_route_row, n), a},
#define NN_INDEX_IF(n, t, a) NN_IF_##n,
#define NN_INDEX_ADDR(n, t, a) NN_ADDR_##n,
#define NN_INDEX_ROUTE(n, t, a) NN_ROUTE_##n,

enum { IF_FIELDS(NN_INDEX_IF) NN_IF_COUNT };
enum { ADDR_FIELDS(NN_INDEX_ADDR) NN_ADDR_COUNT };
enum { ROUTE_FIELDS(NN_INDEX_ROUTE) NN_ROUTE_COUNT };

static const nn_field nn_if_fields[] = {IF_FIELDS(NN_FIELD_IF)};
static const nn_field nn_addr_fields[] = {ADDR_FIELDS(NN_FIELD_ADDR)};
static const nn_field nn_route_fields[] = {ROUTE_FIELDS(NN_FIELD_ROUTE)};

static PyObject *nn_row_get(PyObject *self, void *closure);
static PyObject *nn_row_identity(PyObject *self, void *closure);

#define NN_GETSET_IF(n, t, a) {#n, nn_row_get, NULL, NULL, (void *)&nn_if_fields[NN_IF_##n]},
#define NN_GETSET_ADDR(n, t, a) {#n, nn_row_get, NULL, NULL, (void *)&nn_addr_fields[NN_ADDR_##n]},
#define NN_GETSET_ROUTE(n, t, a) {#n, nn_row_get, NULL, NULL, (void *)&nn_route_fields[NN_ROUTE_##n]},

static PyGetSetDef nn_if_getset[] = {
    IF_FIELDS(NN_GETSET_IF){"_identity", nn_row_identity, NULL, "The members that name the object, as bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef nn_addr_getset[] = {
    ADDR_FIELDS(NN_GETSET_ADDR){"_identity", nn_row_identity, NULL, "The members that name the object, as bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};
static PyGetSetDef nn_route_getset[] = {
    ROUTE_FIELDS(NN_GETSET_ROUTE){"_identity", nn_row_identity, NULL, "The members that name the object, as bytes.", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

typedef struct {
    const char *name; /* short name for repr */
    const nn_field *fields;
    size_t nfields;
} nn_kindinfo;

static const nn_kindinfo nn_kinds[NN_ROW_KINDS] = {
    {"MibIpInterfaceRow", nn_if_fields, NN_IF_COUNT},
    {"MibUnicastIpAddressRow", nn_addr_fields, NN_ADDR_COUNT},
    {"MibIpForwardRow2", nn_route_fields, NN_ROUTE_COUNT},
};

/* ------------------------------------------------------------------ C -> Python */

PyObject *nn_family_object(nn_state *st, int family)
{
    PyObject *value = NULL, *result = NULL;

    if (family == AF_INET)
        return Py_NewRef(st->af_inet);
    if (family == AF_INET6)
        return Py_NewRef(st->af_inet6);
    if (family == AF_UNSPEC)
        return Py_NewRef(st->af_unspec);
    value = PyLong_FromLong(family);
    if (value == NULL)
        goto error;
    result = PyObject_CallFunctionObjArgs(st->address_family, value, NULL);
    if (result == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        result = Py_NewRef(value); /* not a member of AddressFamily: the plain int */
    }
error:
    Py_XDECREF(value);
    return result;
}

static PyObject *nn_ip_to_py(nn_state *st, const nn_ip *ip)
{
    PyObject *bytes = NULL, *addr = NULL, *text = NULL, *scoped = NULL;

    if (ip->family == AF_INET)
        bytes = PyBytes_FromStringAndSize((const char *)ip->addr, 4);
    else if (ip->family == AF_INET6)
        bytes = PyBytes_FromStringAndSize((const char *)ip->addr, 16);
    else
        Py_RETURN_NONE;
    if (bytes == NULL)
        goto error;
    addr = PyObject_CallFunctionObjArgs(ip->family == AF_INET ? st->ipv4_address : st->ipv6_address, bytes,
                                        NULL);
    if (addr == NULL || ip->family != AF_INET6 || ip->scope_id == 0)
        goto error; /* done either way */
    /* IPv6Address takes a scope only in its text form. */
    text = PyObject_Str(addr);
    if (text == NULL)
        goto error;
    scoped = PyUnicode_FromFormat("%U%%%lu", text, (unsigned long)ip->scope_id);
    if (scoped == NULL)
        goto error;
    Py_DECREF(addr);
    addr = PyObject_CallFunctionObjArgs(st->ipv6_address, scoped, NULL);
error:
    Py_XDECREF(bytes);
    Py_XDECREF(text);
    Py_XDECREF(scoped);
    return addr;
}

static PyObject *nn_prefix_to_py(nn_state *st, const nn_ip *ip, unsigned length)
{
    PyObject *bytes = NULL, *spec = NULL, *net = NULL;
    unsigned char masked[16];
    unsigned size = ip->family == AF_INET ? 4 : 16, i;

    if (ip->family != AF_INET && ip->family != AF_INET6)
        Py_RETURN_NONE;
    if (length > size * 8)
        length = size * 8;
    /* Clear host bits so that the network constructor never refuses the prefix. */
    for (i = 0; i < size; i++) {
        unsigned keep = length >= (i + 1) * 8 ? 8 : (length > i * 8 ? length - i * 8 : 0);
        masked[i] = (unsigned char)(ip->addr[i] & (unsigned char)(0xff00u >> keep));
    }
    bytes = PyBytes_FromStringAndSize((const char *)masked, size);
    if (bytes == NULL)
        goto error;
    spec = Py_BuildValue("(OI)", bytes, length);
    if (spec == NULL)
        goto error;
    net = PyObject_CallFunctionObjArgs(ip->family == AF_INET ? st->ipv4_network : st->ipv6_network, spec, NULL);
error:
    Py_XDECREF(bytes);
    Py_XDECREF(spec);
    return net;
}

static PyObject *nn_enum_to_py(nn_state *st, size_t which, int32_t value)
{
    PyObject *number = PyLong_FromLong(value), *member;

    if (number == NULL)
        return NULL;
    member = PyObject_CallFunctionObjArgs(st->enums[which], number, NULL);
    if (member == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return number; /* a value this version does not name */
    }
    Py_DECREF(number);
    return member;
}

static PyObject *nn_field_to_py(nn_state *st, const nn_field *f, const unsigned char *row)
{
    const unsigned char *p = row + f->offset;

    switch (f->type) {
    case NN_F_FAMILY: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return nn_family_object(st, v);
    }
    case NN_F_BOOL:
        return PyBool_FromLong(*p != 0);
    case NN_F_U8:
        return PyLong_FromLong(*p);
    case NN_F_U32: {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return PyLong_FromUnsignedLong(v);
    }
    case NN_F_U64: {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return PyLong_FromUnsignedLongLong(v);
    }
    case NN_F_I64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return PyLong_FromLongLong(v);
    }
    case NN_F_ENUM: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return nn_enum_to_py(st, f->aux, v);
    }
    case NN_F_ADDR:
        return nn_ip_to_py(st, (const nn_ip *)(const void *)p);
    case NN_F_PREFIX:
        return nn_prefix_to_py(st, (const nn_ip *)(const void *)p, row[f->aux]);
    case NN_F_ZONES: {
        PyObject *t = PyTuple_New(NN_SCOPE_LEVEL_COUNT);
        Py_ssize_t i;
        if (t == NULL)
            return NULL;
        for (i = 0; i < NN_SCOPE_LEVEL_COUNT; i++) {
            uint32_t v;
            PyObject *item;
            memcpy(&v, p + (size_t)i * sizeof v, sizeof v);
            item = PyLong_FromUnsignedLong(v);
            if (item == NULL || PyTuple_SetItem(t, i, item) < 0) {
                Py_DECREF(t);
                return NULL;
            }
        }
        return t;
    }
    }
    PyErr_SetString(PyExc_SystemError, "netnotify: unknown member type");
    return NULL;
}

static nn_state *nn_row_state(PyObject *self)
{
    return nn_state_of_type(Py_TYPE(self));
}

static const unsigned char *nn_rowobj_bytes(PyObject *self)
{
    return (const unsigned char *)&((nn_rowobj *)self)->u;
}

static PyObject *nn_row_get(PyObject *self, void *closure)
{
    return nn_field_to_py(nn_row_state(self), (const nn_field *)closure, nn_rowobj_bytes(self));
}

static PyObject *nn_row_fields_tuple(nn_kind kind)
{
    const nn_kindinfo *ki = &nn_kinds[kind];
    PyObject *t = PyTuple_New((Py_ssize_t)ki->nfields);
    size_t i;

    if (t == NULL)
        return NULL;
    for (i = 0; i < ki->nfields; i++) {
        PyObject *name = PyUnicode_FromString(ki->fields[i].name);
        if (name == NULL || PyTuple_SetItem(t, (Py_ssize_t)i, name) < 0) {
            Py_DECREF(t);
            return NULL;
        }
    }
    return t;
}

PyObject *nn_row_new(nn_state *st, nn_kind kind, const void *data)
{
    PyTypeObject *tp;
    nn_rowobj *obj;

    if ((int)kind < 0 || kind >= NN_ROW_KINDS) {
        PyErr_SetString(PyExc_SystemError, "netnotify: no row type for this kind");
        return NULL;
    }
    tp = (PyTypeObject *)st->row_type[kind];
    obj = (nn_rowobj *)PyType_GenericAlloc(tp, 0);
    if (obj == NULL)
        return NULL;
    obj->kind = kind;
    memcpy(&obj->u, data, nn_row_size(kind));
    return (PyObject *)obj;
}

const void *nn_row_data(nn_state *st, PyObject *obj, nn_kind kind)
{
    if (!PyObject_TypeCheck(obj, (PyTypeObject *)st->row_type[kind])) {
        nn_type_error(obj, "expected a %s", nn_kinds[kind].name);
        return NULL;
    }
    return &((nn_rowobj *)obj)->u;
}

PyObject *nn_table_to_list(nn_state *st, const nn_table *table)
{
    nn_kind kind = table->kind == NN_KIND_STABLE ? NN_KIND_ADDRESS : table->kind;
    PyObject *list = PyList_New((Py_ssize_t)table->count);
    size_t i;

    if (list == NULL)
        return NULL;
    for (i = 0; i < table->count; i++) {
        PyObject *row = nn_row_new(st, kind, (const unsigned char *)table->rows + i * table->row_size);
        if (row == NULL || PyList_SetItem(list, (Py_ssize_t)i, row) < 0) {
            Py_DECREF(list);
            return NULL;
        }
    }
    return list;
}

/* ------------------------------------------------------------------ Python -> C */

static int nn_py_to_ip(nn_state *st, PyObject *value, nn_ip *ip)
{
    PyObject *addr = NULL, *version = NULL, *packed = NULL, *scope = NULL;
    char *buf;
    Py_ssize_t len;
    long ver;
    int rc = -1;

    memset(ip, 0, sizeof(*ip));
    if (value == Py_None)
        return 0;
    if (PyUnicode_Check(value) || PyBytes_Check(value) || PyLong_Check(value))
        addr = PyObject_CallFunctionObjArgs(st->ip_address, value, NULL);
    else if (PyObject_TypeCheck(value, (PyTypeObject *)st->ipv4_address) ||
             PyObject_TypeCheck(value, (PyTypeObject *)st->ipv6_address))
        addr = Py_NewRef(value);
    else {
        nn_type_error(value, "expected an ipaddress address or str");
        goto error;
    }
    if (addr == NULL)
        goto error;
    version = PyObject_GetAttrString(addr, "version");
    packed = version ? PyObject_GetAttrString(addr, "packed") : NULL;
    if (packed == NULL)
        goto error;
    ver = PyLong_AsLong(version);
    if (PyBytes_AsStringAndSize(packed, &buf, &len) < 0)
        goto error;
    if ((ver != 4 || len != 4) && (ver != 6 || len != 16)) {
        PyErr_SetString(PyExc_ValueError, "unexpected address object");
        goto error;
    }
    ip->family = (uint16_t)(ver == 4 ? AF_INET : AF_INET6);
    memcpy(ip->addr, buf, (size_t)len);
    if (ver == 6) {
        scope = PyObject_GetAttrString(addr, "scope_id");
        if (scope == NULL)
            goto error;
        if (scope != Py_None) {
            PyObject *number = PyNumber_Long(scope);
            unsigned long v;
            if (number == NULL) {
                PyErr_Clear();
                PyErr_SetString(PyExc_ValueError, "an IPv6 scope id must be a number (an interface index)");
                goto error;
            }
            v = PyLong_AsUnsignedLong(number);
            Py_DECREF(number);
            if (PyErr_Occurred())
                goto error;
            if (v > 0xffffffffUL) {
                PyErr_SetString(PyExc_OverflowError, "IPv6 scope id out of range");
                goto error;
            }
            ip->scope_id = (uint32_t)v;
        }
    }
    rc = 0;
error:
    Py_XDECREF(addr);
    Py_XDECREF(version);
    Py_XDECREF(packed);
    Py_XDECREF(scope);
    return rc;
}

static int nn_py_to_prefix(nn_state *st, PyObject *value, nn_ip *ip, uint8_t *length)
{
    PyObject *net = NULL, *addr = NULL, *plen = NULL;
    long n;
    int rc = -1;

    *length = 0;
    if (value == Py_None) {
        memset(ip, 0, sizeof(*ip));
        return 0;
    }
    if (PyObject_TypeCheck(value, (PyTypeObject *)st->ipv4_network) ||
        PyObject_TypeCheck(value, (PyTypeObject *)st->ipv6_network))
        net = Py_NewRef(value);
    else if (PyUnicode_Check(value)) {
        PyObject *args = PyTuple_Pack(1, value), *kw = Py_BuildValue("{s:O}", "strict", Py_False);
        if (args != NULL && kw != NULL)
            net = PyObject_Call(st->ip_network, args, kw);
        Py_XDECREF(args);
        Py_XDECREF(kw);
    }
    else {
        nn_type_error(value, "expected an ipaddress network or str");
        goto error;
    }
    if (net == NULL)
        goto error;
    addr = PyObject_GetAttrString(net, "network_address");
    plen = addr ? PyObject_GetAttrString(net, "prefixlen") : NULL;
    if (plen == NULL || nn_py_to_ip(st, addr, ip) < 0)
        goto error;
    n = PyLong_AsLong(plen);
    if (n < 0 || n > 128) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "bad prefix length");
        goto error;
    }
    *length = (uint8_t)n;
    rc = 0;
error:
    Py_XDECREF(net);
    Py_XDECREF(addr);
    Py_XDECREF(plen);
    return rc;
}

/* An unsigned integer; negative or too large is OverflowError, like CPython's own parsing. */
int nn_py_to_uint(PyObject *value, unsigned long long max, unsigned long long *out, const char *name)
{
    unsigned long long v;

    if (!PyLong_Check(value)) {
        nn_type_error(value, "%s must be an int", name);
        return -1;
    }
    v = PyLong_AsUnsignedLongLong(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    if (v > max) {
        PyErr_Format(PyExc_OverflowError, "%s out of range", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int nn_py_to_int(PyObject *value, long long lo, long long hi, long long *out, const char *name)
{
    long long v;

    if (!PyLong_Check(value)) {
        nn_type_error(value, "%s must be an int", name);
        return -1;
    }
    v = PyLong_AsLongLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_OverflowError, "%s out of range", name);
        return -1;
    }
    *out = v;
    return 0;
}

static int nn_field_from_py(nn_state *st, const nn_field *f, unsigned char *row, PyObject *value)
{
    unsigned char *p = row + f->offset;
    unsigned long long u;
    long long s;

    switch (f->type) {
    case NN_F_FAMILY: {
        uint16_t v;
        if (nn_py_to_uint(value, 0xffff, &u, f->name) < 0)
            return -1;
        v = (uint16_t)u;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case NN_F_BOOL: {
        int truth = PyObject_IsTrue(value);
        if (truth < 0)
            return -1;
        *p = (unsigned char)truth;
        return 0;
    }
    case NN_F_U8:
        if (nn_py_to_uint(value, 0xff, &u, f->name) < 0)
            return -1;
        *p = (unsigned char)u;
        return 0;
    case NN_F_U32: {
        uint32_t v;
        if (nn_py_to_uint(value, 0xffffffffULL, &u, f->name) < 0)
            return -1;
        v = (uint32_t)u;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case NN_F_U64: {
        uint64_t v;
        if (nn_py_to_uint(value, UINT64_MAX, &u, f->name) < 0)
            return -1;
        v = (uint64_t)u;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case NN_F_I64: {
        int64_t v;
        if (nn_py_to_int(value, INT64_MIN, INT64_MAX, &s, f->name) < 0)
            return -1;
        v = (int64_t)s;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case NN_F_ENUM: {
        int32_t v;
        if (nn_py_to_int(value, INT32_MIN, INT32_MAX, &s, f->name) < 0)
            return -1;
        v = (int32_t)s;
        memcpy(p, &v, sizeof v);
        return 0;
    }
    case NN_F_ADDR: {
        nn_ip ip;
        if (nn_py_to_ip(st, value, &ip) < 0)
            return -1;
        memcpy(p, &ip, sizeof ip);
        return 0;
    }
    case NN_F_PREFIX: {
        nn_ip ip;
        uint8_t length;
        if (nn_py_to_prefix(st, value, &ip, &length) < 0)
            return -1;
        memcpy(p, &ip, sizeof ip);
        row[f->aux] = length;
        return 0;
    }
    case NN_F_ZONES: {
        uint32_t zones[NN_SCOPE_LEVEL_COUNT] = {0};
        PyObject *seq = PySequence_Tuple(value);
        Py_ssize_t i, n;
        if (seq == NULL)
            return -1;
        n = PyTuple_Size(seq);
        if (n > NN_SCOPE_LEVEL_COUNT) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "zone_indices holds at most 16 values");
            return -1;
        }
        for (i = 0; i < n; i++) {
            if (nn_py_to_uint(PyTuple_GetItem(seq, i), 0xffffffffULL, &u, f->name) < 0) {
                Py_DECREF(seq);
                return -1;
            }
            zones[i] = (uint32_t)u;
        }
        Py_DECREF(seq);
        memcpy(p, zones, sizeof zones);
        return 0;
    }
    }
    PyErr_SetString(PyExc_SystemError, "netnotify: unknown member type");
    return -1;
}

/* Applies keyword arguments to a C row. */
static int nn_row_apply(nn_state *st, nn_kind kind, unsigned char *row, PyObject *kwargs)
{
    const nn_kindinfo *ki = &nn_kinds[kind];
    Py_ssize_t pos = 0;
    PyObject *key, *value;

    if (kwargs == NULL)
        return 0;
    while (PyDict_Next(kwargs, &pos, &key, &value)) {
        size_t i;
        for (i = 0; i < ki->nfields; i++)
            if (PyUnicode_CompareWithASCIIString(key, ki->fields[i].name) == 0)
                break;
        if (i == ki->nfields) {
            PyErr_Format(PyExc_TypeError, "%s has no member %R", ki->name, key);
            return -1;
        }
        if (nn_field_from_py(st, &ki->fields[i], row, value) < 0)
            return -1;
    }
    return 0;
}

static int nn_kind_of_type(nn_state *st, PyTypeObject *tp)
{
    int k;
    for (k = 0; k < NN_ROW_KINDS; k++)
        if ((PyObject *)tp == st->row_type[k])
            return k;
    return -1;
}

static PyObject *nn_row_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    nn_state *st = nn_state_of_type(tp);
    int kind = nn_kind_of_type(st, tp);
    union {
        nn_if_row i;
        nn_addr_row a;
        nn_route_row r;
    } row;

    if (kind < 0) {
        PyErr_SetString(PyExc_TypeError, "not a netnotify row type");
        return NULL;
    }
    if (PyTuple_Size(args) != 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes keyword arguments only", nn_kinds[kind].name);
        return NULL;
    }
    memset(&row, 0, sizeof row);
    if (nn_row_apply(st, (nn_kind)kind, (unsigned char *)&row, kwargs) < 0)
        return NULL;
    return nn_row_new(st, (nn_kind)kind, &row);
}

static PyObject *nn_row_replace(PyObject *self, PyObject *args, PyObject *kwargs)
{
    nn_rowobj *obj = (nn_rowobj *)self;
    nn_state *st = nn_row_state(self);
    union {
        nn_if_row i;
        nn_addr_row a;
        nn_route_row r;
    } row;

    if (PyTuple_Size(args) != 0) {
        PyErr_SetString(PyExc_TypeError, "_replace() takes keyword arguments only");
        return NULL;
    }
    memcpy(&row, &obj->u, nn_row_size(obj->kind));
    if (nn_row_apply(st, obj->kind, (unsigned char *)&row, kwargs) < 0)
        return NULL;
    return nn_row_new(st, obj->kind, &row);
}

static PyObject *nn_row_asdict(PyObject *self, PyObject *unused)
{
    nn_rowobj *obj = (nn_rowobj *)self;
    nn_state *st = nn_row_state(self);
    const nn_kindinfo *ki = &nn_kinds[obj->kind];
    PyObject *dict = PyDict_New();
    size_t i;

    (void)unused;
    if (dict == NULL)
        return NULL;
    for (i = 0; i < ki->nfields; i++) {
        PyObject *v = nn_field_to_py(st, &ki->fields[i], nn_rowobj_bytes(self));
        if (v == NULL || PyDict_SetItemString(dict, ki->fields[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(v);
    }
    return dict;
}

/* _identity: the members that name the object (docs/watch.md), as bytes: cheap to hash
 * and compare, without building ipaddress objects. interface: family + index;
 * address: address + index; route: prefix + length + next hop + index. */
static PyObject *nn_row_identity(PyObject *self, void *closure)
{
    nn_rowobj *obj = (nn_rowobj *)self;
    unsigned char key[2 * sizeof(nn_ip) + 8];
    size_t n = 0;

    (void)closure;
    memset(key, 0, sizeof key);
    switch (obj->kind) {
    case NN_KIND_INTERFACE:
        memcpy(key, &obj->u.i.family, sizeof obj->u.i.family);
        memcpy(key + 2, &obj->u.i.interface_index, sizeof obj->u.i.interface_index);
        n = 6;
        break;
    case NN_KIND_ADDRESS:
        memcpy(key, &obj->u.a.address, sizeof(nn_ip));
        memcpy(key + sizeof(nn_ip), &obj->u.a.interface_index, sizeof obj->u.a.interface_index);
        n = sizeof(nn_ip) + 4;
        break;
    default:
        memcpy(key, &obj->u.r.destination_prefix, sizeof(nn_ip));
        memcpy(key + sizeof(nn_ip), &obj->u.r.next_hop, sizeof(nn_ip));
        memcpy(key + 2 * sizeof(nn_ip), &obj->u.r.interface_index, sizeof obj->u.r.interface_index);
        key[2 * sizeof(nn_ip) + 4] = obj->u.r.destination_prefix_length;
        n = 2 * sizeof(nn_ip) + 5;
        break;
    }
    return PyBytes_FromStringAndSize((const char *)key, (Py_ssize_t)n);
}

static PyObject *nn_row_repr(PyObject *self)
{
    nn_rowobj *obj = (nn_rowobj *)self;
    nn_state *st = nn_row_state(self);
    const nn_kindinfo *ki = &nn_kinds[obj->kind];
    PyObject *parts = NULL, *sep = NULL, *body = NULL, *result = NULL;
    size_t i;

    parts = PyList_New(0);
    if (parts == NULL)
        goto error;
    for (i = 0; i < ki->nfields; i++) {
        PyObject *v = nn_field_to_py(st, &ki->fields[i], nn_rowobj_bytes(self)), *part;
        if (v == NULL)
            goto error;
        part = PyUnicode_FromFormat("%s=%R", ki->fields[i].name, v);
        Py_DECREF(v);
        if (part == NULL || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            goto error;
        }
        Py_DECREF(part);
    }
    sep = PyUnicode_FromString(", ");
    body = sep ? PyUnicode_Join(sep, parts) : NULL;
    if (body == NULL)
        goto error;
    result = PyUnicode_FromFormat("%s(%U)", ki->name, body);
error:
    Py_XDECREF(parts);
    Py_XDECREF(sep);
    Py_XDECREF(body);
    return result;
}

static PyObject *nn_row_richcompare(PyObject *a, PyObject *b, int op)
{
    int equal;

    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b))
        Py_RETURN_NOTIMPLEMENTED;
    equal = memcmp(&((nn_rowobj *)a)->u, &((nn_rowobj *)b)->u, nn_row_size(((nn_rowobj *)a)->kind)) == 0;
    return PyBool_FromLong(op == Py_EQ ? equal : !equal);
}

static Py_hash_t nn_row_hash(PyObject *self)
{
    const unsigned char *p = nn_rowobj_bytes(self);
    size_t n = nn_row_size(((nn_rowobj *)self)->kind), i;
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    Py_hash_t result;

    for (i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    result = (Py_hash_t)h;
    return result == -1 ? -2 : result;
}

static void nn_row_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);

    tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef nn_row_methods[] = {
    {"_asdict", nn_row_asdict, METH_NOARGS, "Return the members as a dict, in C order."},
    {"_replace", (PyCFunction)(void (*)(void))nn_row_replace, METH_VARARGS | METH_KEYWORDS,
     "Return a new row with the given members replaced."},
    {NULL, NULL, 0, NULL}};

#define NN_ROW_SPEC(var, pyname, getset, doc)                                                               \
    static PyType_Slot var##_slots[] = {                                                                    \
        {Py_tp_doc, (void *)doc},                                                                           \
        {Py_tp_new, (void *)nn_row_tp_new},                                                                 \
        {Py_tp_dealloc, (void *)nn_row_dealloc},                                                            \
        {Py_tp_repr, (void *)nn_row_repr},                                                                  \
        {Py_tp_richcompare, (void *)nn_row_richcompare},                                                    \
        {Py_tp_hash, (void *)nn_row_hash},                                                                  \
        {Py_tp_getset, (void *)getset},                                                                     \
        {Py_tp_methods, (void *)nn_row_methods},                                                            \
        {0, NULL}};                                                                                         \
    static PyType_Spec var = {"netnotify." pyname, 0, 0, Py_TPFLAGS_DEFAULT, var##_slots}

NN_ROW_SPEC(nn_if_spec, "MibIpInterfaceRow", nn_if_getset,
            "MIB_IPINTERFACE_ROW: the IP settings of one interface for one address family.");
NN_ROW_SPEC(nn_addr_spec, "MibUnicastIpAddressRow", nn_addr_getset,
            "MIB_UNICASTIPADDRESS_ROW: one unicast IP address of an interface.");
NN_ROW_SPEC(nn_route_spec, "MibIpForwardRow2", nn_route_getset, "MIB_IPFORWARD_ROW2: one IP route.");

int nn_rows_init(PyObject *module, nn_state *st)
{
    PyType_Spec *specs[NN_ROW_KINDS] = {&nn_if_spec, &nn_addr_spec, &nn_route_spec};
    static const char *aliases[NN_ROW_KINDS] = {"MIB_IPINTERFACE_ROW", "MIB_UNICASTIPADDRESS_ROW",
                                                "MIB_IPFORWARD_ROW2"};
    int k;

    for (k = 0; k < NN_ROW_KINDS; k++) {
        specs[k]->basicsize = (int)(offsetof(nn_rowobj, u) + nn_row_size((nn_kind)k));
        PyObject *fields;
        int rc;
        st->row_type[k] = PyType_FromModuleAndSpec(module, specs[k], NULL);
        if (st->row_type[k] == NULL)
            return -1;
        /* _fields is a class attribute, as on a namedtuple; setting it is why the row
         * types are not Py_TPFLAGS_IMMUTABLETYPE (their instances are immutable). */
        fields = nn_row_fields_tuple((nn_kind)k);
        if (fields == NULL)
            return -1;
        rc = PyObject_SetAttrString(st->row_type[k], "_fields", fields);
        Py_DECREF(fields);
        if (rc < 0)
            return -1;
        if (PyModule_AddObjectRef(module, nn_kinds[k].name, st->row_type[k]) < 0 ||
            PyModule_AddObjectRef(module, aliases[k], st->row_type[k]) < 0)
            return -1;
    }
    return 0;
}
