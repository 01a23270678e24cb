/* Arena implementation: a singly linked list of blocks, newest first. The
 * oldest block survives arena_reset so steady-state use never mallocs. */
#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

struct arena_block {
    arena_block *next;
    size_t size;
    max_align_t data[];
};

void arena_init(arena *a, size_t block_size, size_t limit)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : 16384;
    a->limit = limit;
}

void arena_fini(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = a->total = 0;
}

void *arena_alloc(arena *a, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    if (a->limit && a->total + size > a->limit)
        return NULL;
    if (!a->head || a->head->size - a->used < size) {
        size_t bs = size > a->block_size ? size : a->block_size;
        arena_block *b = xmalloc(sizeof(*b) + bs);
        b->size = bs;
        b->next = a->head;
        a->head = b;
        a->used = 0;
    }
    void *p = (uint8_t *)a->head->data + a->used;
    a->used += size;
    a->total += size;
    memset(p, 0, size);
    return p;
}

void arena_reset(arena *a)
{
    arena_block *b = a->head;
    if (!b)
        return;
    while (b->next) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    /* b is the oldest block; keep it only if it has the standard size. */
    if (b->size != a->block_size) {
        free(b);
        b = NULL;
    }
    if (a->head != b) {
        a->head = b;
    }
    a->used = 0;
    a->total = 0;
}
