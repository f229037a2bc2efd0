/* nn_util.c - portable helpers without Python: row tables and error records. */
#include "netnotify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t nn_row_size(nn_kind kind)
{
    switch (kind) {
    case NN_KIND_INTERFACE:
        return sizeof(nn_if_row);
    case NN_KIND_ADDRESS:
    case NN_KIND_STABLE:
        return sizeof(nn_addr_row);
    case NN_KIND_ROUTE:
        return sizeof(nn_route_row);
    default:
        return 0;
    }
}

void nn_table_init(nn_table *t, nn_kind kind)
{
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->row_size = nn_row_size(kind);
}

void *nn_table_push(nn_table *t)
{
    if (t->count == t->capacity) {
        size_t cap = t->capacity ? t->capacity * 2 : 64;
        void *rows;
        if (t->row_size == 0 || cap > SIZE_MAX / t->row_size)
            return NULL;
        rows = realloc(t->rows, cap * t->row_size);
        if (rows == NULL)
            return NULL;
        t->rows = rows;
        t->capacity = cap;
    }
    {
        unsigned char *slot = (unsigned char *)t->rows + t->count * t->row_size;
        memset(slot, 0, t->row_size);
        t->count++;
        return slot;
    }
}

void nn_table_free(nn_table *t)
{
    free(t->rows);
    t->rows = NULL;
    t->count = t->capacity = 0;
}

static int nn_errno_for(uint32_t winerror)
{
    switch (winerror) {
    case NN_ERROR_INVALID_PARAMETER:
        return EINVAL;
    case NN_ERROR_INVALID_HANDLE:
        return EBADF;
    case NN_ERROR_FILE_NOT_FOUND:
    case NN_ERROR_NOT_FOUND:
        return ENOENT;
    case NN_ERROR_ACCESS_DENIED:
        return EACCES;
    case NN_ERROR_NOT_ENOUGH_MEMORY:
        return ENOMEM;
    case NN_ERROR_NOT_SUPPORTED:
        return EOPNOTSUPP;
    case NN_ERROR_PROC_NOT_FOUND:
        return ENOSYS;
    default:
        return EIO;
    }
}

int nn_error_set(nn_error *err, uint32_t winerror, const char *call)
{
    err->winerror = winerror;
    err->errnum = nn_errno_for(winerror);
    err->call = call;
    err->detail = NULL;
    return -1;
}
