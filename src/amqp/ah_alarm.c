/* Resource alarms: publishers are blocked while the front end holds too
 * many message bytes in memory or the data directory's disk is nearly full,
 * as RabbitMQ's memory and disk alarms do (docs/amqp-plan.md
 * "Backpressure"; the contract is in amqp_int.h).
 *
 * Memory. Every amsg is counted once, when it is made (publish_done, or
 * loaded from a queue partition) and uncounted when its last ref goes:
 * sizeof(amsg) + content header + body + exchange and routing key. Content
 * being received (body frames of a publish not complete yet) is counted as
 * it arrives. Not counted: bytes queued on sockets (net's response buffers)
 * and the per-queue ring entries. The count lives in an amem shared by the
 * asrv and every counted message (a ref each), because messages can outlive
 * the front end (a connection closed after asrv_free releases its unacked
 * deliveries). The alarm sets when the count reaches mem_high and clears
 * below mem_low (90%: hysteresis, so it does not flap on every ack).
 * Charging never evaluates the alarm itself: crossing a threshold arms a
 * 0 ms timer, so connections are blocked and resumed from the loop, never
 * inside another connection's frame handler.
 *
 * Disk. statvfs on the data directory every ASRV_DISK_CHECK_MS, and sooner
 * when queue appends wrote half the headroom above the limit since the last
 * check (asrv__disk_wrote); the alarm is set while the free space
 * (f_bavail) is below disk_limit. Other writers (Kafka producers, another
 * process) are seen at the next timer check only.
 *
 * Blocking. When the first alarm sets, connection.blocked (reason "low on
 * memory", "low on disk" or both) goes to every open connection that
 * announced the capability (and to ones that open later, at open-ok). A
 * connection is paused (net_conn_pause_read) when it sends a publishing
 * frame while an alarm is set: that frame is served, the ones after it stay
 * unread, so TCP pushes back on the publisher. Connections that only
 * consume keep flowing, so their acks drain memory. When the last alarm
 * clears, connection.unblocked goes to the connections that were told, and
 * paused ones are read again (their missed-heartbeat clock restarts).
 *
 * Slow consumers. A consumer is not given a delivery while its connection
 * has ASRV_OUT_HIGH bytes queued unsent (net_conn_out_bytes; with or
 * without acks, so a no-ack consumer on a slow link is bounded too): the
 * message stays in its queue, where it is counted, and net calls on_drain
 * when the socket took the queue down to ASRV_OUT_LOW; then the queues of
 * that connection's consumers are dispatched again. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "amqp/amqp_int.h"
#include "util/common.h"
#include "util/slog.h"

typedef struct amem {
    uint64_t bytes;              /* counted now */
    uint64_t refs;               /* 1 for the asrv + 1 per counted message */
    asrv *as;                    /* NULL once the front end is freed */
} amem;

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

static void amem_unref(amem *mm)
{
    if (--mm->refs == 0)
        free(mm);
}

/* Arm the evaluation when the count is on the other side of a threshold. */
static void mem_crossed(asrv *as)
{
    int on = (as->alarms & ASRV_ALARM_MEMORY) != 0;
    uint64_t b = as->mem->bytes;
    if ((!on && b >= as->mem_high) || (on && b < as->mem_low))
        if (!loop_timer_armed(&as->alarm_eval))
            loop_timer_start(as->l, &as->alarm_eval, 0);
}

void asrv__mem_charge(asrv *as, amsg *m)
{
    CN_ASSERT(!m->mem);
    m->mem = as->mem;
    m->mem_bytes = sizeof(*m) + m->hdr_len + m->body_len + (size_t)m->exchange.len +
                   (size_t)m->routing_key.len;
    m->mem->refs++;
    m->mem->bytes += m->mem_bytes;
    mem_crossed(as);
}

void asrv__mem_release(amsg *m)
{
    amem *mm = m->mem;
    if (!mm)
        return;
    CN_ASSERT(mm->bytes >= m->mem_bytes);
    mm->bytes -= m->mem_bytes;
    m->mem = NULL;
    if (mm->as)
        mem_crossed(mm->as);
    amem_unref(mm);
}

void asrv__mem_add(asrv *as, int64_t delta)
{
    if (!as || !delta)
        return;
    if (delta < 0)
        CN_ASSERT(as->mem->bytes >= (uint64_t)-delta);
    as->mem->bytes += (uint64_t)delta;
    mem_crossed(as);
}

/* Blocking ------------------------------------------------------------------ */

static const char *alarm_reason(int alarms)
{
    if ((alarms & ASRV_ALARM_MEMORY) && (alarms & ASRV_ALARM_DISK))
        return "low on memory & disk";
    return alarms & ASRV_ALARM_MEMORY ? "low on memory" : "low on disk";
}

static void send_blocked(asrv_conn *ac)
{
    if (!ac->cap_blocked || ac->blocked_sent || ac->state != ASRV_OPEN)
        return;
    amqp_connection_blocked b;
    amqp_connection_blocked_init(&b);
    b.reason = cn_str_c(alarm_reason(ac->as->alarms));
    asrv__send_method(ac, 0, AMQP_CONNECTION_BLOCKED, &b);
    ac->blocked_sent = 1;
}

static void unblock(asrv_conn *ac)
{
    if (ac->blocked_sent && ac->state == ASRV_OPEN) {
        amqp_connection_unblocked u;
        amqp_connection_unblocked_init(&u);
        asrv__send_method(ac, 0, AMQP_CONNECTION_UNBLOCKED, &u);
    }
    ac->blocked_sent = 0;
    if (ac->blocked) {
        ac->blocked = 0;
        ac->last_recv = loop_now(ac->l); /* we did not read: no missed heartbeats */
        slog_debug("amqp connection %llu from %s: reading resumed (alarms cleared)",
                  (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c));
        if (!ac->parked) /* a declare still waits for its queue's log (ah_cluster.c) */
            net_conn_resume_read(ac->c); /* buffered frames are parsed from a loop hook */
    }
}

static int is_publishing(const amqp_frame *f)
{
    if (f->type == AMQP_FRAME_HEADER || f->type == AMQP_FRAME_BODY)
        return 1;
    if (f->type != AMQP_FRAME_METHOD || f->size < 4)
        return 0;
    uint32_t id = (uint32_t)f->payload[0] << 24 | (uint32_t)f->payload[1] << 16 |
                  (uint32_t)f->payload[2] << 8 | f->payload[3];
    return id == AMQP_BASIC_PUBLISH;
}

void asrv__alarm_frame(asrv_conn *ac, const amqp_frame *f)
{
    asrv *as = ac->as;
    if (!as || !as->alarms || ac->blocked || ac->state != ASRV_OPEN || !is_publishing(f))
        return;
    ac->blocked = 1;
    slog_debug("amqp connection %llu from %s: blocked, reading paused (publishing while %s)",
              (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c),
              alarm_reason(as->alarms));
    net_conn_pause_read(ac->c);
}

void asrv__alarm_conn_open(asrv_conn *ac)
{
    if (ac->as && ac->as->alarms)
        send_blocked(ac);
}

/* Slow consumers ----------------------------------------------------------------- */

int asrv__out_ok(asrv_conn *ac)
{
    if (net_conn_out_bytes(ac->c) < ASRV_OUT_HIGH)
        return 1;
    if (!ac->out_waiting) {
        ac->out_waiting = 1;
        slog_debug("amqp connection %llu from %s: %zu bytes unsent, deliveries wait",
                   (unsigned long long)net_conn_id(ac->c), net_conn_peer(ac->c),
                   net_conn_out_bytes(ac->c));
        net_conn_want_drain(ac->c, ASRV_OUT_LOW);
    }
    return 0;
}

void asrv__on_drain(void *arg, net_conn *c, void *cctx)
{
    (void)arg;
    (void)c;
    asrv_conn *ac = cctx;
    if (ac->relay) {
        asrv__relay_drained(ac);
        return;
    }
    ac->out_waiting = 0;
    if (!ac->as || !ac->cs)
        return;
    /* Collect the queues first (with a ref each): a delivery that fails to
     * write closes its connection, which frees ac and its channels. */
    size_t n = 0, cap = 0;
    aqueue **qs = NULL;
    for (uint32_t ch = 1; ch <= ac->channel_max; ch++) {
        achan *cs = ac->cs[ch];
        for (int k = 0; cs && k < cs->n_cons; k++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                qs = xrealloc(qs, cap * sizeof(*qs));
            }
            qs[n] = cs->cons[k]->q;
            qs[n++]->refs++;
        }
    }
    for (size_t i = 0; i < n; i++)
        asrv__dispatch(qs[i]);
    for (size_t i = 0; i < n; i++)
        asrv__queue_unref(qs[i]);
    free(qs);
}

/* Evaluation ------------------------------------------------------------------ */

/* fn on every connection. A send that fails closes its connection, whose
 * release can requeue and deliver to others, and a failed write there
 * closes those: so walk a snapshot of the net connections (net frees them
 * only from its loop hook, and a closed one has no context any more). */
static void for_each_conn(asrv *as, void (*fn)(asrv_conn *ac))
{
    size_t n = 0, i = 0;
    for (asrv_conn *ac = as->conns; ac; ac = ac->next)
        n++;
    if (!n)
        return;
    net_conn **cs = xmalloc(n * sizeof(*cs));
    for (asrv_conn *ac = as->conns; ac; ac = ac->next)
        cs[i++] = ac->c;
    for (i = 0; i < n; i++) {
        asrv_conn *ac = net_conn_ctx(cs[i]);
        if (ac && ac->as == as)
            fn(ac);
    }
    free(cs);
}

/* A busy consumer makes the memory alarm flap (set at the watermark, clear
 * 10% below, set again): one line per second at most, the rest at debug. */
#define ALARM_LOG(lvl, ...)                                                                  \
    do {                                                                                     \
        if (quiet)                                                                           \
            slog_debug(__VA_ARGS__);                                                         \
        else                                                                                 \
            lvl(__VA_ARGS__);                                                                \
    } while (0)

static void log_flaps(asrv *as)
{
    if (!as->alarm_flaps)
        return;
    slog_info("amqp: the alarms changed %llu more time(s) within a second (each at debug "
              "level); now: %s, %.1f MiB of messages held",
              (unsigned long long)as->alarm_flaps,
              as->alarms ? alarm_reason(as->alarms) : "no alarm", MIB(as->mem->bytes));
    as->alarm_flaps = 0;
}

static void on_alarm_log(loop_timer *t)
{
    asrv *as = t->data;
    as->alarm_logged_at = loop_now(as->l);
    log_flaps(as);
}

static void alarms_set(asrv *as, int next)
{
    int prev = as->alarms;
    if (next == prev)
        return;
    int up = next & ~prev, down = prev & ~next;
    as->alarms = next;
    int64_t now = loop_now(as->l);
    int quiet = as->alarm_logged_at && now - as->alarm_logged_at < 1000;
    if (quiet) {
        as->alarm_flaps++;
        if (!loop_timer_armed(&as->alarm_log)) /* then say where it ended */
            loop_timer_start(as->l, &as->alarm_log, 1000 - (now - as->alarm_logged_at));
    } else {
        as->alarm_logged_at = now;
        log_flaps(as);
    }
    if (up & ASRV_ALARM_MEMORY)
        ALARM_LOG(slog_warn, "amqp: memory alarm set: %.1f MiB of messages held, "
                  "amqp.memory.high.watermark.bytes %.1f MiB; publishers are blocked",
                  MIB(as->mem->bytes), MIB(as->mem_high));
    if (down & ASRV_ALARM_MEMORY)
        ALARM_LOG(slog_info, "amqp: memory alarm cleared: %.1f MiB of messages held (below %.1f MiB)",
                  MIB(as->mem->bytes), MIB(as->mem_low));
    if (up & ASRV_ALARM_DISK)
        ALARM_LOG(slog_warn, "amqp: disk alarm set: %.1f MiB free on %s, amqp.disk.free.limit.bytes "
                  "%.1f MiB; publishers are blocked",
                  MIB(as->disk_free), as->core->cfg->log_dirs, MIB(as->disk_limit));
    if (down & ASRV_ALARM_DISK)
        ALARM_LOG(slog_info, "amqp: disk alarm cleared: %.1f MiB free on %s", MIB(as->disk_free),
                  as->core->cfg->log_dirs);
    if (!prev) {
        for_each_conn(as, send_blocked);
    } else if (!next) {
        ALARM_LOG(slog_info, "amqp: all alarms cleared: publishers are unblocked");
        for_each_conn(as, unblock);
    }
}

static void evaluate(asrv *as)
{
    int next = as->alarms & ~ASRV_ALARM_DISK;
    uint64_t b = as->mem->bytes;
    if (b >= as->mem_high)
        next |= ASRV_ALARM_MEMORY;
    else if (b < as->mem_low)
        next &= ~ASRV_ALARM_MEMORY;
    if (as->disk_limit > 0 && as->disk_free >= 0 && as->disk_free < as->disk_limit)
        next |= ASRV_ALARM_DISK;
    alarms_set(as, next);
}

static void on_eval(loop_timer *t) { evaluate(t->data); }

static void disk_check(asrv *as)
{
    struct statvfs sv;
    if (statvfs(as->core->cfg->log_dirs, &sv) < 0) {
        as->disk_free = -1; /* unknown: no alarm from it (the append path reports) */
        return;
    }
    as->disk_free = (int64_t)((uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize);
    as->disk_written = 0;
}

/* Writing fast fills a disk between two timer checks: after appends of half
 * the headroom (at least DISK_RECHECK_MIN bytes) the next check is now. */
#define DISK_RECHECK_MIN (64 * 1024)

void asrv__disk_wrote(asrv *as, size_t n)
{
    if (as->disk_limit <= 0 || as->disk_free < 0)
        return;
    as->disk_written += n;
    int64_t headroom = as->disk_free - as->disk_limit;
    int64_t due = headroom / 2 > DISK_RECHECK_MIN ? headroom / 2 : DISK_RECHECK_MIN;
    if ((int64_t)as->disk_written < due)
        return;
    disk_check(as);
    if (!loop_timer_armed(&as->alarm_eval))
        loop_timer_start(as->l, &as->alarm_eval, 0);
}

static void on_disk_timer(loop_timer *t)
{
    asrv *as = t->data;
    disk_check(as);
    evaluate(as);
    loop_timer_start(as->l, &as->disk_timer, ASRV_DISK_CHECK_MS);
}

/* Life ------------------------------------------------------------------------ */

/* 20% of physical memory (at least 64 MiB), RabbitMQ's 0.4 of RAM halved:
 * the count covers messages, not the whole process. */
static uint64_t default_mem_high(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t ram = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
    uint64_t w = ram / 5;
    return w < ((uint64_t)64 << 20) ? (uint64_t)64 << 20 : w;
}

void asrv__alarm_init(asrv *as)
{
    const cairn_config *cfg = as->core->cfg;
    as->mem = xcalloc(1, sizeof(*as->mem));
    as->mem->refs = 1;
    as->mem->as = as;
    as->mem_high = cfg->amqp_mem_high_bytes > 0 ? (uint64_t)cfg->amqp_mem_high_bytes
                                                : default_mem_high();
    as->mem_low = as->mem_high / 10 * 9;
    as->disk_limit = cfg->amqp_disk_free_limit_bytes;
    as->disk_free = -1;
    loop_timer_init(&as->alarm_eval, on_eval, as);
    loop_timer_init(&as->disk_timer, on_disk_timer, as);
    loop_timer_init(&as->alarm_log, on_alarm_log, as);
    if (as->disk_limit > 0) {
        disk_check(as);
        evaluate(as);
        loop_timer_start(as->l, &as->disk_timer, ASRV_DISK_CHECK_MS);
    }
    slog_info("amqp: memory alarm at %.1f MiB of messages (amqp.memory.high.watermark.bytes), "
              "disk alarm below %.1f MiB free (amqp.disk.free.limit.bytes%s)",
              MIB(as->mem_high), MIB(as->disk_limit), as->disk_limit > 0 ? "" : ": off");
}

void asrv__alarm_fini(asrv *as)
{
    if (!as->mem)
        return;
    loop_timer_stop(as->l, &as->alarm_eval);
    loop_timer_stop(as->l, &as->disk_timer);
    loop_timer_stop(as->l, &as->alarm_log);
    as->mem->as = NULL;
    amem_unref(as->mem);
    as->mem = NULL;
}
