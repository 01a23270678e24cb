/* Arena: bump allocator for per-request scratch memory (decoded request
 * structs, response arrays). Memory is released all at once by arena_reset,
 * which keeps the first block so a steady request load allocates nothing.
 * Not thread-safe; one arena per request context. */
#ifndef CAIRN_ARENA_H
#define CAIRN_ARENA_H
#include <stddef.h>

typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;   /* current block (newest) */
    size_t used;         /* bytes used in head */
    size_t total;        /* bytes handed out since the last reset */
    size_t limit;        /* max total bytes (0 = unlimited); over it alloc fails */
    size_t block_size;   /* size of a fresh block */
} arena;

void arena_init(arena *a, size_t block_size, size_t limit);
void arena_fini(arena *a);
/* size bytes aligned to 8, zero-filled; NULL when the limit would be passed. */
void *arena_alloc(arena *a, size_t size);
/* Free all but the first block; every pointer handed out becomes invalid. */
void arena_reset(arena *a);
#endif
