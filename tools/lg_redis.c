/* lg_redis: Redis Streams load generator (hiredis), the same phases as
 * tools/loadgen.c via tools/lg/lg_common.c.
 *
 * Partition i is the stream "<topic>.<i>"; records go round-robin over them.
 * produce: XADD <stream> * d <payload>, pipelined: up to --window commands in
 *   flight on one connection; a reply is the ack (after fsync when the server
 *   runs appendfsync always, before it with everysec). Latency = send -> reply.
 * consume: one consumer group "g" per stream (created at id 0, so a pre-filled
 *   stream is read from its start); XREADGROUP COUNT 1000 over every stream,
 *   and the XACK of one batch is pipelined with the next XREADGROUP.
 * e2e: the group is created first, a producer thread paces XADDs at --rate,
 *   the main thread consumes; latency = send time in the payload -> receive.
 * --durable only labels the report: durability is the server's appendfsync. */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg_common.h"

#define READ_COUNT 1000

static redisContext *connect_or_die(const lg_opts *o) {
    char host[256];
    snprintf(host, sizeof host, "%s", o->addr);
    char *colon = strrchr(host, ':');
    int port = 6379;
    if (colon) {
        *colon = 0;
        port = atoi(colon + 1);
    }
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        fprintf(stderr, "lg_redis: connect %s: %s\n", o->addr, c ? c->errstr : "oom");
        exit(2);
    }
    struct timeval io = {20, 0};   /* bounds every blocking read */
    redisSetTimeout(c, io);
    return c;
}

typedef struct prod {
    const lg_opts *o;
    lg_hist lat;             /* send -> reply, us */
    long long acked, errors;
    double seconds;
    char note[256];
} prod;

/* Handle one XADD reply: FIFO order, so the oldest send time is ring[head]. */
static void on_reply(prod *p, redisReply *r, uint64_t sent_ns) {
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (p->errors++ == 0)
            snprintf(p->note, sizeof p->note, "%s", r ? r->str : "no reply");
    } else {
        p->acked++;
        uint64_t now = lg_now_ns();
        lg_hist_add(&p->lat, now > sent_ns ? (now - sent_ns) / 1000u : 0);
    }
    if (r)
        freeReplyObject(r);
}

static void *run_produce(void *arg) {
    prod *p = arg;
    const lg_opts *o = p->o;
    redisContext *c = connect_or_die(o);
    char *payload = lg_payload_new(o->size);
    uint64_t *ring = calloc((size_t)o->window, sizeof *ring);
    char (*keys)[128] = calloc((size_t)o->partitions, sizeof *keys);
    for (int i = 0; i < o->partitions; i++)
        lg_part_name(o, i, keys[i], sizeof keys[i]);
    long long head = 0, tail = 0;   /* ring indexes: sent = tail, replied = head */
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    int broken = 0;
    for (long long i = 0; i < o->records && !lg_stop && !broken; i++) {
        lg_pace(t0, i, o->rate);
        uint64_t now = lg_now_ns();
        if (now > deadline) {
            snprintf(p->note, sizeof p->note, "max-seconds reached");
            break;
        }
        lg_stamp(payload, o->size, now);
        redisAppendCommand(c, "XADD %s * d %b", keys[i % o->partitions], payload, (size_t)o->size);
        ring[tail++ % o->window] = now;
        if (o->rate) {   /* paced: send now, take whatever replies are ready */
            int done = 0;
            while (!done)
                if (redisBufferWrite(c, &done) != REDIS_OK) { broken = 1; break; }
            struct pollfd pfd = {c->fd, POLLIN, 0};
            while (head < tail && poll(&pfd, 1, 0) == 1) {
                if (redisBufferRead(c) != REDIS_OK) { broken = 1; break; }
                void *r = NULL;
                while (head < tail && redisGetReplyFromReader(c, &r) == REDIS_OK && r)
                    on_reply(p, r, ring[head++ % o->window]), r = NULL;
            }
        }
        while (tail - head >= o->window && !broken) {
            void *r = NULL;
            if (redisGetReply(c, &r) != REDIS_OK) { broken = 1; break; }
            on_reply(p, r, ring[head++ % o->window]);
        }
    }
    while (head < tail && !broken) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) { broken = 1; break; }
        on_reply(p, r, ring[head++ % o->window]);
    }
    if (broken) {
        p->errors += tail - head;
        snprintf(p->note, sizeof p->note, "connection: %s", c->errstr);
    }
    p->seconds = (double)(lg_now_ns() - t0) / 1e9;
    redisFree(c);
    free(payload);
    free(ring);
    free(keys);
    return NULL;
}

static void create_groups(const lg_opts *o, redisContext *c) {
    char key[128];
    for (int i = 0; i < o->partitions; i++) {
        redisReply *r = redisCommand(c, "XGROUP CREATE %s g 0 MKSTREAM", lg_part_name(o, i, key, sizeof key));
        if (r && r->type == REDIS_REPLY_ERROR && !strstr(r->str, "BUSYGROUP"))
            lg_diag("XGROUP CREATE %s: %s", key, r->str);
        if (r)
            freeReplyObject(r);
    }
}

/* Consume o->records records from group "g"; e2e latencies into *lat. */
static int run_consume(const lg_opts *o, redisContext *c, lg_hist *lat, lg_result *res, char *note,
                       size_t note_len) {
    int argc0 = 7 + 2 * o->partitions;
    const char **argv = calloc((size_t)argc0, sizeof *argv);
    char (*keys)[128] = calloc((size_t)o->partitions, sizeof *keys);
    argv[0] = "XREADGROUP"; argv[1] = "GROUP"; argv[2] = "g"; argv[3] = "c";
    argv[4] = "COUNT"; argv[5] = "1000"; argv[6] = "BLOCK"; argv[7] = "100"; argv[8] = "STREAMS";
    int argc = 9 + 2 * o->partitions;
    argv = realloc(argv, (size_t)argc * sizeof *argv);
    for (int i = 0; i < o->partitions; i++) {
        argv[9 + i] = lg_part_name(o, i, keys[i], sizeof keys[i]);
        argv[9 + o->partitions + i] = ">";
    }
    const char **ack = calloc(3 + READ_COUNT, sizeof *ack);
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    uint64_t last = t0, t_last = t0;
    long long got = 0, errors = 0;
    int pending_acks = 0;
    while (got < o->records && !lg_stop) {
        redisAppendCommandArgv(c, argc, argv, NULL);
        redisReply *r = NULL;
        /* the previous batch's XACK replies come first */
        for (int k = 0; k < pending_acks; k++) {
            void *a = NULL;
            if (redisGetReply(c, &a) != REDIS_OK) { errors++; break; }
            freeReplyObject(a);
        }
        pending_acks = 0;
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            snprintf(note, note_len, "XREADGROUP: %s", c->errstr);
            errors++;
            break;
        }
        uint64_t now = lg_now_ns();
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(note, note_len, "XREADGROUP: %s", r->str);
            errors++;
            freeReplyObject(r);
            break;
        }
        if (r->type == REDIS_REPLY_ARRAY) {
            for (size_t s = 0; s < r->elements; s++) {
                redisReply *stream = r->element[s];
                redisReply *entries = stream->element[1];
                int n_ack = 0;
                ack[0] = "XACK"; ack[1] = stream->element[0]->str; ack[2] = "g";
                for (size_t e = 0; e < entries->elements; e++) {
                    redisReply *ent = entries->element[e];
                    ack[3 + n_ack++] = ent->element[0]->str;
                    redisReply *fv = ent->element[1];
                    if (lat && fv->elements >= 2) {
                        uint64_t sent = lg_stamp_read(fv->element[1]->str, fv->element[1]->len);
                        lg_hist_add(lat, now > sent ? (now - sent) / 1000u : 0);
                    }
                    got++;
                }
                if (n_ack) {
                    redisAppendCommandArgv(c, 3 + n_ack, ack, NULL);
                    pending_acks++;
                }
            }
            last = t_last = now;
        }
        /* XACK argv points into r: send them before freeing it */
        if (pending_acks) {
            int done = 0;
            while (!done)
                if (redisBufferWrite(c, &done) != REDIS_OK) break;
        }
        freeReplyObject(r);
        if (now > deadline) { snprintf(note, note_len, "max-seconds reached"); break; }
        if (now - last > (uint64_t)o->idle_ms * 1000000u) { snprintf(note, note_len, "idle"); break; }
    }
    for (int k = 0; k < pending_acks; k++) {
        void *a = NULL;
        if (redisGetReply(c, &a) == REDIS_OK)
            freeReplyObject(a);
    }
    res->records = got;
    res->errors = errors;
    res->seconds = (double)(t_last - t0) / 1e9;
    free(argv);
    free(keys);
    free(ack);
    return 0;
}

int main(int argc, char **argv) {
    lg_opts o;
    if (lg_parse(argc, argv, &o, "redis", NULL, NULL, NULL))
        return 2;
    lg_install_signals();
    static prod p;
    static lg_hist lat;
    char note[256] = "";
    lg_result res = {0};
    p.o = &o;
    if (o.mode == LG_PRODUCE) {
        run_produce(&p);
        res = (lg_result){p.acked, p.errors, p.seconds, &p.lat, p.note};
        return lg_report(&o, &res);
    }
    redisContext *c = connect_or_die(&o);
    create_groups(&o, c);
    if (o.mode == LG_CONSUME) {
        run_consume(&o, c, NULL, &res, note, sizeof note);
    } else {
        pthread_t th;
        pthread_create(&th, NULL, run_produce, &p);
        run_consume(&o, c, &lat, &res, note, sizeof note);
        pthread_join(th, NULL);
        res.errors += p.errors;
        res.lat = &lat;
    }
    res.note = note[0] ? note : p.note;
    redisFree(c);
    return lg_report(&o, &res);
}
