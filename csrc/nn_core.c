/*
 * nn_core.c - registrations, callback dispatch, cancellation and shutdown, written once
 * against the netioapi contract and shared by every backend.
 *
 * Locking rules (the whole design rests on them):
 *  - the core lock guards the [core] fields of every nn_reg, the list of live
 *    registrations and the state of every handle;
 *  - nobody waits for the GIL while holding the core lock, and nobody waits on the core
 *    condition variable while holding the GIL: cancel releases the GIL first, so a
 *    callback that is waiting for the GIL can finish and let cancel return;
 *  - a callback starts only after its registration was checked, under the core lock,
 *    not to be cancelled; cancel marks it cancelled under the same lock, then waits
 *    until no callback of it is running. Hence: after cancel returns, none runs.
 */
#include "nn_py.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum { NN_H_DONE, NN_H_ACTIVE, NN_H_CANCELLING }; /* a fresh handle is DONE */

typedef struct {
    PyObject_HEAD
    nn_reg *reg; /* [core] the registration while ACTIVE or CANCELLING */
    int state;   /* [core] */
    nn_kind kind;
    int family;
    PyObject *callback;
    PyObject *context;
    int cancelled_inside; /* a cancel from inside the running callback left reg on the handle; only
                           * the thread that runs the callback reads or writes it */
} nn_handleobj;

static nn_mutex nn_lock = NN_MUTEX_INIT;
static nn_cond nn_changed = NN_COND_INIT;
static nn_reg *nn_live;      /* [core] active registrations */
static int nn_finalizing;    /* [core] set by the atexit hook */
static unsigned nn_forks;    /* [core] forks this process descends from (incremented in the child) */

static int nn_reg_is_finalizing(void);

static nn_session *nn_open_session; /* [GIL] the session holding the GIL, and its thread */
static unsigned long nn_open_thread;

static const char *const nn_kind_names[NN_KIND_COUNT] = {"interface", "address", "route", "stable", "teredo"};
static const char *const nn_call_names[NN_KIND_COUNT] = {
    "NotifyIpInterfaceChange", "NotifyUnicastIpAddressChange", "NotifyRouteChange2",
    "NotifyStableUnicastIpAddressTable", "NotifyTeredoPortChange"};

void nn_core_lock(void)
{
    nn_mutex_lock(&nn_lock);
}

void nn_core_unlock(void)
{
    nn_mutex_unlock(&nn_lock);
}

void nn_reg_incref(nn_reg *reg)
{
    nn_core_lock();
    reg->refcnt++;
    nn_core_unlock();
}

void nn_reg_decref(nn_reg *reg)
{
    int last;

    nn_core_lock();
    last = --reg->refcnt == 0;
    nn_core_unlock();
    if (last) {
        nn_backend_release(reg);
        free(reg);
    }
}

int nn_reg_is_cancelled(nn_reg *reg)
{
    int cancelled;

    nn_core_lock();
    cancelled = reg->cancelled || nn_finalizing;
    nn_core_unlock();
    return cancelled;
}

static void nn_live_link(nn_reg *reg) /* core lock held */
{
    reg->prev = NULL;
    reg->next = nn_live;
    if (nn_live != NULL)
        nn_live->prev = reg;
    nn_live = reg;
}

static void nn_live_unlink(nn_reg *reg) /* core lock held */
{
    if (reg->prev != NULL)
        reg->prev->next = reg->next;
    else if (nn_live == reg)
        nn_live = reg->next;
    if (reg->next != NULL)
        reg->next->prev = reg->prev;
    reg->next = reg->prev = NULL;
}

/* ------------------------------------------------------------------ dispatch */

/* After a callback of h returned, on its thread (h kept alive by the caller): a cancel from
 * inside it left reg on the handle, so that a cancel() from another thread meanwhile waited
 * for the callback (nn_wait_cancelled); the callback has returned, the handle lets go. */
static void nn_callback_returned(nn_handleobj *h, nn_reg *reg)
{
    int drop = 0;

    if (!h->cancelled_inside)
        return;
    h->cancelled_inside = 0;
    nn_core_lock();
    if (h->reg == reg) {
        h->reg = NULL;
        drop = 1;
    }
    nn_core_unlock();
    if (drop)
        nn_reg_decref(reg); /* the handle's reference */
}

/* Runs with the GIL held; a single exit, so that the caller releases the GIL once. */
static void nn_dispatch(nn_reg *reg, const nn_event *ev)
{
    nn_handleobj *h = (nn_handleobj *)reg->owner;
    nn_state *st;
    PyObject *callback = NULL, *context = NULL, *arg = NULL, *result = NULL;

    Py_INCREF((PyObject *)h); /* a cancel from inside the callback drops the registry's reference */
    st = nn_state_of_type(Py_TYPE((PyObject *)h));
    callback = Py_NewRef(h->callback);
    context = Py_NewRef(h->context);
    switch (reg->kind) {
    case NN_KIND_STABLE:
        arg = nn_table_to_list(st, ev->table);
        if (arg != NULL)
            result = PyObject_CallFunctionObjArgs(callback, context, arg, NULL);
        break;
    case NN_KIND_TEREDO:
        arg = PyLong_FromUnsignedLong(ev->teredo_port);
        if (arg != NULL)
            result = nn_call3(callback, context, arg, st->notification_type[ev->type]);
        break;
    default:
        arg = ev->row != NULL ? nn_row_new(st, reg->kind, ev->row) : Py_NewRef(Py_None);
        if (arg != NULL)
            result = nn_call3(callback, context, arg, st->notification_type[ev->type]);
        break;
    }
    if (result == NULL)
        PyErr_WriteUnraisable(callback);
    /* A stable-table registration ends with its one callback. */
    if (reg->kind == NN_KIND_STABLE && nn_cancel(st, (PyObject *)h, 0) < 0)
        PyErr_WriteUnraisable((PyObject *)h);
    nn_callback_returned(h, reg);
    Py_XDECREF(result);
    Py_XDECREF(arg);
    Py_DECREF(context);
    Py_DECREF(callback);
    Py_DECREF((PyObject *)h);
}

int nn_core_deliver(nn_reg *reg, const nn_event *ev)
{
    PyGILState_STATE gil;
    int cancelled;

    nn_core_lock();
    if (reg->cancelled || nn_finalizing) {
        nn_core_unlock();
        return -1;
    }
    reg->running = 1;
    reg->runner = nn_thread_self();
    nn_core_unlock();

    gil = PyGILState_Ensure();
    nn_dispatch(reg, ev);
    PyGILState_Release(gil);

    nn_core_lock();
    reg->running = 0;
    cancelled = reg->cancelled;
    nn_cond_broadcast(&nn_changed);
    nn_core_unlock();
    return cancelled ? -1 : 0;
}

/* gil: returns-held (the session keeps it until nn_core_session_end) */
int nn_core_session_deliver(nn_session *s, nn_reg *reg, const nn_event *ev)
{
    int opening;

    if (s->reg != NULL && s->reg != reg)
        nn_core_session_end(s);
    nn_core_lock();
    if (reg->cancelled || nn_finalizing) {
        nn_core_unlock();
        nn_core_session_end(s); /* lets a waiting cancel return */
        return -1;
    }
    opening = s->reg == NULL;
    if (opening) {
        reg->running = 1;
        reg->runner = nn_thread_self();
    }
    nn_core_unlock();
    if (opening) {
        s->gilstate = (int)PyGILState_Ensure();
        s->reg = reg;
        nn_open_session = s;
        nn_open_thread = PyThread_get_thread_ident();
    }
    nn_dispatch(reg, ev);
    return 0;
}

/* gil: releases (the session's, if one is open) */
void nn_core_session_end(nn_session *s)
{
    nn_reg *reg = s->reg;

    int i, nbells;

    if (reg == NULL)
        return;
    s->reg = NULL;
    nn_open_session = NULL;
    nbells = s->nbells;
    s->nbells = 0;
    PyGILState_Release((PyGILState_STATE)s->gilstate);
#ifdef __linux__
    for (i = 0; i < nbells; i++)
        nn_bell_write(s->bell[i], s->bell_count[i]); /* a failure only costs a wake-up: nothing to report */
    nn_core_lock();
    for (i = 0; i < nbells; i++)
        nn_bell_decref(s->bell[i]);
#else
    (void)i;
    (void)nbells; /* doorbells exist on Linux only */
    nn_core_lock();
#endif
    reg->running = 0;
    nn_cond_broadcast(&nn_changed);
    nn_core_unlock();
}

int nn_core_defer_ring(nn_bell *b, unsigned count)
{
    nn_session *s = nn_open_session;
    int i;

#ifndef __linux__
    (void)b;
    (void)count;
    (void)s;
    (void)i;
    return 0; /* doorbells exist on Linux only */
#else

    if (s == NULL || nn_open_thread != PyThread_get_thread_ident())
        return 0;
    for (i = 0; i < s->nbells; i++)
        if (s->bell[i] == b) {
            s->bell_count[i] += count;
            return 1;
        }
    if (s->nbells == NN_SESSION_BELLS)
        return 0;
    nn_core_lock();
    nn_bell_incref(b);
    nn_core_unlock();
    s->bell[s->nbells] = b;
    s->bell_count[s->nbells] = count;
    s->nbells++;
    return 1;
#endif
}

/* gil: keeps-thread-state */
void nn_core_thread_attach(void)
{
    /* Ensure creates the thread state; SaveThread drops the GIL but keeps the state,
     * so later Ensure/Release pairs only take and drop the GIL. */
    PyGILState_Ensure();
    PyEval_SaveThread();
}

void nn_core_report_error(nn_reg *reg, const nn_error *err)
{
    PyGILState_STATE gil;
    nn_handleobj *h;

    nn_core_lock();
    if (reg->cancelled || nn_finalizing) {
        nn_core_unlock();
        return;
    }
    reg->running = 1; /* keeps cancel waiting, and the handle alive, while we report */
    reg->runner = nn_thread_self();
    nn_core_unlock();

    gil = PyGILState_Ensure();
    h = (nn_handleobj *)reg->owner;
    Py_INCREF((PyObject *)h); /* the hook may cancel it */
    nn_raise(nn_state_of_type(Py_TYPE((PyObject *)h)), err);
    PyErr_WriteUnraisable(h->callback);
    nn_callback_returned(h, reg);
    Py_DECREF((PyObject *)h);
    PyGILState_Release(gil);

    nn_core_lock();
    reg->running = 0;
    nn_cond_broadcast(&nn_changed);
    nn_core_unlock();
}

/* ------------------------------------------------------------------ cancel */

int nn_is_handle(nn_state *st, PyObject *obj)
{
    return PyObject_TypeCheck(obj, (PyTypeObject *)st->handle_type);
}

/* Waits, GIL released, until another thread's cancel of reg has finished. In the child of a
 * fork, a registration of the parent has nothing to wait for: the thread that was cancelling
 * it, or running its callback, did not survive the fork. */
static void nn_wait_cancelled(nn_reg *reg)
{
    Py_BEGIN_ALLOW_THREADS
    nn_core_lock();
    while (reg->forks == nn_forks && !(reg->running && nn_thread_equal(reg->runner, nn_thread_self())) &&
           (!reg->finished || reg->running))
        nn_cond_wait(&nn_changed, &nn_lock);
    nn_core_unlock();
    Py_END_ALLOW_THREADS
}

int nn_cancel(nn_state *st, PyObject *obj, int strict)
{
    nn_handleobj *h;
    nn_reg *reg;
    int state, from_callback;

    if (obj == Py_None) {
        nn_raise_code(st, NN_ERROR_INVALID_PARAMETER, "CancelMibChangeNotify2", "the handle is None");
        return -1;
    }
    if (!nn_is_handle(st, obj)) {
        nn_type_error(obj, "CancelMibChangeNotify2: expected a NotificationHandle");
        return -1;
    }
    h = (nn_handleobj *)obj;

    nn_core_lock();
    state = h->state;
    reg = h->reg;
    if (state != NN_H_ACTIVE) {
        if (reg != NULL)
            reg->refcnt++;
        nn_core_unlock();
        if (!strict && reg != NULL)
            nn_wait_cancelled(reg); /* idempotent cancel() returns when the first one has */
        if (reg != NULL)
            nn_reg_decref(reg);
        if (strict) {
            nn_raise_code(st, NN_ERROR_INVALID_HANDLE, "CancelMibChangeNotify2",
                          "the registration was already cancelled");
            return -1;
        }
        return 0;
    }
    h->state = NN_H_CANCELLING;
    reg->cancelled = 1;
    from_callback = reg->running && nn_thread_equal(reg->runner, nn_thread_self());
    nn_live_unlink(reg);
    nn_core_unlock();

    Py_BEGIN_ALLOW_THREADS
    nn_backend_cancel(reg, from_callback);
    nn_core_lock();
    /* From inside its own callback, waiting would wait for ourselves: the current
     * callback runs to its end, and the cancelled flag stops every later one. */
    while (!from_callback && reg->running)
        nn_cond_wait(&nn_changed, &nn_lock);
    reg->finished = 1;
    h->state = NN_H_DONE;
    /* From inside the callback, the handle keeps reg until the callback returns: a cancel()
     * from another thread meanwhile must wait for it, and finds it there. */
    if (!from_callback)
        h->reg = NULL;
    nn_cond_broadcast(&nn_changed);
    nn_core_unlock();
    Py_END_ALLOW_THREADS

    if (from_callback)
        h->cancelled_inside = 1; /* nn_callback_returned lets go of reg */
    else
        nn_reg_decref(reg); /* the handle's reference */
    Py_DECREF((PyObject *)h);       /* the reference the live registration held */
    return 0;
}

void nn_shutdown(void)
{
    nn_core_lock();
    nn_finalizing = 1;
    nn_core_unlock();
    for (;;) {
        PyObject *h = NULL;
        nn_core_lock();
        if (nn_live != NULL) {
            h = (PyObject *)nn_live->owner;
            Py_INCREF((PyObject *)h);
        }
        nn_core_unlock();
        if (h == NULL)
            break;
        if (nn_cancel(nn_state_of_type(Py_TYPE((PyObject *)h)), h, 0) < 0)
            PyErr_WriteUnraisable(h);
        Py_DECREF((PyObject *)h);
    }
}

#ifndef _WIN32
/* In the child of fork() only the forking thread exists: no callback is running and the
 * inherited registrations must never call back (their handles read as not active). They
 * stay listed, so that cancel() and the exit hook still release them. */
void nn_core_after_fork_child(void)
{
    nn_reg *reg;

    pthread_mutex_init(&nn_lock, NULL);
    pthread_cond_init(&nn_changed, NULL);
    nn_forks++;
    for (reg = nn_live; reg != NULL; reg = reg->next) {
        reg->cancelled = 1;
        reg->running = 0;
    }
}
#endif

/* ------------------------------------------------------------------ register */

static void nn_handle_finish(nn_handleobj *h) /* GIL held; the registration never went live */
{
    nn_reg *reg;

    nn_core_lock();
    reg = h->reg;
    h->reg = NULL;
    h->state = NN_H_DONE;
    if (reg != NULL) {
        reg->cancelled = 1;
        reg->finished = 1;
    }
    nn_core_unlock();
    if (reg != NULL)
        nn_reg_decref(reg);
    Py_DECREF((PyObject *)h); /* the live registration's reference */
}

PyObject *nn_register(nn_state *st, nn_kind kind, int family, PyObject *callback, PyObject *context,
                      int initial_notification)
{
    nn_handleobj *h = NULL;
    nn_reg *reg = NULL;
    nn_table table;
    nn_error err = {0, 0, NULL, NULL};
    PyObject *result = NULL;
    int rc, stable_now = 0, finalizing;

    nn_table_init(&table, kind);
    if (!PyCallable_Check(callback)) {
        nn_type_error(callback, "%s: callback must be callable", nn_call_names[kind]);
        goto error;
    }
    if (nn_reg_is_finalizing()) {
        PyErr_Format(PyExc_RuntimeError, "%s: the interpreter is shutting down", nn_call_names[kind]);
        goto error;
    }
    h = (nn_handleobj *)PyType_GenericAlloc((PyTypeObject *)st->handle_type, 0);
    if (h == NULL)
        goto error;
    h->kind = kind;
    h->family = family;
    h->callback = Py_NewRef(callback);
    h->context = Py_NewRef(context);
    reg = (nn_reg *)calloc(1, sizeof(*reg));
    if (reg == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    reg->kind = kind;
    reg->family = family;
    reg->initial_notification = initial_notification;
    reg->owner = h;
    reg->refcnt = 1; /* the handle's */
    nn_core_lock();
    reg->forks = nn_forks;
    h->reg = reg;
    h->state = NN_H_ACTIVE;
    nn_core_unlock();
    reg = NULL;
    Py_INCREF((PyObject *)h); /* the live registration's reference, dropped by cancel */

    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_register(h->reg, &stable_now, &table, &err);
    Py_END_ALLOW_THREADS

    if (rc < 0) {
        nn_handle_finish(h);
        nn_raise(st, &err);
        goto error;
    }
    if (stable_now) {
        nn_handle_finish(h);
        result = nn_table_to_list(st, &table);
        goto error; /* not an error: the common exit */
    }
    /* A callback (the initial notification, or a stable table) may have cancelled the
     * registration before the backend returned: then there is nothing to link. */
    nn_core_lock();
    if (h->state == NN_H_ACTIVE)
        nn_live_link(h->reg);
    finalizing = nn_finalizing && h->state == NN_H_ACTIVE;
    nn_core_unlock();
    if (finalizing) {
        /* The atexit hook ran while we registered: it did not see this one. */
        if (nn_cancel(st, (PyObject *)h, 0) == 0)
            PyErr_Format(PyExc_RuntimeError, "%s: the interpreter is shutting down", nn_call_names[kind]);
        goto error;
    }
    result = Py_NewRef((PyObject *)h);
error:
    nn_table_free(&table);
    free(reg);
    Py_XDECREF((PyObject *)h);
    return result;
}

static int nn_reg_is_finalizing(void)
{
    int f;

    nn_core_lock();
    f = nn_finalizing;
    nn_core_unlock();
    return f;
}

/* ------------------------------------------------------------------ handle type */

static PyObject *nn_handle_cancel(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (nn_cancel(nn_state_of_type(Py_TYPE(self)), self, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

#ifdef __linux__
/* Watcher support (netnotify._watch), private. The registration, referenced, while the
 * handle is active (NULL: cancelled; the methods then do nothing). */
static nn_reg *nn_handle_live_reg(nn_handleobj *h)
{
    nn_reg *reg = NULL;

    nn_core_lock();
    if (h->state == NN_H_ACTIVE && !h->reg->cancelled) {
        reg = h->reg;
        reg->refcnt++; /* nn_reg_incref takes the lock held here */
    }
    nn_core_unlock();
    return reg;
}

/* _read_here(): the calling thread reads the registration's next notifications itself,
 * delivering them to its callback on this thread (nn_backend_read_here). True after a read
 * (or a signal whose handler returned), False when the dispatcher reads them now (wait for
 * it instead). */
static PyObject *nn_handle_read_here(PyObject *self, PyObject *unused)
{
    nn_reg *reg = nn_handle_live_reg((nn_handleobj *)self);
    nn_error err = {0, 0, NULL, NULL};
    int rc;

    (void)unused;
    if (reg == NULL)
        Py_RETURN_FALSE;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_read_here(reg, &err);
    Py_END_ALLOW_THREADS
    nn_reg_decref(reg);
    if (rc < 0 && err.errnum == EINTR) {
        if (PyErr_CheckSignals() < 0)
            return NULL;
        Py_RETURN_TRUE;
    }
    if (rc < 0)
        return nn_raise(nn_state_of_type(Py_TYPE(self)), &err);
    return PyBool_FromLong(rc);
}

/* _poke_here(): a consumer's read that sleeps, or is about to, returns (nn_backend_poke_here) */
static PyObject *nn_handle_poke_here(PyObject *self, PyObject *unused)
{
    nn_reg *reg = nn_handle_live_reg((nn_handleobj *)self);

    (void)unused;
    if (reg == NULL)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    nn_backend_poke_here(reg);
    Py_END_ALLOW_THREADS
    nn_reg_decref(reg);
    Py_RETURN_NONE;
}

/* _lend(epfd): lend the socket to an event loop that watches epoll set epfd (True), or
 * not now (False: wait for the dispatcher); _lent_read(give_back): the loop reads it, and
 * gives it back with give_back (True: still lent); _lend_end(): give it back unread
 * (nn_backend_lend). */
static PyObject *nn_handle_lend(PyObject *self, PyObject *arg)
{
    nn_reg *reg;
    nn_error err = {0, 0, NULL, NULL};
    long epfd = PyLong_Check(arg) ? PyLong_AsLong(arg) : -1;
    int rc;

    if (epfd < 0 || epfd > INT_MAX) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "_lend() takes an epoll descriptor");
        return NULL;
    }
    if ((reg = nn_handle_live_reg((nn_handleobj *)self)) == NULL)
        Py_RETURN_FALSE;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_lend(reg, (int)epfd, &err);
    Py_END_ALLOW_THREADS
    nn_reg_decref(reg);
    if (rc < 0)
        return nn_raise(nn_state_of_type(Py_TYPE(self)), &err);
    return PyBool_FromLong(rc);
}

static PyObject *nn_handle_lent_read(PyObject *self, PyObject *arg)
{
    nn_reg *reg;
    int give_back = PyObject_IsTrue(arg);
    int rc;

    if (give_back < 0)
        return NULL;
    if ((reg = nn_handle_live_reg((nn_handleobj *)self)) == NULL)
        Py_RETURN_FALSE;
    Py_BEGIN_ALLOW_THREADS
    rc = nn_backend_lent_read(reg, give_back);
    Py_END_ALLOW_THREADS
    nn_reg_decref(reg);
    return PyBool_FromLong(rc == 1);
}

static PyObject *nn_handle_lend_end(PyObject *self, PyObject *unused)
{
    nn_handleobj *h = (nn_handleobj *)self;
    nn_reg *reg = NULL;

    (void)unused;
    nn_core_lock(); /* cancelled or not: a lent socket goes back (nn_stop_one takes it too) */
    if (h->reg != NULL) {
        reg = h->reg;
        reg->refcnt++;
    }
    nn_core_unlock();
    if (reg == NULL)
        Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    nn_backend_lend_end(reg);
    Py_END_ALLOW_THREADS
    nn_reg_decref(reg);
    Py_RETURN_NONE;
}
#endif

static PyObject *nn_handle_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

static PyObject *nn_handle_exit(PyObject *self, PyObject *args)
{
    (void)args;
    if (nn_cancel(nn_state_of_type(Py_TYPE(self)), self, 0) < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static PyObject *nn_handle_active(PyObject *self, void *closure)
{
    nn_handleobj *h = (nn_handleobj *)self;
    int active;

    (void)closure;
    nn_core_lock();
    active = h->state == NN_H_ACTIVE && !h->reg->cancelled; /* cancelled while ACTIVE: inherited by fork */
    nn_core_unlock();
    return PyBool_FromLong(active);
}

static PyObject *nn_handle_kind(PyObject *self, void *closure)
{
    (void)closure;
    return PyUnicode_FromString(nn_kind_names[((nn_handleobj *)self)->kind]);
}

static PyObject *nn_handle_family(PyObject *self, void *closure)
{
    nn_handleobj *h = (nn_handleobj *)self;

    (void)closure;
    if (h->kind == NN_KIND_TEREDO)
        Py_RETURN_NONE;
    return nn_family_object(nn_state_of_type(Py_TYPE(self)), h->family);
}

static PyObject *nn_handle_repr(PyObject *self)
{
    nn_handleobj *h = (nn_handleobj *)self;
    int state;

    nn_core_lock();
    state = h->state;
    if (state == NN_H_ACTIVE && h->reg->cancelled)
        state = -1; /* inherited by fork: never calls back here */
    nn_core_unlock();
    return PyUnicode_FromFormat("<NotificationHandle %s family=%d %s>", nn_kind_names[h->kind], h->family,
                                state == NN_H_ACTIVE ? "active"
                                : state == NN_H_DONE ? "cancelled"
                                : state < 0          ? "inherited"
                                                     : "cancelling");
}

static int nn_handle_traverse(PyObject *self, visitproc visit, void *arg)
{
    nn_handleobj *h = (nn_handleobj *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(h->callback);
    Py_VISIT(h->context);
    return 0;
}

static int nn_handle_clear(PyObject *self)
{
    nn_handleobj *h = (nn_handleobj *)self;
    /* Only reachable when no live registration refers to the handle. */
    Py_CLEAR(h->callback);
    Py_CLEAR(h->context);
    return 0;
}

static void nn_handle_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    nn_handleobj *h = (nn_handleobj *)self;
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);

    PyObject_GC_UnTrack(self);
    nn_handle_clear(self);
    if (h->reg != NULL) /* never live (a failed registration), or cancelled from inside a callback
                         * that could not let go (a hook that never returned to us) */
        nn_reg_decref(h->reg);
    tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef nn_handle_methods[] = {
    {"cancel", nn_handle_cancel, METH_NOARGS,
     "Cancel the registration; a second call does nothing. Returns when no callback of it runs."},
#ifdef __linux__
    {"_read_here", nn_handle_read_here, METH_NOARGS, NULL},
    {"_poke_here", nn_handle_poke_here, METH_NOARGS, NULL},
    {"_lend", nn_handle_lend, METH_O, NULL},
    {"_lent_read", nn_handle_lent_read, METH_O, NULL},
    {"_lend_end", nn_handle_lend_end, METH_NOARGS, NULL},
#endif
    {"__enter__", nn_handle_enter, METH_NOARGS, NULL},
    {"__exit__", nn_handle_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef nn_handle_getset[] = {
    {"active", nn_handle_active, NULL, "True while the registration is live.", NULL},
    {"kind", nn_handle_kind, NULL, "'interface', 'address', 'route', 'stable' or 'teredo'.", NULL},
    {"family", nn_handle_family, NULL, "The address family registered for (None for Teredo).", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyType_Slot nn_handle_slots[] = {
    {Py_tp_doc, (void *)"A registration made by a notify_* call; cancel it, or use it in a with block."},
    {Py_tp_dealloc, (void *)nn_handle_dealloc},
    {Py_tp_traverse, (void *)nn_handle_traverse},
    {Py_tp_clear, (void *)nn_handle_clear},
    {Py_tp_repr, (void *)nn_handle_repr},
    {Py_tp_methods, (void *)nn_handle_methods},
    {Py_tp_getset, (void *)nn_handle_getset},
    {0, NULL}};

static PyType_Spec nn_handle_spec = {
    "netnotify.NotificationHandle", sizeof(nn_handleobj), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    nn_handle_slots};

int nn_core_init(PyObject *module, nn_state *st)
{
    st->handle_type = PyType_FromModuleAndSpec(module, &nn_handle_spec, NULL);
    if (st->handle_type == NULL)
        return -1;
    return PyModule_AddObjectRef(module, "NotificationHandle", st->handle_type);
}
