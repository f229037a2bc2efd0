/*
 * nn_py.h - the Python side of the core: module state and the functions the core
 * sources (nn_module.c, nn_rows.c, nn_core.c) share. Python.h comes first, as the
 * C API asks.
 */
#ifndef NN_PY_H
#define NN_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "netnotify.h"

#include <stdarg.h>

/* Enumerations of netnotify._enums used by row members. */
enum {
    NN_ENUM_DAD_STATE,
    NN_ENUM_PREFIX_ORIGIN,
    NN_ENUM_SUFFIX_ORIGIN,
    NN_ENUM_ROUTE_PROTOCOL,
    NN_ENUM_ROUTE_ORIGIN,
    NN_ENUM_ROUTER_DISCOVERY,
    NN_ENUM_LINK_LOCAL,
    NN_ENUM_COUNT
};

/* Exceptions of netnotify._errors. */
enum {
    NN_EXC_NETIO,
    NN_EXC_INVALID_PARAMETER,
    NN_EXC_INVALID_HANDLE,
    NN_EXC_NOT_FOUND,
    NN_EXC_NOT_SUPPORTED,
    NN_EXC_ACCESS_DENIED,
    NN_EXC_COUNT
};

#define NN_ROW_KINDS 3 /* interface, address, route: the kinds with a row type */
#define NN_SINK_NAMES 21 /* the attribute and method names _PlainSink looks up (nn_sink.c) */

typedef struct {
    PyObject *handle_type;
    PyObject *bell_type; /* _Doorbell (Linux; NULL elsewhere) */
    PyObject *sink_type; /* _PlainSink (Linux; NULL elsewhere) */
    PyObject *sink_names[NN_SINK_NAMES];
    PyObject *row_type[NN_ROW_KINDS];
    PyObject *notification_type[4]; /* MibNotificationType members */
    PyObject *enums[NN_ENUM_COUNT];
    PyObject *exc[NN_EXC_COUNT];
    PyObject *address_family; /* socket.AddressFamily */
    PyObject *af_unspec, *af_inet, *af_inet6;
    PyObject *ipv4_address, *ipv6_address, *ipv4_network, *ipv6_network;
    PyObject *ip_address, *ip_network; /* ipaddress.ip_address / ip_network (parsing) */
} nn_state;

/* Calls a callable with three arguments, with vectorcall where the API level has it. */
static inline PyObject *nn_call3(PyObject *fn, PyObject *a, PyObject *b, PyObject *c)
{
#if !defined(Py_LIMITED_API) || Py_LIMITED_API + 0 >= 0x030C0000
    PyObject *args[3] = {a, b, c};
    return PyObject_Vectorcall(fn, args, 3, NULL);
#else
    return PyObject_CallFunctionObjArgs(fn, a, b, c, NULL);
#endif
}

/* Sets TypeError "<what>, not <type name>"; what is a printf format. */
static inline void nn_type_error(PyObject *obj, const char *what, ...)
{
    char buf[256];
    PyObject *name = PyType_GetName(Py_TYPE(obj));
    va_list ap;

    va_start(ap, what);
    PyOS_vsnprintf(buf, sizeof buf, what, ap);
    va_end(ap);
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "%s, not %U", buf, name);
        Py_DECREF(name);
    }
}

/* nn_module.c */
nn_state *nn_state_of_type(PyTypeObject *tp);
/* Raises the exception that matches err and returns NULL. */
PyObject *nn_raise(nn_state *st, const nn_error *err);
PyObject *nn_raise_code(nn_state *st, uint32_t winerror, const char *call, const char *what);

/* nn_rows.c */
int nn_rows_init(PyObject *module, nn_state *st);
PyObject *nn_row_new(nn_state *st, nn_kind kind, const void *data);
/* The C row inside obj, or NULL with TypeError when obj is not a row of kind. */
const void *nn_row_data(nn_state *st, PyObject *obj, nn_kind kind);
PyObject *nn_table_to_list(nn_state *st, const nn_table *table);
PyObject *nn_family_object(nn_state *st, int family);
/* An int in [0, max]: TypeError for a non-int, OverflowError out of range. */
int nn_py_to_uint(PyObject *value, unsigned long long max, unsigned long long *out, const char *name);

/* nn_core.c */
int nn_core_init(PyObject *module, nn_state *st);
int nn_bell_init(PyObject *module, nn_state *st); /* Linux */
int nn_sink_init(PyObject *module, nn_state *st); /* Linux */
PyObject *nn_register(nn_state *st, nn_kind kind, int family, PyObject *callback, PyObject *context,
                      int initial_notification);
/* strict: 1 for cancel_mib_change_notify2 (second cancel is an error), 0 for handle.cancel(). */
int nn_cancel(nn_state *st, PyObject *handle, int strict);
int nn_is_handle(nn_state *st, PyObject *obj);
/* atexit: cancels every live registration; later registrations raise RuntimeError. */
void nn_shutdown(void);
void nn_core_after_fork_child(void);

#endif /* NN_PY_H */
