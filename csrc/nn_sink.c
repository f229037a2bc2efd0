/*
 * nn_sink.c - _PlainSink: netnotify.watch's normalization and consumer loop in C, for the
 * common watcher (Linux, unbounded queue, no callback, no settle window).
 *
 * A watcher's Python code (Watcher._on_row, _normalize, _get in _watch.py) is the
 * reference; this is the same logic for the one configuration where it is the whole
 * cost of a change, written without a Python frame: as a registration's callback it
 * normalizes each row into the watcher's queue under the watcher's lock, and take() is
 * the consumer's loop (pop the queue, or read the registration's socket on this thread
 * until something is queued). Anything else (the watcher starting, closed, its socket
 * lent to an event loop or read by another thread) goes to the Python code: the
 * callback then calls Watcher._on_row, take() returns None and the caller uses get().
 *
 * The sink reads the watcher's attributes each time it needs them (a fork replaces the
 * lock; close() changes the flags), except the containers that never change: _state,
 * _state_known and _queue.
 */
#include "nn_py.h"

#include <time.h>

typedef struct {
    PyObject_HEAD
    PyObject *watcher;
    PyObject *state;       /* dict: (kind, row._identity) -> (row, complete) */
    PyObject *state_known; /* set of the kinds whose table was read */
    PyObject *queue;       /* deque of events */
    PyObject *classes;     /* dict: kind -> event class */
    PyObject *changes;     /* (Change.CHANGE, Change.ADD, Change.DELETE): by notification type */
    PyObject *lifetimes;   /* _only_lifetimes_differ(old, new) */
    int ignore_lifetimes;
} nn_sinkobj;

/* The names the sink looks up; interned once per module. */
enum {
    NN_S_LOCK,
    NN_S_CLOSED,
    NN_S_HELD,
    NN_S_HERE,
    NN_S_HERE_READER,
    NN_S_LENT,
    NN_S_WAITING,
    NN_S_ASYNC_WAITERS,
    NN_S_WAKE,
    NN_S_POKE_READER,
    NN_S_ON_ROW,
    NN_S_READ_HERE,
    NN_S_ACQUIRE,
    NN_S_RELEASE,
    NN_S_APPEND,
    NN_S_POPLEFT,
    NN_S_IDENTITY,
    NN_S_CHANGE,
    NN_S_ROW,
    NN_S_TIME,
    NN_S_COMPLETE,
    NN_S_COUNT
};

_Static_assert(NN_S_COUNT == NN_SINK_NAMES, "nn_state.sink_names holds the names");

static const char *const nn_sink_names[NN_S_COUNT] = {
    "_lock",   "_closed", "_held",    "_here",   "_here_reader", "_lent",  "_waiting",
    "_async_waiters", "_wake", "_poke_reader", "_on_row", "_read_here", "acquire", "release",
    "append",  "popleft", "_identity", "change", "row",          "time",   "complete"};

static PyObject **nn_sink_name(PyObject *self)
{
    return nn_state_of_type(Py_TYPE(self))->sink_names;
}

/* ------------------------------------------------------------------ small helpers */

/* The truth of watcher.<name>: 1, 0, or -1 with an exception. */
static int nn_sink_flag(nn_sinkobj *s, PyObject *name)
{
    PyObject *v = PyObject_GetAttr(s->watcher, name);
    int rc;

    if (v == NULL)
        return -1;
    rc = PyObject_IsTrue(v);
    Py_DECREF(v);
    return rc;
}

/* watcher._lock, acquired (a new reference, to release with nn_sink_unlock), or NULL. */
static PyObject *nn_sink_lock(nn_sinkobj *s)
{
    PyObject **n = nn_sink_name((PyObject *)s);
    PyObject *lock = PyObject_GetAttr(s->watcher, n[NN_S_LOCK]), *r;

    if (lock == NULL)
        return NULL;
    r = PyObject_CallMethodObjArgs(lock, n[NN_S_ACQUIRE], NULL);
    if (r == NULL) {
        Py_DECREF(lock);
        return NULL;
    }
    Py_DECREF(r);
    return lock;
}

/* Releases and lets go of lock; an exception already set is kept (and wins). -1 on failure. */
static int nn_sink_unlock(PyObject *self, PyObject *lock)
{
    PyObject *type, *value, *tb, *r;

    PyErr_Fetch(&type, &value, &tb);
    r = PyObject_CallMethodObjArgs(lock, nn_sink_name(self)[NN_S_RELEASE], NULL);
    Py_DECREF(lock);
    if (type != NULL) {
        Py_XDECREF(r);
        PyErr_Restore(type, value, tb);
        return -1;
    }
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* time.time(), as Watcher._on_row stamps a change. */
static PyObject *nn_sink_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return PyFloat_FromDouble((double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
}

/* cls(change, row, when, complete) as _watch._event_maker makes it: object.__new__(cls),
 * then each slot set through its descriptor (the frozen dataclass's __setattr__ refuses). */
static PyObject *nn_sink_event(nn_sinkobj *s, PyObject *cls, PyObject *change, PyObject *row, PyObject *when,
                               PyObject *complete)
{
    PyObject **n = nn_sink_name((PyObject *)s);
    allocfunc alloc;
    PyObject *event = NULL;

    if (!PyType_Check(cls)) {
        nn_type_error(cls, "an event class must be a type");
        return NULL;
    }
    alloc = (allocfunc)PyType_GetSlot((PyTypeObject *)cls, Py_tp_alloc);
    if (alloc == NULL || (event = alloc((PyTypeObject *)cls, 0)) == NULL)
        goto error;
    if (PyObject_GenericSetAttr(event, n[NN_S_CHANGE], change) < 0 ||
        PyObject_GenericSetAttr(event, n[NN_S_ROW], row) < 0 ||
        PyObject_GenericSetAttr(event, n[NN_S_TIME], when) < 0 ||
        PyObject_GenericSetAttr(event, n[NN_S_COMPLETE], complete) < 0)
        goto error;
    return event;
error:
    if (alloc == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_SystemError, "event class without tp_alloc");
    Py_XDECREF(event);
    return NULL;
}

/* ------------------------------------------------------------------ the callback */

/* Watcher._normalize for the plain watcher, the lock held: the event for one change, or
 * Py_None when it changes nothing the consumer sees; NULL with an exception. */
static PyObject *nn_sink_normalize(nn_sinkobj *s, PyObject *kind, PyObject *change, PyObject *row,
                                   PyObject *when)
{
    PyObject **n = nn_sink_name((PyObject *)s);
    PyObject *identity = NULL, *key = NULL, *previous, *cls = NULL, *entry = NULL, *result = NULL;
    PyObject *del = PyTuple_GetItem(s->changes, 2);
    int r;

    if (del == NULL || (identity = PyObject_GetAttr(row, n[NN_S_IDENTITY])) == NULL)
        goto error;
    if ((key = PyTuple_Pack(2, kind, identity)) == NULL)
        goto error;
    previous = PyDict_GetItemWithError(s->state, key); /* borrowed */
    if (previous == NULL && PyErr_Occurred())
        goto error;
    if (previous != NULL && (!PyTuple_Check(previous) || PyTuple_Size(previous) != 2)) {
        PyErr_SetString(PyExc_TypeError, "a watcher's state holds (row, complete) pairs");
        goto error;
    }
    if ((cls = PyDict_GetItemWithError(s->classes, kind)) == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "not a kind this watcher has: %R", kind);
        goto error;
    }
    Py_INCREF(cls); /* kept while the event is made (an allocation may run a finalizer) */
    if (change == del) {
        if (previous == NULL) {
            if ((r = PySet_Contains(s->state_known, kind)) < 0)
                goto error;
            if (r) { /* a delete of an object the consumer never had */
                result = Py_NewRef(Py_None);
                goto error;
            }
            result = nn_sink_event(s, cls, del, row, when, Py_True);
            goto error;
        }
        entry = Py_NewRef(previous);
        if (PyDict_DelItem(s->state, key) < 0)
            goto error;
        result = nn_sink_event(s, cls, del, PyTuple_GetItem(entry, 0), when, PyTuple_GetItem(entry, 1));
        goto error;
    }
    if (previous != NULL) {
        entry = Py_NewRef(previous);
        if ((r = PyObject_RichCompareBool(PyTuple_GetItem(entry, 0), row, Py_EQ)) < 0)
            goto error;
        if (r) {
            result = Py_NewRef(Py_None);
            goto error;
        }
    }
    {
        PyObject *pair = PyTuple_Pack(2, row, Py_True);
        if (pair == NULL)
            goto error;
        r = PyDict_SetItem(s->state, key, pair);
        Py_DECREF(pair);
        if (r < 0)
            goto error;
    }
    if (entry != NULL && s->ignore_lifetimes) {
        PyObject *same = PyObject_CallFunctionObjArgs(s->lifetimes, PyTuple_GetItem(entry, 0), row, NULL);
        if (same == NULL)
            goto error;
        r = PyObject_IsTrue(same);
        Py_DECREF(same);
        if (r < 0)
            goto error;
        if (r) {
            result = Py_NewRef(Py_None);
            goto error;
        }
    }
    result = nn_sink_event(s, cls, PyTuple_GetItem(s->changes, entry == NULL ? 1 : 0), row, when, Py_True);
error:
    Py_XDECREF(identity);
    Py_XDECREF(key);
    Py_XDECREF(cls);
    Py_XDECREF(entry);
    return result;
}

/* Queued: wake who waits, as the plain branch of Watcher._normalize does. 0 or -1. */
static int nn_sink_wake(nn_sinkobj *s)
{
    PyObject **n = nn_sink_name((PyObject *)s);
    PyObject *reader = NULL, *r = NULL;
    long long ident;
    int waiting, rc = -1;

    if ((waiting = nn_sink_flag(s, n[NN_S_WAITING])) < 0)
        goto error;
    if (!waiting && (waiting = nn_sink_flag(s, n[NN_S_ASYNC_WAITERS])) < 0)
        goto error;
    if (waiting) {
        r = PyObject_CallMethodObjArgs(s->watcher, n[NN_S_WAKE], NULL);
        rc = r == NULL ? -1 : 0;
        goto error;
    }
    if ((reader = PyObject_GetAttr(s->watcher, n[NN_S_HERE_READER])) == NULL)
        goto error;
    ident = PyLong_AsLongLong(reader);
    if (ident == -1 && PyErr_Occurred())
        goto error;
    if (ident > 0 && (unsigned long long)ident != (unsigned long long)PyThread_get_thread_ident()) {
        r = PyObject_CallMethodObjArgs(s->watcher, n[NN_S_POKE_READER], NULL);
        rc = r == NULL ? -1 : 0;
        goto error;
    }
    rc = 0;
error:
    Py_XDECREF(reader);
    Py_XDECREF(r);
    return rc;
}

/* sink(kind, row, notification_type): the registration's callback, Watcher._on_row. */
static PyObject *nn_sink_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    nn_sinkobj *s = (nn_sinkobj *)self;
    PyObject **n = nn_sink_name(self);
    PyObject *kind, *row, *ntype, *change, *when = NULL, *lock = NULL, *held = NULL, *event = NULL;
    PyObject *result = NULL;
    long type;
    int closed;

    if (kwargs != NULL && PyDict_Size(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError, "_PlainSink() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "_PlainSink", 3, 3, &kind, &row, &ntype))
        return NULL;
    if (!PyLong_Check(ntype)) {
        nn_type_error(ntype, "the notification type must be an int");
        return NULL;
    }
    type = PyLong_AsLong(ntype);
    if (type == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
    }
    if (row == Py_None || type < 0 || type > 2)
        Py_RETURN_NONE; /* no row, or the initial notification: not a change */
    {
        nn_state *st = nn_state_of_type(Py_TYPE(self));
        int k, is_row = 0;

        for (k = 0; k < NN_ROW_KINDS && !is_row; k++)
            is_row = Py_IS_TYPE(row, (PyTypeObject *)st->row_type[k]);
        if (!is_row) {
            nn_type_error(row, "a row must be a MibIpInterfaceRow, MibUnicastIpAddressRow or MibIpForwardRow2");
            return NULL;
        }
    }
    change = PyTuple_GetItem(s->changes, type);
    if (change == NULL || (when = nn_sink_now()) == NULL)
        return NULL;
    if ((lock = nn_sink_lock(s)) == NULL)
        goto error;
    if ((closed = nn_sink_flag(s, n[NN_S_CLOSED])) < 0)
        goto error;
    if (closed) {
        result = Py_NewRef(Py_None);
        goto error;
    }
    if ((held = PyObject_GetAttr(s->watcher, n[NN_S_HELD])) == NULL)
        goto error;
    if (held != Py_None) { /* the watcher is starting: Watcher._on_row holds it back (the lock is an RLock) */
        result = PyObject_CallMethodObjArgs(s->watcher, n[NN_S_ON_ROW], kind, row, ntype, NULL);
        goto error;
    }
    if ((event = nn_sink_normalize(s, kind, change, row, when)) == NULL)
        goto error;
    if (event != Py_None) {
        PyObject *r = PyObject_CallMethodObjArgs(s->queue, n[NN_S_APPEND], event, NULL);
        if (r == NULL)
            goto error;
        Py_DECREF(r);
        if (nn_sink_wake(s) < 0)
            goto error;
    }
    result = Py_NewRef(Py_None);
error:
    if (lock != NULL && nn_sink_unlock(self, lock) < 0)
        Py_CLEAR(result);
    Py_XDECREF(when);
    Py_XDECREF(held);
    Py_XDECREF(event);
    return result;
}

/* ------------------------------------------------------------------ the consumer */

/* Sets watcher._here_reader. 0, or -1 when an exception is set: one already set on entry is
 * kept (the attribute is still set), and a failure of its own is raised unless one was. */
static int nn_sink_set_reader(nn_sinkobj *s, unsigned long ident)
{
    PyObject *type, *value, *tb, *v;
    int rc;

    PyErr_Fetch(&type, &value, &tb);
    v = PyLong_FromUnsignedLong(ident);
    rc = v == NULL ? -1 : PyObject_SetAttr(s->watcher, nn_sink_name((PyObject *)s)[NN_S_HERE_READER], v);
    Py_XDECREF(v);
    if (type != NULL) {
        if (rc < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return rc;
}

/* take(): the next event of a plain watcher, as get() returns it with no timeout: popped
 * from the queue, or, when it is empty, read from the registration's socket on this
 * thread (its callback, this sink, queues what comes) until something is queued. None
 * when the Python code must decide (closed, lent to an event loop, read by another
 * thread or by the dispatcher): get() then. */
static PyObject *nn_sink_take(PyObject *self, PyObject *unused)
{
    nn_sinkobj *s = (nn_sinkobj *)self;
    PyObject **n = nn_sink_name(self);
    PyObject *lock = NULL, *here = NULL, *read = NULL, *result = NULL;
    unsigned long me = PyThread_get_thread_ident();
    int busy;

    (void)unused;
    for (;;) {
        Py_ssize_t queued;

        /* Popped without the lock, as get() does (a deque's popleft is atomic) */
        if ((queued = PyObject_Size(s->queue)) < 0)
            goto error;
        if (queued > 0) {
            result = PyObject_CallMethodObjArgs(s->queue, n[NN_S_POPLEFT], NULL);
            if (result != NULL || !PyErr_ExceptionMatches(PyExc_IndexError))
                goto error;
            PyErr_Clear(); /* another consumer took it */
            continue;
        }
        if ((lock = nn_sink_lock(s)) == NULL)
            goto error;
        if ((queued = PyObject_Size(s->queue)) < 0)
            goto error;
        if (queued > 0) { /* queued meanwhile: popped at the top */
            if (nn_sink_unlock(self, lock) < 0) {
                lock = NULL;
                goto error;
            }
            lock = NULL;
            continue;
        }
        if ((busy = nn_sink_flag(s, n[NN_S_CLOSED])) != 0 || (busy = nn_sink_flag(s, n[NN_S_LENT])) != 0 ||
            (busy = nn_sink_flag(s, n[NN_S_HERE_READER])) != 0) {
            if (busy > 0)
                result = Py_NewRef(Py_None);
            goto error;
        }
        if ((here = PyObject_GetAttr(s->watcher, n[NN_S_HERE])) == NULL)
            goto error;
        if (here == Py_None) {
            result = Py_NewRef(Py_None);
            goto error;
        }
        if (nn_sink_set_reader(s, me) < 0)
            goto error;
        if (nn_sink_unlock(self, lock) < 0) {
            lock = NULL;
            (void)nn_sink_set_reader(s, 0);
            goto error;
        }
        lock = NULL;
        read = PyObject_CallMethodObjArgs(here, n[NN_S_READ_HERE], NULL); /* the callbacks run here */
        Py_CLEAR(here);
        /* _here_reader back to 0 under the lock, also after an exception in the read (a signal's),
         * which waits meanwhile; a failed acquire still clears it */
        {
            PyObject *type, *value, *tb;
            int failed;

            PyErr_Fetch(&type, &value, &tb);
            lock = nn_sink_lock(s);
            failed = nn_sink_set_reader(s, 0) < 0;
            if (lock != NULL && nn_sink_unlock(self, lock) < 0)
                failed = 1;
            lock = NULL;
            if (type != NULL) {
                PyErr_Clear(); /* the read's exception wins */
                PyErr_Restore(type, value, tb);
                failed = 1;
            }
            if (failed) {
                Py_CLEAR(read);
                goto error;
            }
        }
        if (read != Py_True) { /* the dispatcher reads the socket now: get() waits for it */
            Py_CLEAR(read);
            result = Py_NewRef(Py_None);
            goto error;
        }
        Py_CLEAR(read);
    }
error:
    if (lock != NULL && nn_sink_unlock(self, lock) < 0)
        Py_CLEAR(result);
    Py_XDECREF(here);
    return result;
}

/* ------------------------------------------------------------------ the type */

static PyObject *nn_sink_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"watcher", "classes", "changes", "only_lifetimes_differ", "ignore_lifetimes", NULL};
    PyObject *watcher, *classes, *changes, *lifetimes;
    nn_sinkobj *s = NULL;
    int ignore;
    allocfunc alloc;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O!Op:_PlainSink", kwlist, &watcher, &PyDict_Type, &classes,
                                     &PyTuple_Type, &changes, &lifetimes, &ignore))
        return NULL;
    if (PyTuple_Size(changes) != 3) {
        PyErr_SetString(PyExc_ValueError, "changes must be (CHANGE, ADD, DELETE)");
        return NULL;
    }
    if (!PyCallable_Check(lifetimes)) {
        nn_type_error(lifetimes, "only_lifetimes_differ must be callable");
        return NULL;
    }
    alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    if ((s = (nn_sinkobj *)alloc(type, 0)) == NULL)
        return NULL;
    s->watcher = Py_NewRef(watcher);
    s->classes = Py_NewRef(classes);
    s->changes = Py_NewRef(changes);
    s->lifetimes = Py_NewRef(lifetimes);
    s->ignore_lifetimes = ignore;
    if ((s->state = PyObject_GetAttrString(watcher, "_state")) == NULL ||
        (s->state_known = PyObject_GetAttrString(watcher, "_state_known")) == NULL ||
        (s->queue = PyObject_GetAttrString(watcher, "_queue")) == NULL)
        goto error;
    if (!PyDict_Check(s->state) || !PyAnySet_Check(s->state_known)) {
        PyErr_SetString(PyExc_TypeError, "the watcher's _state must be a dict and _state_known a set");
        goto error;
    }
    return (PyObject *)s;
error:
    Py_DECREF(s);
    return NULL;
}

static int nn_sink_traverse(PyObject *self, visitproc visit, void *arg)
{
    nn_sinkobj *s = (nn_sinkobj *)self;

    Py_VISIT(Py_TYPE(self));
    Py_VISIT(s->watcher);
    Py_VISIT(s->state);
    Py_VISIT(s->state_known);
    Py_VISIT(s->queue);
    Py_VISIT(s->classes);
    Py_VISIT(s->changes);
    Py_VISIT(s->lifetimes);
    return 0;
}

static int nn_sink_clear(PyObject *self)
{
    nn_sinkobj *s = (nn_sinkobj *)self;

    Py_CLEAR(s->watcher);
    Py_CLEAR(s->state);
    Py_CLEAR(s->state_known);
    Py_CLEAR(s->queue);
    Py_CLEAR(s->classes);
    Py_CLEAR(s->changes);
    Py_CLEAR(s->lifetimes);
    return 0;
}

static void nn_sink_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);

    PyObject_GC_UnTrack(self);
    (void)nn_sink_clear(self);
    tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef nn_sink_methods[] = {
    {"take", nn_sink_take, METH_NOARGS,
     "take()\n--\n\nThe next event, as get() returns it with no timeout (reading the socket on this thread "
     "while the queue is empty), or None when get() must decide."},
    {NULL, NULL, 0, NULL}};

static PyType_Slot nn_sink_slots[] = {
    {Py_tp_doc, (void *)"_PlainSink(watcher, classes, changes, only_lifetimes_differ, ignore_lifetimes): "
                        "a plain watcher's normalization (its registration's callback) and consumer loop."},
    {Py_tp_new, (void *)nn_sink_new},
    {Py_tp_call, (void *)nn_sink_call},
    {Py_tp_traverse, (void *)nn_sink_traverse},
    {Py_tp_clear, (void *)nn_sink_clear},
    {Py_tp_dealloc, (void *)nn_sink_dealloc},
    {Py_tp_methods, (void *)nn_sink_methods},
    {0, NULL}};

static PyType_Spec nn_sink_spec = {"netnotify._netnotify._PlainSink", sizeof(nn_sinkobj), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
                                   nn_sink_slots};

int nn_sink_init(PyObject *module, nn_state *st)
{
    int i;

    for (i = 0; i < NN_S_COUNT; i++)
        if ((st->sink_names[i] = PyUnicode_InternFromString(nn_sink_names[i])) == NULL)
            return -1;
    st->sink_type = PyType_FromModuleAndSpec(module, &nn_sink_spec, NULL);
    if (st->sink_type == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "_PlainSink", st->sink_type);
}
