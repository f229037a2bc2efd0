/*
 * nn_bell.c - _Doorbell: an eventfd the Pythonic layer waits on, rung by the dispatcher
 * after it dropped the GIL (Linux).
 *
 * A watcher's consumer sleeps on the doorbell. When a callback running in a delivery
 * session rings it, the write is deferred to the end of the session, after the GIL is
 * released (nn_core_defer_ring): the consumer then wakes once and finds the GIL free,
 * instead of waking, waiting for the GIL the session holds, and waking again.
 *
 * The eventfd belongs to a C struct with a reference count (guarded by the core lock):
 * the Python object holds one reference and every session that will still write it
 * holds one, so the fd is never closed, or reused, before a deferred write is done.
 */
#include "nn_py.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct nn_bell {
    int fd;
    unsigned refcnt; /* [core] */
};

typedef struct {
    PyObject_HEAD
    nn_bell *bell;
} nn_bellobj;

void nn_bell_incref(nn_bell *b) /* core lock held */
{
    b->refcnt++;
}

void nn_bell_decref(nn_bell *b) /* core lock held */
{
    if (--b->refcnt == 0) {
        close(b->fd);
        free(b);
    }
}

int nn_bell_write(nn_bell *b, unsigned count)
{
    uint64_t value = count;
    ssize_t n;

    do
        n = write(b->fd, &value, sizeof value);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is at its maximum, the waiters wake anyway */
    return n == (ssize_t)sizeof value || (n < 0 && errno == EAGAIN) ? 0 : -1;
}

static PyObject *nn_bell_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"semaphore", NULL};
    int semaphore = 0;
    nn_bellobj *self = NULL;
    nn_bell *b = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:_Doorbell", kwlist, &semaphore))
        return NULL;
    b = (nn_bell *)malloc(sizeof *b);
    if (b == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    b->refcnt = 1;
    b->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (semaphore ? EFD_SEMAPHORE : 0));
    if (b->fd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    self = (nn_bellobj *)PyType_GenericAlloc(type, 0);
    if (self == NULL)
        goto error;
    self->bell = b;
    return (PyObject *)self;
error:
    if (b != NULL && b->fd >= 0)
        close(b->fd);
    free(b);
    return NULL;
}

static void nn_bell_release(nn_bellobj *o)
{
    if (o->bell != NULL) {
        nn_core_lock();
        nn_bell_decref(o->bell); /* a session that will still ring it holds its own reference */
        nn_core_unlock();
        o->bell = NULL;
    }
}

static void nn_bell_dealloc(PyObject *self)
{
    nn_bellobj *o = (nn_bellobj *)self;
    PyTypeObject *tp = Py_TYPE(self);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);

    nn_bell_release(o);
    tp_free(self);
    Py_DECREF(tp);
}

/* The doorbell, or NULL with ValueError set once it is closed. */
static nn_bell *nn_bell_open(PyObject *self)
{
    nn_bell *b = ((nn_bellobj *)self)->bell;

    if (b == NULL)
        PyErr_SetString(PyExc_ValueError, "the doorbell is closed");
    return b;
}

static PyObject *nn_bell_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    nn_bell_release((nn_bellobj *)self);
    Py_RETURN_NONE;
}

static PyObject *nn_bell_ring(PyObject *self, PyObject *args)
{
    nn_bell *b;
    PyObject *arg = NULL;
    unsigned long long count = 1;

    if (!PyArg_ParseTuple(args, "|O:ring", &arg))
        return NULL;
    if (arg != NULL && nn_py_to_uint(arg, 0xffffffffu, &count, "count") < 0)
        return NULL; /* TypeError, or OverflowError (negative or too large) */
    if ((b = nn_bell_open(self)) == NULL)
        return NULL;
    if (count == 0)
        Py_RETURN_NONE;
    if (!nn_core_defer_ring(b, (unsigned)count) && nn_bell_write(b, (unsigned)count) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* Reads the counter without blocking: 1 (semaphore) or the count, 0 if it is not set, -1. */
static int nn_bell_read(nn_bell *b, uint64_t *value)
{
    ssize_t n;

    *value = 0;
    do
        n = read(b->fd, value, sizeof *value);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    return n == (ssize_t)sizeof *value ? 0 : -1;
}

static int64_t nn_bell_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static PyObject *nn_bell_take(PyObject *self, PyObject *unused)
{
    nn_bell *b;
    uint64_t value = 0;

    (void)unused;
    if ((b = nn_bell_open(self)) == NULL)
        return NULL;
    if (nn_bell_read(b, &value) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromUnsignedLongLong(value);
}

/* wait(timeout_ms=None): sleeps, without the GIL, until the doorbell is rung or timeout_ms
 * passes (None: no limit), then takes what was rung, as take() does. One call instead of a
 * poll object, its registration, the poll and take() for each wake-up of a consumer. A
 * signal that arrives meanwhile runs its Python handler: if that raises (Ctrl-C), so does
 * wait. The eventfd is held for the wait: a close() meanwhile lets it go afterwards. */
static PyObject *nn_bell_wait(PyObject *self, PyObject *args)
{
    nn_bell *b;
    PyObject *arg = Py_None;
    long long timeout = -1;
    int64_t deadline = 0;
    uint64_t value = 0;
    int r, errnum = 0, failed = 0;

    if (!PyArg_ParseTuple(args, "|O:wait", &arg))
        return NULL;
    if (arg != Py_None) {
        timeout = PyLong_AsLongLong(arg);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
        if (timeout < 0) {
            PyErr_SetString(PyExc_ValueError, "timeout_ms must be None or at least 0");
            return NULL;
        }
        if (timeout > INT32_MAX)
            timeout = INT32_MAX; /* about 25 days at once: the caller loops */
    }
    if ((b = nn_bell_open(self)) == NULL)
        return NULL;
    nn_core_lock();
    nn_bell_incref(b);
    nn_core_unlock();
    if (timeout >= 0)
        deadline = nn_bell_now_ms() + timeout;
    for (;;) {
        struct pollfd pfd;
        int ms = -1; /* no limit */
        if (timeout >= 0) {
            int64_t left = deadline - nn_bell_now_ms();
            ms = left > 0 ? (int)left : 0;
        }
        pfd.fd = b->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        Py_BEGIN_ALLOW_THREADS
        r = poll(&pfd, 1, ms);
        errnum = errno;
        if (r > 0 && nn_bell_read(b, &value) < 0) {
            errnum = errno;
            r = -1;
        }
        Py_END_ALLOW_THREADS
        if (r >= 0)
            break;
        if (errnum != EINTR) {
            errno = errnum;
            PyErr_SetFromErrno(PyExc_OSError);
            failed = 1;
            break;
        }
        if (PyErr_CheckSignals() < 0) {
            failed = 1;
            break;
        }
    }
    nn_core_lock();
    nn_bell_decref(b);
    nn_core_unlock();
    if (failed)
        return NULL;
    return PyLong_FromUnsignedLongLong(value);
}

static PyObject *nn_bell_fileno(PyObject *self, PyObject *unused)
{
    nn_bell *b;

    (void)unused;
    if ((b = nn_bell_open(self)) == NULL)
        return NULL;
    return PyLong_FromLong(b->fd);
}

static PyMethodDef nn_bell_methods[] = {
    {"ring", nn_bell_ring, METH_VARARGS,
     "ring(count=1)\n--\n\nAdd count to the eventfd: when the running delivery session ends if called from its "
     "callback, else now."},
    {"take", nn_bell_take, METH_NOARGS,
     "take()\n--\n\nRead the eventfd without blocking: 1 (semaphore), the count, or 0 if it is not set."},
    {"wait", nn_bell_wait, METH_VARARGS,
     "wait(timeout_ms=None)\n--\n\nSleep without the GIL until the doorbell is rung or timeout_ms passes "
     "(None: no limit), then take what was rung as take() does (0: timed out, or another waiter took it)."},
    {"fileno", nn_bell_fileno, METH_NOARGS, "fileno()\n--\n\nThe eventfd, to wait on with poll."},
    {"close", nn_bell_close, METH_NOARGS,
     "close()\n--\n\nLet the eventfd go (closed once no delivery session still has to ring it); idempotent. "
     "ring, take and fileno then raise ValueError."},
    {NULL, NULL, 0, NULL}};

static PyType_Slot nn_bell_slots[] = {
    {Py_tp_doc, (void *)"_Doorbell(semaphore=False): an eventfd rung after the dispatcher drops the GIL."},
    {Py_tp_new, (void *)nn_bell_new},
    {Py_tp_dealloc, (void *)nn_bell_dealloc},
    {Py_tp_methods, (void *)nn_bell_methods},
    {0, NULL}};

static PyType_Spec nn_bell_spec = {"netnotify._netnotify._Doorbell", sizeof(nn_bellobj), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, nn_bell_slots};

int nn_bell_init(PyObject *module, nn_state *st)
{
    st->bell_type = PyType_FromModuleAndSpec(module, &nn_bell_spec, NULL);
    if (st->bell_type == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "_Doorbell", st->bell_type);
}
