/*
 * nn_map.c - open-addressing hash map (see nn_map.h).
 *
 * Linear probing over a power-of-two table, grown at 70% load, FNV-1a over the key
 * bytes. Deletion shifts the following run back so that no tombstones are needed and
 * a lookup can stop at the first empty slot.
 */
#include "nn_map.h"

#include <stdlib.h>
#include <string.h>

#define NN_MAP_MIN_CAPACITY 8u

static size_t nn_map_hash(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull; /* FNV-1a 64 */
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    /* fold the high bits in: the mask keeps only the low ones */
    h ^= h >> 32;
    return (size_t)h;
}

static unsigned char *nn_map_slot(const nn_map *m, size_t i)
{
    return m->entries + i * m->entry_size;
}

/* Index of key's slot, or of the empty slot where it would go. Needs capacity > count. */
static size_t nn_map_find(const nn_map *m, const void *key)
{
    size_t mask = m->capacity - 1;
    size_t i = nn_map_hash(key, m->key_size) & mask;
    while (m->state[i] && memcmp(nn_map_slot(m, i), key, m->key_size) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Doubles the table. The old arrays are handed back for the caller to free once it
 * is done with the key, which may point into them. */
static int nn_map_grow(nn_map *m, unsigned char **old_entries, unsigned char **old_state)
{
    size_t cap = m->capacity ? m->capacity * 2 : NN_MAP_MIN_CAPACITY;
    if (cap < m->capacity || cap > SIZE_MAX / m->entry_size)
        return -1;
    unsigned char *entries = malloc(cap * m->entry_size);
    unsigned char *state = calloc(cap, 1);
    if (!entries || !state) {
        free(entries);
        free(state);
        return -1;
    }
    nn_map old = *m;
    m->entries = entries;
    m->state = state;
    m->capacity = cap;
    for (size_t i = 0; i < old.capacity; i++) {
        if (!old.state[i])
            continue;
        size_t j = nn_map_find(m, nn_map_slot(&old, i));
        memcpy(nn_map_slot(m, j), nn_map_slot(&old, i), m->entry_size);
        m->state[j] = 1;
    }
    *old_entries = old.entries;
    *old_state = old.state;
    return 0;
}

void nn_map_init(nn_map *m, size_t key_size, size_t entry_size)
{
    memset(m, 0, sizeof(*m));
    m->key_size = key_size;
    m->entry_size = entry_size < key_size ? key_size : entry_size;
}

void nn_map_free(nn_map *m)
{
    free(m->entries);
    free(m->state);
    m->entries = NULL;
    m->state = NULL;
    m->capacity = 0;
    m->count = 0;
}

void nn_map_clear(nn_map *m)
{
    if (m->state)
        memset(m->state, 0, m->capacity);
    m->count = 0;
}

void *nn_map_get(const nn_map *m, const void *key)
{
    if (m->count == 0)
        return NULL;
    size_t i = nn_map_find(m, key);
    return m->state[i] ? nn_map_slot(m, i) : NULL;
}

void *nn_map_put(nn_map *m, const void *key, int *created)
{
    size_t i;
    if (m->capacity) {
        i = nn_map_find(m, key);
        if (m->state[i]) {
            if (created)
                *created = 0;
            return nn_map_slot(m, i);
        }
    }
    /* a new entry: keep the load at or below 70% */
    unsigned char *old_entries = NULL, *old_state = NULL;
    if ((m->count + 1) * 10 > m->capacity * 7 && nn_map_grow(m, &old_entries, &old_state) < 0)
        return NULL;
    i = nn_map_find(m, key);
    unsigned char *e = nn_map_slot(m, i);
    memmove(e, key, m->key_size); /* the key may live in the old arrays, freed below */
    memset(e + m->key_size, 0, m->entry_size - m->key_size);
    m->state[i] = 1;
    m->count++;
    free(old_entries);
    free(old_state);
    if (created)
        *created = 1;
    return e;
}

int nn_map_del(nn_map *m, const void *key)
{
    if (m->count == 0)
        return 0;
    size_t mask = m->capacity - 1;
    size_t i = nn_map_find(m, key);
    if (!m->state[i])
        return 0;
    /* Backward shift: move each later entry of the run into the hole unless its home
     * slot lies cyclically in (hole, j], where it must stay to remain reachable. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->state[j])
            break;
        size_t home = nn_map_hash(nn_map_slot(m, j), m->key_size) & mask;
        if (((j - home) & mask) < ((j - i) & mask))
            continue;
        memcpy(nn_map_slot(m, i), nn_map_slot(m, j), m->entry_size);
        i = j;
    }
    m->state[i] = 0;
    m->count--;
    return 1;
}

void *nn_map_next(const nn_map *m, size_t *it)
{
    for (size_t i = *it; i < m->capacity; i++) {
        if (m->state[i]) {
            *it = i + 1;
            return nn_map_slot(m, i);
        }
    }
    *it = m->capacity;
    return NULL;
}
