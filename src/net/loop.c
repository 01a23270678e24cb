/* epoll loop with a timer heap. See loop.h. */
#include "net/loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "util/common.h"

#define LOOP_MAX_EVENTS 256
#define LOOP_MAX_HOOKS 8

struct loop {
    int epfd;
    int stop;
    int64_t now;
    loop_timer **heap;
    size_t n_heap, cap_heap;
    struct { loop_hook_cb cb; void *arg; } hooks[LOOP_MAX_HOOKS];
    int n_hooks;
};

int64_t loop_now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now(const loop *l) { return l->now; }

int loop_new(loop **out)
{
    loop *l = xcalloc(1, sizeof(*l));
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
        int e = errno;
        free(l);
        return -e;
    }
    l->now = loop_now_mono();
    *out = l;
    return 0;
}

void loop_free(loop *l)
{
    if (!l)
        return;
    close(l->epfd);
    free(l->heap);
    free(l);
}

int loop_io_start(loop *l, loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *data)
{
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->data = data;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    return epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int loop_io_modify(loop *l, loop_io *io, uint32_t events)
{
    if (io->events == events)
        return 0;
    struct epoll_event ev = {.events = events, .data.ptr = io};
    if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    io->events = events;
    return 0;
}

void loop_io_stop(loop *l, loop_io *io)
{
    if (io->fd >= 0)
        epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->events = 0;
}

/* Timer heap ------------------------------------------------------------- */

static void heap_set(loop *l, size_t i, loop_timer *t)
{
    l->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (l->heap[parent]->deadline <= t->deadline)
            break;
        heap_set(l, i, l->heap[parent]);
        i = parent;
    }
    heap_set(l, i, t);
}

static void heap_down(loop *l, size_t i)
{
    loop_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->n_heap)
            break;
        if (c + 1 < l->n_heap && l->heap[c + 1]->deadline < l->heap[c]->deadline)
            c++;
        if (t->deadline <= l->heap[c]->deadline)
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

void loop_timer_init(loop_timer *t, loop_timer_cb cb, void *data)
{
    t->deadline = 0;
    t->heap_idx = SIZE_MAX;
    t->cb = cb;
    t->data = data;
}

int loop_timer_armed(const loop_timer *t) { return t->heap_idx != SIZE_MAX; }

void loop_timer_stop(loop *l, loop_timer *t)
{
    if (t->heap_idx == SIZE_MAX)
        return;
    size_t i = t->heap_idx;
    t->heap_idx = SIZE_MAX;
    l->n_heap--;
    if (i == l->n_heap)
        return;
    loop_timer *m = l->heap[l->n_heap];
    heap_set(l, i, m);
    heap_up(l, i);
    heap_down(l, m->heap_idx);
}

void loop_timer_start(loop *l, loop_timer *t, int64_t ms)
{
    loop_timer_stop(l, t);
    t->deadline = loop_now_mono() + (ms < 0 ? 0 : ms);
    if (l->n_heap == l->cap_heap) {
        l->cap_heap = l->cap_heap ? l->cap_heap * 2 : 64;
        l->heap = xrealloc(l->heap, l->cap_heap * sizeof(*l->heap));
    }
    heap_set(l, l->n_heap++, t);
    heap_up(l, t->heap_idx);
}

int loop_add_hook(loop *l, loop_hook_cb cb, void *arg)
{
    if (l->n_hooks == LOOP_MAX_HOOKS)
        return -CN_ENOMEM;
    l->hooks[l->n_hooks].cb = cb;
    l->hooks[l->n_hooks].arg = arg;
    l->n_hooks++;
    return 0;
}

void loop_remove_hook(loop *l, loop_hook_cb cb, void *arg)
{
    for (int i = 0; i < l->n_hooks; i++) {
        if (l->hooks[i].cb == cb && l->hooks[i].arg == arg) {
            memmove(&l->hooks[i], &l->hooks[i + 1],
                    (size_t)(l->n_hooks - i - 1) * sizeof(l->hooks[0]));
            l->n_hooks--;
            return;
        }
    }
}

void loop_stop(loop *l) { l->stop = 1; }

static void run_timers(loop *l)
{
    while (l->n_heap > 0 && l->heap[0]->deadline <= l->now) {
        loop_timer *t = l->heap[0];
        loop_timer_stop(l, t);
        t->cb(t);
    }
}

/* One pass: wait for events (at most max_wait_ms; -1 = until the next timer),
 * dispatch them, run due timers, then the hooks. 0 or -errno. */
static int loop_pass(loop *l, int max_wait_ms)
{
    struct epoll_event evs[LOOP_MAX_EVENTS];
    int timeout = max_wait_ms;
    if (l->n_heap > 0) {
        int64_t d = l->heap[0]->deadline - loop_now_mono();
        d = d < 0 ? 0 : CN_MIN(d, 60000);
        if (timeout < 0 || d < timeout)
            timeout = (int)d;
    }
    int n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    l->now = loop_now_mono();
    for (int i = 0; i < n; i++) {
        loop_io *io = evs[i].data.ptr;
        io->cb(io, evs[i].events);
    }
    run_timers(l);
    for (int i = 0; i < l->n_hooks; i++)
        l->hooks[i].cb(l->hooks[i].arg);
    return 0;
}

int loop_run(loop *l)
{
    l->stop = 0;
    while (!l->stop) {
        int rc = loop_pass(l, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int loop_run_once(loop *l, int timeout_ms)
{
    return loop_pass(l, timeout_ms < 0 ? 0 : timeout_ms);
}
