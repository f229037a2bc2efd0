/*
 * nn_module.c - the extension module netnotify._netnotify: module state, multi-phase
 * init, the public functions (argument checking, GIL release around every native call)
 * and the translation of native errors into the exceptions of netnotify._errors.
 */
#include "nn_py.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

nn_state *nn_state_of_type(PyTypeObject *tp)
{
    return (nn_state *)PyType_GetModuleState(tp);
}

static nn_state *nn_state_of_module(PyObject *module)
{
    return (nn_state *)PyModule_GetState(module);
}

/* ------------------------------------------------------------------ errors */

static PyObject *nn_exception_for(nn_state *st, uint32_t winerror)
{
    switch (winerror) {
    case NN_ERROR_INVALID_PARAMETER:
        return st->exc[NN_EXC_INVALID_PARAMETER];
    case NN_ERROR_INVALID_HANDLE:
        return st->exc[NN_EXC_INVALID_HANDLE];
    case NN_ERROR_FILE_NOT_FOUND:
    case NN_ERROR_INVALID_NAME: /* ConvertInterfaceNameToLuidW: no interface of that name */
    case NN_ERROR_NOT_FOUND:
        return st->exc[NN_EXC_NOT_FOUND];
    case NN_ERROR_NOT_SUPPORTED:
    case NN_ERROR_PROC_NOT_FOUND:
        return st->exc[NN_EXC_NOT_SUPPORTED];
    case NN_ERROR_ACCESS_DENIED:
        return st->exc[NN_EXC_ACCESS_DENIED];
    default:
        return st->exc[NN_EXC_NETIO];
    }
}

/* Raises cls(errno, message) with .winerror set; returns NULL. */
static PyObject *nn_raise_message(nn_state *st, uint32_t winerror, int errnum, const char *message)
{
    PyObject *cls = nn_exception_for(st, winerror), *exc = NULL;

#ifdef _WIN32
    exc = PyObject_CallFunction(cls, "isOk", errnum, message, Py_None, (unsigned long)winerror);
#else
    PyObject *code = NULL;
    exc = PyObject_CallFunction(cls, "is", errnum, message);
    code = exc != NULL ? PyLong_FromUnsignedLong(winerror) : NULL;
    if (code == NULL || PyObject_SetAttrString(exc, "winerror", code) < 0)
        Py_CLEAR(exc);
    Py_XDECREF(code);
#endif
    if (exc != NULL) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static void nn_system_message(uint32_t winerror, int errnum, char *buf, size_t size)
{
#ifdef _WIN32
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, winerror, 0, buf,
                             (DWORD)size, NULL);
    (void)errnum;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        PyOS_snprintf(buf, size, "error %lu", (unsigned long)winerror);
#else
    /* The codes that say something about this API read better in Windows' words. */
    static const struct {
        uint32_t code;
        const char *text;
    } texts[] = {{NN_ERROR_NOT_FOUND, "Element not found"},
                 {NN_ERROR_INVALID_PARAMETER, "The parameter is incorrect"},
                 {NN_ERROR_INVALID_HANDLE, "The handle is invalid"},
                 {NN_ERROR_NOT_SUPPORTED, "The request is not supported"},
                 {NN_ERROR_PROC_NOT_FOUND, "The specified procedure could not be found"}};
    size_t i;

    for (i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (texts[i].code == winerror) {
            PyOS_snprintf(buf, size, "%s", texts[i].text);
            return;
        }
    PyOS_snprintf(buf, size, "%s", errnum != 0 ? strerror(errnum) : "unknown error");
#endif
}

PyObject *nn_raise(nn_state *st, const nn_error *err)
{
    char text[256], message[600];
    uint32_t winerror = err->winerror != 0 ? err->winerror : NN_ERROR_GEN_FAILURE;
    int errnum = err->errnum != 0 ? err->errnum : EIO;

    nn_system_message(winerror, errnum, text, sizeof text);
    PyOS_snprintf(message, sizeof message, "%s failed: %s (winerror %lu)%s%s", err->call ? err->call : "netnotify",
                  text, (unsigned long)winerror, err->detail ? ": " : "", err->detail ? err->detail : "");
    return nn_raise_message(st, winerror, errnum, message);
}

PyObject *nn_raise_code(nn_state *st, uint32_t winerror, const char *call, const char *what)
{
    nn_error err;
    char message[400];

    nn_error_set(&err, winerror, call);
    PyOS_snprintf(message, sizeof message, "%s: %s (winerror %lu)", call, what, (unsigned long)winerror);
    return nn_raise_message(st, winerror, err.errnum, message);
}

/* ------------------------------------------------------------------ arguments */

static int nn_parse_family(nn_state *st, PyObject *obj, const char *call, int *family)
{
    char what[160];
    long value;
    int overflow = 0;

    /* A bool is an int to Python, but never a family: a flag given in the family's place. */
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        nn_type_error(obj, "%s: family must be an int (socket.AF_UNSPEC, AF_INET or AF_INET6)", call);
        return -1;
    }
    value = PyLong_AsLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred())
        return -1;
    if (overflow || (value != AF_UNSPEC && value != AF_INET && value != AF_INET6)) {
        if (overflow)
            PyOS_snprintf(what, sizeof what, "family must be AF_UNSPEC, AF_INET or AF_INET6, not a number that large");
        else
            PyOS_snprintf(what, sizeof what, "family must be AF_UNSPEC, AF_INET or AF_INET6, not %ld", value);
        nn_raise_code(st, NN_ERROR_INVALID_PARAMETER, call, what);
        return -1;
    }
    *family = (int)value;
    return 0;
}

static PyObject *nn_notify_common(PyObject *module, PyObject *args, PyObject *kwargs, nn_kind kind,
                                  const char *fname, const char *call)
{
    static char *kwlist[] = {"family", "callback", "caller_context", "initial_notification", NULL};
    nn_state *st = nn_state_of_module(module);
    PyObject *family_obj, *callback, *context = Py_None;
    int family, initial = 0;
    char format[32];

    PyOS_snprintf(format, sizeof format, "OO|Op:%s", fname);
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, format, kwlist, &family_obj, &callback, &context, &initial))
        return NULL;
    if (nn_parse_family(st, family_obj, call, &family) < 0)
        return NULL;
    return nn_register(st, kind, family, callback, context, initial);
}

static PyObject *nn_notify_ip_interface_change(PyObject *module, PyObject *args, PyObject *kwargs)
{
    return nn_notify_common(module, args, kwargs, NN_KIND_INTERFACE, "notify_ip_interface_change",
                            "NotifyIpInterfaceChange");
}

static PyObject *nn_notify_unicast_ip_address_change(PyObject *module, PyObject *args, PyObject *kwargs)
{
    return nn_notify_common(module, args, kwargs, NN_KIND_ADDRESS, "notify_unicast_ip_address_change",
                            "NotifyUnicastIpAddressChange");
}

static PyObject *nn_notify_route_change2(PyObject *module, PyObject *args, PyObject *kwargs)
{
    return nn_notify_common(module, args, kwargs, NN_KIND_ROUTE, "notify_route_change2", "NotifyRouteChange2");
}

static PyObject *nn_notify_stable_unicast_ip_address_table(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"family", "callback", "caller_context", NULL};
    nn_state *st = nn_state_of_module(module);
    PyObject *family_obj, *callback, *context = Py_None;
    int family;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:notify_stable_unicast_ip_address_table", kwlist,
                                     &family_obj, &callback, &context))
        return NULL;
    if (nn_parse_family(st, family_obj, "NotifyStableUnicastIpAddressTable", &family) < 0)
        return NULL;
    return nn_register(st, NN_KIND_STABLE, family, callback, context, 0);
}

static PyObject *nn_notify_teredo_port_change(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"callback", "caller_context", "initial_notification", NULL};
    PyObject *callback, *context = Py_None;
    int initial = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|Op:notify_teredo_port_change", kwlist, &callback, &context,
                                     &initial))
        return NULL;
    return nn_register(nn_state_of_module(module), NN_KIND_TEREDO, AF_UNSPEC, callback, context, initial);
}

static PyObject *nn_get_teredo_port(PyObject *module, PyObject *unused)
{
    nn_error err = {0, 0, NULL, NULL};
    unsigned port = 0;
    int rc;

    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_get_teredo_port(&port, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return nn_raise(nn_state_of_module(module), &err);
    return PyLong_FromUnsignedLong(port);
}

static PyObject *nn_cancel_mib_change_notify2(PyObject *module, PyObject *handle)
{
    if (nn_cancel(nn_state_of_module(module), handle, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *nn_get_entry(PyObject *module, PyObject *row_obj, nn_kind kind)
{
    nn_state *st = nn_state_of_module(module);
    nn_error err = {0, 0, NULL, NULL};
    union {
        nn_if_row i;
        nn_addr_row a;
        nn_route_row r;
    } row;
    const void *data = nn_row_data(st, row_obj, kind);
    int rc;

    if (data == NULL)
        return NULL;
    memcpy(&row, data, nn_row_size(kind));
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_get_entry(kind, &row, &err);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return nn_raise(st, &err);
    return nn_row_new(st, kind, &row);
}

static PyObject *nn_get_ip_interface_entry(PyObject *module, PyObject *row)
{
    return nn_get_entry(module, row, NN_KIND_INTERFACE);
}

static PyObject *nn_get_unicast_ip_address_entry(PyObject *module, PyObject *row)
{
    return nn_get_entry(module, row, NN_KIND_ADDRESS);
}

static PyObject *nn_get_ip_forward_entry2(PyObject *module, PyObject *row)
{
    return nn_get_entry(module, row, NN_KIND_ROUTE);
}

static PyObject *nn_get_table(PyObject *module, PyObject *family_obj, nn_kind kind, const char *call)
{
    nn_state *st = nn_state_of_module(module);
    nn_error err = {0, 0, NULL, NULL};
    nn_table table;
    PyObject *result;
    int family, rc;

    if (nn_parse_family(st, family_obj, call, &family) < 0)
        return NULL;
    nn_table_init(&table, kind);
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_get_table(kind, family, &table, &err);
    Py_END_ALLOW_THREADS
    result = rc < 0 ? nn_raise(st, &err) : nn_table_to_list(st, &table);
    nn_table_free(&table);
    return result;
}

static PyObject *nn_get_ip_interface_table(PyObject *module, PyObject *family)
{
    return nn_get_table(module, family, NN_KIND_INTERFACE, "GetIpInterfaceTable");
}

static PyObject *nn_get_unicast_ip_address_table(PyObject *module, PyObject *family)
{
    return nn_get_table(module, family, NN_KIND_ADDRESS, "GetUnicastIpAddressTable");
}

static PyObject *nn_get_ip_forward_table2(PyObject *module, PyObject *family)
{
    return nn_get_table(module, family, NN_KIND_ROUTE, "GetIpForwardTable2");
}

/* ------------------------------------------------------------------ ConvertInterface* */

static PyObject *nn_convert_luid_to_index(PyObject *module, PyObject *arg)
{
    nn_error err = {0, 0, NULL, NULL};
    unsigned long long luid;
    uint32_t index = 0;
    int rc;

    if (nn_py_to_uint(arg, UINT64_MAX, &luid, "luid") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_luid_to_index((uint64_t)luid, &index, &err);
    Py_END_ALLOW_THREADS
    return rc < 0 ? nn_raise(nn_state_of_module(module), &err) : PyLong_FromUnsignedLong(index);
}

static PyObject *nn_convert_index_to_luid(PyObject *module, PyObject *arg)
{
    nn_error err = {0, 0, NULL, NULL};
    unsigned long long index;
    uint64_t luid = 0;
    int rc;

    if (nn_py_to_uint(arg, 0xffffffffULL, &index, "index") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_index_to_luid((uint32_t)index, &luid, &err);
    Py_END_ALLOW_THREADS
    return rc < 0 ? nn_raise(nn_state_of_module(module), &err) : PyLong_FromUnsignedLongLong(luid);
}

static PyObject *nn_convert_luid_to_name(PyObject *module, PyObject *arg)
{
    nn_error err = {0, 0, NULL, NULL};
    unsigned long long luid;
    char name[512];
    int rc;

    if (nn_py_to_uint(arg, UINT64_MAX, &luid, "luid") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_luid_to_name((uint64_t)luid, name, sizeof name, &err);
    Py_END_ALLOW_THREADS
    return rc < 0 ? nn_raise(nn_state_of_module(module), &err) : PyUnicode_DecodeFSDefault(name);
}

static PyObject *nn_convert_name_to_luid(PyObject *module, PyObject *arg)
{
    nn_state *st = nn_state_of_module(module);
    nn_error err = {0, 0, NULL, NULL};
    PyObject *encoded = NULL, *result = NULL;
    char *name;
    Py_ssize_t size;
    uint64_t luid = 0;
    int rc;

    if (!PyUnicode_Check(arg)) {
        nn_type_error(arg, "name must be a str");
        return NULL;
    }
    encoded = PyUnicode_EncodeFSDefault(arg);
    if (encoded == NULL || PyBytes_AsStringAndSize(encoded, &name, &size) < 0)
        goto error;
    if ((size_t)size != strlen(name)) {
        nn_raise_code(st, NN_ERROR_INVALID_PARAMETER, "ConvertInterfaceNameToLuidW", "the name contains a NUL");
        goto error;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_name_to_luid(name, &luid, &err);
    Py_END_ALLOW_THREADS
    result = rc < 0 ? nn_raise(st, &err) : PyLong_FromUnsignedLongLong(luid);
error:
    Py_XDECREF(encoded);
    return result;
}

/* _report_exception(exc, obj): sys.unraisablehook for an exception caught in Python,
 * exactly as for one raised by a low-level callback (the Pythonic layer's callbacks). */
static PyObject *nn_report_exception(PyObject *module, PyObject *args)
{
    PyObject *exc, *obj;

    (void)module;
    if (!PyArg_ParseTuple(args, "OO:_report_exception", &exc, &obj))
        return NULL;
    if (!PyExceptionInstance_Check(exc)) {
        nn_type_error(exc, "_report_exception: expected an exception");
        return NULL;
    }
    PyErr_SetObject(PyExceptionInstance_Class(exc), exc);
    PyErr_WriteUnraisable(obj);
    Py_RETURN_NONE;
}


static PyObject *nn_shutdown_py(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    nn_shutdown();
    Py_RETURN_NONE;
}

#define NN_KW(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS | METH_KEYWORDS

static PyMethodDef nn_methods[] = {
    {"notify_ip_interface_change", NN_KW(nn_notify_ip_interface_change),
     "notify_ip_interface_change(family, callback, caller_context=None, initial_notification=False)\n--\n\n"
     "NotifyIpInterfaceChange: call callback(caller_context, row, notification_type) on interface changes."},
    {"notify_unicast_ip_address_change", NN_KW(nn_notify_unicast_ip_address_change),
     "notify_unicast_ip_address_change(family, callback, caller_context=None, initial_notification=False)\n--\n\n"
     "NotifyUnicastIpAddressChange: call callback(caller_context, row, notification_type) on address changes."},
    {"notify_route_change2", NN_KW(nn_notify_route_change2),
     "notify_route_change2(family, callback, caller_context=None, initial_notification=False)\n--\n\n"
     "NotifyRouteChange2: call callback(caller_context, row, notification_type) on route changes."},
    {"notify_stable_unicast_ip_address_table", NN_KW(nn_notify_stable_unicast_ip_address_table),
     "notify_stable_unicast_ip_address_table(family, callback, caller_context=None)\n--\n\n"
     "NotifyStableUnicastIpAddressTable: the address table as a list if it is stable now; else a handle, and\n"
     "callback(caller_context, table) is called once when it becomes stable."},
    {"notify_teredo_port_change", NN_KW(nn_notify_teredo_port_change),
     "notify_teredo_port_change(callback, caller_context=None, initial_notification=False)\n--\n\n"
     "NotifyTeredoPortChange: call callback(caller_context, port, notification_type) on port changes."},
    {"get_teredo_port", nn_get_teredo_port, METH_NOARGS, "get_teredo_port()\n--\n\nGetTeredoPort."},
    {"cancel_mib_change_notify2", nn_cancel_mib_change_notify2, METH_O,
     "cancel_mib_change_notify2(handle)\n--\n\nCancelMibChangeNotify2: returns when no callback of the handle runs."},
    {"get_ip_interface_entry", nn_get_ip_interface_entry, METH_O,
     "get_ip_interface_entry(row)\n--\n\nGetIpInterfaceEntry: the complete row for family + LUID or index."},
    {"get_unicast_ip_address_entry", nn_get_unicast_ip_address_entry, METH_O,
     "get_unicast_ip_address_entry(row)\n--\n\nGetUnicastIpAddressEntry: the complete row for address + interface."},
    {"get_ip_forward_entry2", nn_get_ip_forward_entry2, METH_O,
     "get_ip_forward_entry2(row)\n--\n\nGetIpForwardEntry2: the complete row for prefix + next hop + interface."},
    {"get_ip_interface_table", nn_get_ip_interface_table, METH_O,
     "get_ip_interface_table(family)\n--\n\nGetIpInterfaceTable."},
    {"get_unicast_ip_address_table", nn_get_unicast_ip_address_table, METH_O,
     "get_unicast_ip_address_table(family)\n--\n\nGetUnicastIpAddressTable."},
    {"get_ip_forward_table2", nn_get_ip_forward_table2, METH_O,
     "get_ip_forward_table2(family)\n--\n\nGetIpForwardTable2."},
    {"convert_interface_luid_to_index", nn_convert_luid_to_index, METH_O,
     "convert_interface_luid_to_index(luid)\n--\n\nConvertInterfaceLuidToIndex."},
    {"convert_interface_index_to_luid", nn_convert_index_to_luid, METH_O,
     "convert_interface_index_to_luid(index)\n--\n\nConvertInterfaceIndexToLuid."},
    {"convert_interface_luid_to_name", nn_convert_luid_to_name, METH_O,
     "convert_interface_luid_to_name(luid)\n--\n\nConvertInterfaceLuidToNameW."},
    {"convert_interface_name_to_luid", nn_convert_name_to_luid, METH_O,
     "convert_interface_name_to_luid(name)\n--\n\nConvertInterfaceNameToLuidW."},
    {"_report_exception", nn_report_exception, METH_VARARGS,
     "_report_exception(exc, obj)\n--\n\nReport exc through sys.unraisablehook, naming obj."},
    {"_shutdown", nn_shutdown_py, METH_NOARGS, "Cancel every live registration (the atexit hook)."},
    {NULL, NULL, 0, NULL}};

/* ------------------------------------------------------------------ init */

static PyObject *nn_import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module), *attr;

    if (mod == NULL)
        return NULL;
    attr = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return attr;
}

static PyObject *nn_call_int(PyObject *fn, long value)
{
    PyObject *number = PyLong_FromLong(value), *result;

    if (number == NULL)
        return NULL;
    result = PyObject_CallFunctionObjArgs(fn, number, NULL);
    Py_DECREF(number);
    return result;
}

#ifndef _WIN32
static void nn_after_fork_child(void)
{
    nn_core_after_fork_child();
    nn_backend_after_fork_child();
}
#endif

static int nn_process_init(nn_state *st)
{
    static int done;
    nn_error err = {0, 0, NULL, NULL};

    if (done)
        return 0;
    if (nn_backend_init(&err) < 0) {
        nn_raise(st, &err);
        return -1;
    }
#ifndef _WIN32
    if (pthread_atfork(NULL, NULL, nn_after_fork_child) != 0) {
        PyErr_SetString(PyExc_RuntimeError, "netnotify: pthread_atfork failed");
        return -1;
    }
#endif
    done = 1;
    return 0;
}

static int nn_exec(PyObject *module)
{
    static const char *enum_names[NN_ENUM_COUNT] = {
        "NlDadState", "NlPrefixOrigin", "NlSuffixOrigin", "NlRouteProtocol", "NlRouteOrigin",
        "NlRouterDiscoveryBehavior", "NlLinkLocalAddressBehavior"};
    static const char *exc_names[NN_EXC_COUNT] = {"NetioError", "InvalidParameterError", "InvalidHandleError",
                                                  "NotFoundError", "NotSupportedError", "AccessDeniedError"};
    nn_state *st = nn_state_of_module(module);
    PyObject *ntype = NULL, *shutdown = NULL, *registered = NULL;
    int i, rc = -1;

    for (i = 0; i < NN_ENUM_COUNT; i++)
        if ((st->enums[i] = nn_import_attr("netnotify._enums", enum_names[i])) == NULL)
            goto error;
    for (i = 0; i < NN_EXC_COUNT; i++)
        if ((st->exc[i] = nn_import_attr("netnotify._errors", exc_names[i])) == NULL)
            goto error;
    if ((ntype = nn_import_attr("netnotify._enums", "MibNotificationType")) == NULL)
        goto error;
    for (i = 0; i < 4; i++)
        if ((st->notification_type[i] = nn_call_int(ntype, i)) == NULL)
            goto error;
    if ((st->address_family = nn_import_attr("socket", "AddressFamily")) == NULL ||
        (st->af_unspec = nn_call_int(st->address_family, AF_UNSPEC)) == NULL ||
        (st->af_inet = nn_call_int(st->address_family, AF_INET)) == NULL ||
        (st->af_inet6 = nn_call_int(st->address_family, AF_INET6)) == NULL ||
        (st->ipv4_address = nn_import_attr("ipaddress", "IPv4Address")) == NULL ||
        (st->ipv6_address = nn_import_attr("ipaddress", "IPv6Address")) == NULL ||
        (st->ipv4_network = nn_import_attr("ipaddress", "IPv4Network")) == NULL ||
        (st->ipv6_network = nn_import_attr("ipaddress", "IPv6Network")) == NULL ||
        (st->ip_address = nn_import_attr("ipaddress", "ip_address")) == NULL ||
        (st->ip_network = nn_import_attr("ipaddress", "ip_network")) == NULL)
        goto error;
    if (nn_rows_init(module, st) < 0 || nn_core_init(module, st) < 0 || nn_process_init(st) < 0)
        goto error;
#ifdef __linux__
    if (nn_bell_init(module, st) < 0 || nn_sink_init(module, st) < 0)
        goto error;
#endif
    if (PyModule_AddStringConstant(module, "__build_version__", NN_BUILD_VERSION) < 0)
        goto error;
    /* Cancel live registrations before finalization: a callback thread must never ask
     * for the GIL once the interpreter is being torn down. */
    if ((shutdown = PyObject_GetAttrString(module, "_shutdown")) == NULL)
        goto error;
    if ((registered = nn_import_attr("atexit", "register")) == NULL)
        goto error;
    {
        PyObject *r = PyObject_CallFunctionObjArgs(registered, shutdown, NULL);
        if (r == NULL)
            goto error;
        Py_DECREF(r);
    }
    rc = 0;
error:
    Py_XDECREF(ntype);
    Py_XDECREF(shutdown);
    Py_XDECREF(registered);
    return rc;
}

/* nn_state holds only PyObject pointers: visit and clear them as an array. */
#define NN_STATE_SLOTS (sizeof(nn_state) / sizeof(PyObject *))

static int nn_traverse(PyObject *module, visitproc visit, void *arg)
{
    PyObject **slots = (PyObject **)nn_state_of_module(module);
    size_t i;

    for (i = 0; i < NN_STATE_SLOTS; i++)
        Py_VISIT(slots[i]);
    return 0;
}

static int nn_clear(PyObject *module)
{
    PyObject **slots = (PyObject **)nn_state_of_module(module);
    size_t i;

    for (i = 0; i < NN_STATE_SLOTS; i++)
        Py_CLEAR(slots[i]);
    return 0;
}

static void nn_free(void *module)
{
    nn_clear((PyObject *)module);
}

static PyModuleDef_Slot nn_slots[] = {
    {Py_mod_exec, (void *)nn_exec},
#ifdef Py_mod_multiple_interpreters
    /* Backend threads enter Python with PyGILState_Ensure: main interpreter only. */
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#ifdef Py_mod_gil
    /* Shared C state (registrations, handle states, the dispatcher's queues) is
     * guarded by the core and dispatcher locks; module state, rows and a handle's
     * callback and context never change after creation. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}};

static PyModuleDef nn_moduledef = {
    PyModuleDef_HEAD_INIT,
    "netnotify._netnotify",
    "The netioapi notification API (NotifyRouteChange2 and friends), natively.",
    sizeof(nn_state),
    nn_methods,
    nn_slots,
    nn_traverse,
    nn_clear,
    nn_free,
};

PyMODINIT_FUNC PyInit__netnotify(void)
{
    return PyModuleDef_Init(&nn_moduledef);
}
