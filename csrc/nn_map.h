/*
 * nn_map.h - an open-addressing hash map of fixed-size entries, portable C, no Python.
 * Every entry starts with its key (key_size bytes, compared with memcmp: zero the
 * padding of key structs). Pointers returned stay valid until the next put or del.
 */
#ifndef NN_MAP_H
#define NN_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t key_size;
    size_t entry_size;
    size_t count;
    size_t capacity; /* power of two, or 0 */
    unsigned char *entries;
    unsigned char *state; /* per slot: 0 empty, 1 used */
} nn_map;

void nn_map_init(nn_map *m, size_t key_size, size_t entry_size);
void nn_map_free(nn_map *m);
void nn_map_clear(nn_map *m);
void *nn_map_get(const nn_map *m, const void *key);
/* Finds or inserts the entry of key. A new entry is zeroed, then the key copied in, and
 * *created (if not NULL) is set to 1; 0 for an existing one. NULL when out of memory. */
void *nn_map_put(nn_map *m, const void *key, int *created);
/* Removes the entry of key (backward-shift deletion, no tombstones). 1 removed, 0 absent. */
int nn_map_del(nn_map *m, const void *key);
/* Iteration: size_t it = 0; while ((e = nn_map_next(m, &it))) ... Do not put or del while
 * iterating; collect keys first. */
void *nn_map_next(const nn_map *m, size_t *it);

#endif /* NN_MAP_H */
