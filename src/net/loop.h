/* Event loop: one epoll instance, file-descriptor watchers, one-shot timers
 * kept in a binary heap, and "idle" hooks that run once after every batch of
 * events (used to re-check parked requests after appends).
 *
 * Single-threaded: every function is for the loop thread only. Watchers and
 * timers are embedded in their owners (no allocation per watcher); the owner
 * must stop them before freeing. Times are CLOCK_MONOTONIC milliseconds. */
#ifndef CAIRN_LOOP_H
#define CAIRN_LOOP_H
#include <stddef.h>
#include <stdint.h>

typedef struct loop loop;
typedef struct loop_io loop_io;
typedef struct loop_timer loop_timer;

typedef void (*loop_io_cb)(loop_io *io, uint32_t events);   /* EPOLLIN/OUT/ERR/HUP bits */
typedef void (*loop_timer_cb)(loop_timer *t);
typedef void (*loop_hook_cb)(void *arg);

struct loop_io {
    int fd;
    uint32_t events;      /* currently registered EPOLL* mask */
    loop_io_cb cb;
    void *data;           /* owner's */
};

struct loop_timer {
    int64_t deadline;     /* monotonic ms */
    size_t heap_idx;      /* position in the heap; SIZE_MAX when not armed */
    loop_timer_cb cb;
    void *data;           /* owner's */
};

/* 0 or -errno. */
int loop_new(loop **out);
void loop_free(loop *l);   /* NULL is a no-op; watchers must be removed already */

/* Register fd with events (EPOLLIN | EPOLLOUT ...). 0 or -errno. */
int loop_io_start(loop *l, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data);
/* Change the event mask (no-op when unchanged). 0 or -errno. */
int loop_io_modify(loop *l, loop_io *io, uint32_t events);
/* Unregister (does not close fd). */
void loop_io_stop(loop *l, loop_io *io);

void loop_timer_init(loop_timer *t, loop_timer_cb cb, void *data);
/* Arm (or re-arm) to fire after ms milliseconds. */
void loop_timer_start(loop *l, loop_timer *t, int64_t ms);
void loop_timer_stop(loop *l, loop_timer *t);
int loop_timer_armed(const loop_timer *t);

/* Run cb(arg) after each batch of events and timers. At most 8 hooks.
 * 0 or -CN_ENOMEM when all are taken. */
int loop_add_hook(loop *l, loop_hook_cb cb, void *arg);
/* Remove the hook added with this cb and arg (no-op if absent). Not from a
 * hook. */
void loop_remove_hook(loop *l, loop_hook_cb cb, void *arg);

/* Run until loop_stop. Returns 0, or -errno if epoll_wait failed. */
int loop_run(loop *l);
void loop_stop(loop *l);
/* One pass of loop_run: wait at most timeout_ms for events (less when a timer
 * is due), dispatch them, run due timers and the hooks. 0 or -errno. */
int loop_run_once(loop *l, int timeout_ms);

int64_t loop_now(const loop *l);   /* cached monotonic ms of this iteration */
int64_t loop_now_mono(void);       /* fresh monotonic ms */
int64_t loop_wall_ms(void);        /* CLOCK_REALTIME ms (record timestamps) */
#endif
