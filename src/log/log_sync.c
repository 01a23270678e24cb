/* Durability: the syncer threads, group commit, and blocking syncs.
 *
 * A sync job lists dup()s of the fds that may hold unsynced data: the .log
 * of every segment marked unsynced (fdatasync), its open index files
 * (fdatasync), the log-start file when it changed (fdatasync), and the
 * partition directory when entries were created or removed (fsync). The job
 * is embedded in its partition, so at most one is in flight per partition:
 * requests made meanwhile set sync_again, and the completion submits one
 * more job that covers every append made since the first was built. The
 * dups keep the files open for the syncer even when retention or a close
 * drops the segment; the syncer closes them. Flags are cleared when the job
 * is built; a failed job fails the partition (sticky, no retry), so a flag
 * cleared for a job that failed never matters again.
 *
 * Threads: a small pool (log.sync.threads) takes jobs from one FIFO. Jobs
 * of different partitions run at the same time, which lets the file system
 * fold their fdatasyncs into one journal commit (measured on ext4 here:
 * 16 files, 1 thread 6.6 ms per round of fdatasyncs, 4 threads 2.6 ms).
 * Jobs of one partition never overlap (one job per partition), so a
 * partition's durable offset still only grows.
 *
 * Thread hand-off: the loop thread fills a job and links it on the syncer's
 * todo list under the mutex; a worker takes it, runs it without the lock,
 * writes status, links it on the done list under the mutex and bumps the
 * eventfd. log_syncer_drain (loop thread) takes the done list and runs each
 * completion: durable := target, close index fds that are synced and no
 * longer needed, resubmit if sync_again, then the durable callback. A
 * partition closed while its job was in flight (dead) is freed there.
 *
 * Metrics (log_syncer_stats): the runner times job_run into the job; the
 * drain counts that duration and the bytes/offsets the job was built to
 * cover into the syncer's histograms, on the loop thread, so the threads
 * share nothing more than the job they already hand over. */
#include "log/log_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/common.h"
#include "util/fault.h"
#include "util/slog.h"

struct log_syncer {
    pthread_t *threads;
    int n_threads;                     /* started */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    log_sync_job *todo, *todo_tail;    /* submitted, not yet run (FIFO) */
    log_sync_job *done, *done_tail;    /* run, waiting for log_syncer_drain */
    int efd;                           /* eventfd the worker bumps per job */
    int stop;                          /* worker exits once todo is empty */
    int manual;                        /* no threads: jobs run by log_syncer_run */
    log_sync_stats stats;              /* loop thread (log_syncer_drain) */
};

/* Run one job's syncs and close its fds. Returns 0 or -CN_EIO. */
static int job_run(log_sync_job *job)
{
    int rc = 0;
    for (size_t i = 0; i < job->n_fds; i++) {
        int r = i < job->n_data ? fault_fdatasync(job->fds[i]) : fault_fsync(job->fds[i]);
        if (r < 0 && rc == 0) {
            slog_error("fsync failed fd=%d err=%d", job->fds[i], errno);
            rc = -CN_EIO;
        }
        close(job->fds[i]);
    }
    job->n_fds = 0;
    job->n_data = 0;
    return rc;
}

/* job_run, timed into job->run_ns (the runner's thread; the loop reads it
 * after the done-list hand-off under the mutex). */
static int job_run_timed(log_sync_job *job)
{
    int64_t t0 = hist_now_ns();
    int rc = job_run(job);
    job->run_ns = hist_now_ns() - t0;
    return rc;
}

static void stats_init(log_syncer *s)
{
    hist_init(&s->stats.duration, &hist_latency_ns);
    hist_init(&s->stats.bytes, &hist_bytes);
    hist_init(&s->stats.records, &hist_records);
}

/* Loop thread, at drain: count what job recorded. */
static void stats_count(log_syncer *s, const log_sync_job *job)
{
    if (job->run_ns < 0)
        return; /* discarded unrun (simulated crash) */
    hist_observe(&s->stats.duration, job->run_ns);
    if (job->p && job->bytes > 0) {
        hist_observe(&s->stats.bytes, job->bytes);
        hist_observe(&s->stats.records, job->records);
    }
}

const log_sync_stats *log_syncer_stats(const log_syncer *s)
{
    return &s->stats;
}

static void *worker_main(void *arg)
{
    log_syncer *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->todo && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        log_sync_job *job = s->todo;
        if (!job)
            break; /* stop with nothing left to run */
        s->todo = job->next;
        if (!s->todo)
            s->todo_tail = NULL;
        pthread_mutex_unlock(&s->mu);

        job->status = job_run_timed(job);

        pthread_mutex_lock(&s->mu);
        job->next = NULL;
        if (s->done_tail)
            s->done_tail->next = job;
        else
            s->done = job;
        s->done_tail = job;
        uint64_t one = 1;
        while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
            ;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Stop and join the started workers (they finish the todo list first). */
static void stop_workers(log_syncer *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    s->n_threads = 0;
}

int log_syncer_new(log_syncer **out, int threads)
{
    *out = NULL;
    if (threads < 1)
        threads = 1;
    log_syncer *s = xcalloc(1, sizeof(*s));
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        free(s);
        return -CN_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    stats_init(s);
    s->threads = xcalloc((size_t)threads, sizeof(*s->threads));
    for (int i = 0; i < threads; i++) {
        int rc = pthread_create(&s->threads[i], NULL, worker_main, s);
        if (rc != 0) {
            slog_error("syncer thread start failed err=%d", rc);
            stop_workers(s);
            pthread_cond_destroy(&s->cv);
            pthread_mutex_destroy(&s->mu);
            close(s->efd);
            free(s->threads);
            free(s);
            return rc == EAGAIN ? -CN_ENOMEM : -CN_EIO;
        }
        s->n_threads++;
    }
    *out = s;
    return 0;
}

void log_syncer_free(log_syncer *s)
{
    if (!s)
        return;
    while (s->manual && s->todo)
        log_syncer_run(s, 0);
    stop_workers(s);
    log_syncer_drain(s); /* queued jobs ran: deliver them, free dead partitions */
    /* A completion may have submitted another job (raft.votes changed again
     * while its sync ran): no worker is left, so run such jobs here. */
    while (s->todo) {
        s->manual = 1;
        log_syncer_run(s, 0);
        log_syncer_drain(s);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    close(s->efd);
    free(s->threads);
    free(s);
}

/* Manual syncer (simulations) -------------------------------------------------------
 *
 * No threads: submitted jobs wait on the todo list until the caller runs
 * one (any of them, so completions can be reordered across partitions and
 * files) or throws them all away as a crash would. The eventfd is bumped as
 * the threads do, so log_syncer_drain works unchanged. */

int log_syncer_new_manual(log_syncer **out)
{
    *out = NULL;
    log_syncer *s = xcalloc(1, sizeof(*s));
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        free(s);
        return -CN_EIO;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->manual = 1;
    stats_init(s);
    *out = s;
    return 0;
}

size_t log_syncer_pending(const log_syncer *s)
{
    size_t n = 0;
    for (const log_sync_job *j = s->todo; j; j = j->next)
        n++;
    return n;
}

/* Unlink the i-th queued job (caller checked i < pending). */
static log_sync_job *todo_take(log_syncer *s, size_t i)
{
    log_sync_job **pp = &s->todo, *prev = NULL;
    for (; i > 0; i--) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    log_sync_job *job = *pp;
    *pp = job->next;
    if (s->todo_tail == job)
        s->todo_tail = prev;
    job->next = NULL;
    return job;
}

static void done_push(log_syncer *s, log_sync_job *job)
{
    if (s->done_tail)
        s->done_tail->next = job;
    else
        s->done = job;
    s->done_tail = job;
    uint64_t one = 1;
    while (write(s->efd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

int log_syncer_run(log_syncer *s, size_t i)
{
    if (!s->manual || i >= log_syncer_pending(s))
        return -CN_EINVAL;
    log_sync_job *job = todo_take(s, i);
    job->status = job_run_timed(job);
    done_push(s, job);
    return 0;
}

void log_syncer_discard(log_syncer *s)
{
    while (s->manual && s->todo) {
        log_sync_job *job = todo_take(s, 0);
        for (size_t k = 0; k < job->n_fds; k++)
            close(job->fds[k]);
        job->n_fds = job->n_data = 0;
        job->status = -CN_EIO;
        done_push(s, job);
    }
    log_syncer_drain(s);
}

int log_syncer_fd(const log_syncer *s)
{
    return s->efd;
}

/* Loop thread: a job finished. p may be freed (dead, or by the callback). */
static void job_complete(log_partition *p)
{
    log_sync_job *job = &p->job;
    p->sync_inflight = 0;
    if (p->dead) {
        log__partition_free(p);
        return;
    }
    int status = job->status;
    if (status < 0) {
        if (!p->failed)
            slog_error("sync failed, partition failed dir=%s durable=%lld", p->dir,
                       (long long)p->durable);
        p->failed = 1;
        p->sync_again = 0;
    } else {
        p->durable = CN_MIN(CN_MAX(p->durable, job->target), p->log_end);
        p->start_durable = CN_MAX(p->start_durable, job->start_target);
        p->rdurable = CN_MAX(p->rdurable, CN_MIN(job->rtarget, p->rlast));
        log__close_synced_indexes(p);
        int r = log__raft_synced(p, job->hold_seq, 0);
        if (p->raft)
            log__snap_synced(p, job->snap_seq);
        if (r < 0)
            status = r;
        else if (r > 0)
            p->sync_again = 1;
        if (p->sync_again && !p->failed) {
            p->sync_again = 0;
            log_sync_request(p);
        }
    }
    /* Last: the callback may close p. */
    if (p->cb)
        p->cb(p, p->durable, status, p->cb_arg);
}

void log_syncer_drain(log_syncer *s)
{
    uint64_t v;
    while (read(s->efd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&s->mu);
    log_sync_job *job = s->done;
    s->done = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (job) {
        log_sync_job *next = job->next;
        job->next = NULL;
        stats_count(s, job);
        if (job->p) {
            job_complete(job->p);
        } else {
            job->done(job->done_arg, job->status);
            free(job->fds);
            free(job);
        }
        job = next;
    }
}

/* Add dup(fd) to the job. 0 or -CN_EIO. */
static int job_add(log_sync_job *job, int fd)
{
    if (job->n_fds == job->cap_fds) {
        job->cap_fds = job->cap_fds ? job->cap_fds * 2 : 16;
        job->fds = xrealloc(job->fds, job->cap_fds * sizeof(*job->fds));
    }
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (d < 0)
        return -CN_EIO;
    job->fds[job->n_fds++] = d;
    return 0;
}

/* Fill p->job with dups of every fd that may hold unsynced data and clear
 * the flags. Returns 0, 1 when there is nothing to sync, or -CN_EIO (dup
 * failed; the dups made so far are closed). */
static int job_build(log_partition *p)
{
    log_sync_job *job = &p->job;
    job->n_fds = 0;
    job->status = 0;
    job->p = p;
    job->target = p->log_end;
    job->start_target = p->log_start;
    job->hold_seq = p->hold_seq;
    job->rtarget = p->rlast;
    job->snap_seq = p->snap_seq;
    job->run_ns = -1;
    job->bytes = p->appended_bytes - p->job_bytes_mark;
    job->records = CN_MAX(p->log_end - p->job_end_mark, 0);
    int rc = 0;
    for (size_t i = 0; i < p->n_segs && rc == 0; i++) {
        log_segment *seg = p->segs[i];
        if (!seg->unsynced)
            continue;
        rc = job_add(job, seg->file->fd);
        if (rc == 0 && seg->idx_fd >= 0)
            rc = job_add(job, seg->idx_fd);
        if (rc == 0 && seg->tidx_fd >= 0)
            rc = job_add(job, seg->tidx_fd);
        if (rc == 0 && seg->ridx_fd >= 0)
            rc = job_add(job, seg->ridx_fd);
    }
    if (rc == 0 && p->start_unsynced && p->start_fd >= 0)
        rc = job_add(job, p->start_fd);
    if (rc == 0 && p->meta_unsynced && p->meta_fd >= 0)
        rc = job_add(job, p->meta_fd);
    if (rc == 0 && p->snap_unsynced && p->snap_fd >= 0)
        rc = job_add(job, p->snap_fd);
    job->n_data = job->n_fds;
    if (rc == 0 && p->dir_unsynced)
        rc = job_add(job, p->dir_fd);
    if (rc < 0) {
        for (size_t i = 0; i < job->n_fds; i++)
            close(job->fds[i]);
        job->n_fds = job->n_data = 0;
        return rc;
    }
    if (job->n_fds == 0)
        return 1;
    for (size_t i = 0; i < p->n_segs; i++)
        p->segs[i]->unsynced = 0;
    p->start_unsynced = 0;
    p->meta_unsynced = 0;
    p->snap_unsynced = 0;
    p->dir_unsynced = 0;
    p->job_bytes_mark = p->appended_bytes;
    p->job_end_mark = p->log_end;
    return 0;
}

void log_sync_request(log_partition *p)
{
    if (p->failed || p->dead)
        return;
    if (p->sync_inflight) {
        p->sync_again = 1;
        return;
    }
    int rc = job_build(p);
    if (rc > 0) {
        /* Every file is already synced; appends may still be ahead of
         * durable only if they were covered by sync_now. */
        p->durable = CN_MAX(p->durable, p->log_end);
        p->start_durable = CN_MAX(p->start_durable, p->log_start);
        if (!p->hold)
            p->rdurable = CN_MAX(p->rdurable, p->rlast);
        return;
    }
    if (rc < 0) {
        p->failed = 1;
        slog_error("sync submit failed (dup), partition failed dir=%s", p->dir);
        if (p->cb)
            p->cb(p, p->durable, rc, p->cb_arg);
        return;
    }
    p->sync_inflight = 1;
    log_syncer *s = p->syncer;
    if (!s) {
        p->job.status = job_run(&p->job);
        job_complete(p);
        return;
    }
    pthread_mutex_lock(&s->mu);
    p->job.next = NULL;
    if (s->todo_tail)
        s->todo_tail->next = &p->job;
    else
        s->todo = &p->job;
    s->todo_tail = &p->job;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int log_syncer_fdatasync(log_syncer *s, int fd, void (*done)(void *arg, int status), void *arg)
{
    log_sync_job *job = xcalloc(1, sizeof(*job));
    job->done = done;
    job->done_arg = arg;
    job->run_ns = -1;
    if (job_add(job, fd) < 0) {
        free(job->fds);
        free(job);
        return -CN_EIO;
    }
    job->n_data = 1;
    if (!s) {
        job->status = job_run(job);
        done(arg, job->status);
        free(job->fds);
        free(job);
        return 0;
    }
    pthread_mutex_lock(&s->mu);
    if (s->todo_tail)
        s->todo_tail->next = job;
    else
        s->todo = job;
    s->todo_tail = job;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int log_partition_sync_now(log_partition *p)
{
    if (p->failed)
        return -CN_EIO;
    int rc = 0;
    /* Every .log, not only the flagged ones: after a process crash the page
     * cache may hold data recovery read back but no disk has, and a job in
     * flight may have cleared flags of files it has not synced yet. */
    for (size_t i = 0; i < p->n_segs && rc == 0; i++) {
        log_segment *seg = p->segs[i];
        if (fault_fdatasync(seg->file->fd) < 0 ||
            (seg->idx_fd >= 0 && fault_fdatasync(seg->idx_fd) < 0) ||
            (seg->tidx_fd >= 0 && fault_fdatasync(seg->tidx_fd) < 0) ||
            (seg->ridx_fd >= 0 && fault_fdatasync(seg->ridx_fd) < 0))
            rc = -errno;
    }
    if (rc == 0 && p->start_fd >= 0 && fault_fdatasync(p->start_fd) < 0)
        rc = -errno;
    if (rc == 0 && p->meta_fd >= 0 && fault_fdatasync(p->meta_fd) < 0)
        rc = -errno;
    if (rc == 0 && p->snap_fd >= 0 && fault_fdatasync(p->snap_fd) < 0)
        rc = -errno;
    if (rc == 0 && fsync(p->dir_fd) < 0)
        rc = -errno;
    if (rc < 0) {
        p->failed = 1;
        slog_error("sync failed, partition failed dir=%s err=%d", p->dir, -rc);
        return -CN_EIO;
    }
    if (!p->sync_inflight) {
        for (size_t i = 0; i < p->n_segs; i++)
            p->segs[i]->unsynced = 0;
        p->start_unsynced = 0;
        p->meta_unsynced = 0;
        p->snap_unsynced = 0;
        p->dir_unsynced = 0;
        log__close_synced_indexes(p);
    }
    if (p->raft)
        log__snap_synced(p, p->snap_seq);
    if (log__raft_synced(p, 0, 1) < 0)
        return -CN_EIO;
    p->rdurable = CN_MAX(p->rdurable, p->rlast);
    p->durable = CN_MAX(p->durable, p->log_end);
    p->start_durable = CN_MAX(p->start_durable, p->log_start);
    if (!p->sync_inflight) {
        p->job_bytes_mark = p->appended_bytes; /* a blocking sync is no group commit */
        p->job_end_mark = p->log_end;
    }
    return 0;
}

void log__close_synced_indexes(log_partition *p)
{
    for (size_t i = 0; i + 1 < p->n_segs; i++) {
        log_segment *seg = p->segs[i];
        if (seg->unsynced)
            continue;
        if (seg->idx_fd >= 0)
            close(seg->idx_fd);
        if (seg->tidx_fd >= 0)
            close(seg->tidx_fd);
        if (seg->ridx_fd >= 0)
            close(seg->ridx_fd);
        seg->idx_fd = -1;
        seg->tidx_fd = -1;
        seg->ridx_fd = -1;
    }
}

void log__partition_free(log_partition *p)
{
    log__raft_free(p);
    free(p->job.fds);
    free(p->rbuf);
    free(p->segs);
    free(p->dir);
    free(p);
}
