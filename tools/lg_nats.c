/* lg_nats: NATS JetStream load generator (libnats), the same phases as
 * tools/loadgen.c via tools/lg/lg_common.c.
 *
 * Partition i is the file-storage stream "<topic>_<i>" with the one subject
 * "<topic>.<i>"; records go round-robin over them (created if missing).
 * produce: js_PublishAsync with at most --window publishes awaiting their
 *   PubAck (jsOptions.PublishAsync.MaxPending); the PubAck is the ack.
 *   Latency = send time carried in the payload -> ack handler.
 * consume: one durable pull consumer "c" per stream (deliver all, ack-all
 *   policy), Fetch batches of 1000, one ack (of the last message) per batch,
 *   the same "multiple ack" as RabbitMQ and the per-batch XACK of Redis.
 * e2e: consumers first, a producer thread paces publishes at --rate.
 * --durable only labels the report: NATS 2.9 file storage never fsyncs
 * before its PubAck, so the bench files it under "relaxed". */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lg/lg_common.h"

#define FETCH_BATCH 1000

typedef struct prod {
    const lg_opts *o;
    lg_hist lat;                 /* written by the ack handler thread only */
    atomic_llong acked, errors;
    double seconds;
    char note[256];
} prod;

static void ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    prod *p = closure;
    if (pa) {
        uint64_t sent = lg_stamp_read(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
        uint64_t now = lg_now_ns();
        lg_hist_add(&p->lat, sent && now > sent ? (now - sent) / 1000u : 0);
        atomic_fetch_add(&p->acked, 1);
    } else {
        if (atomic_fetch_add(&p->errors, 1) == 0 && pae)
            snprintf(p->note, sizeof p->note, "%s", pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    }
    natsMsg_Destroy(msg);
}

static natsConnection *connect_or_die(const lg_opts *o) {
    char url[300];
    snprintf(url, sizeof url, "nats://%s", o->addr);
    natsConnection *nc = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) {
        fprintf(stderr, "lg_nats: connect %s: %s\n", url, natsStatus_GetText(s));
        exit(2);
    }
    return nc;
}

static void ensure_streams(const lg_opts *o, jsCtx *js) {
    for (int i = 0; i < o->partitions; i++) {
        char name[128], subj[128];
        snprintf(name, sizeof name, "%s_%d", o->topic, i);
        lg_part_name(o, i, subj, sizeof subj);
        const char *subjects[1] = {subj};
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        cfg.Name = name;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
        if (s != NATS_OK && jerr != JSStreamNameExistErr) {
            fprintf(stderr, "lg_nats: add stream %s: %s (%d)\n", name, natsStatus_GetText(s), (int)jerr);
            exit(2);
        }
        if (si)
            jsStreamInfo_Destroy(si);
    }
}

static void *run_produce(void *arg) {
    prod *p = arg;
    const lg_opts *o = p->o;
    natsConnection *nc = connect_or_die(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = o->window;
    jo.PublishAsync.AckHandler = ack_handler;
    jo.PublishAsync.AckHandlerClosure = p;
    jo.PublishAsync.StallWait = 10000;
    jsCtx *js = NULL;
    if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) {
        fprintf(stderr, "lg_nats: JetStream context failed\n");
        exit(2);
    }
    ensure_streams(o, js);
    char *payload = lg_payload_new(o->size);
    char (*subj)[128] = calloc((size_t)o->partitions, sizeof *subj);
    for (int i = 0; i < o->partitions; i++)
        lg_part_name(o, i, subj[i], sizeof subj[i]);
    long long sent = 0, failed = 0;
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    for (long long i = 0; i < o->records && !lg_stop; i++) {
        lg_pace(t0, i, o->rate);
        uint64_t now = lg_now_ns();
        if (now > deadline) {
            snprintf(p->note, sizeof p->note, "max-seconds reached");
            break;
        }
        lg_stamp(payload, o->size, now);
        natsStatus s = js_PublishAsync(js, subj[i % o->partitions], payload, (int)o->size, NULL);
        if (s != NATS_OK) {
            if (failed++ == 0)
                snprintf(p->note, sizeof p->note, "publish: %s", natsStatus_GetText(s));
            if (failed > 100)
                break;
            continue;
        }
        sent++;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    double left = o->max_seconds - (double)(lg_now_ns() - t0) / 1e9;
    po.MaxWait = (int64_t)((left > 5 ? left : 5) * 1000);
    if (js_PublishAsyncComplete(js, &po) != NATS_OK)
        snprintf(p->note, sizeof p->note, "acks incomplete");
    p->seconds = (double)(lg_now_ns() - t0) / 1e9;
    long long acked = atomic_load(&p->acked), errs = atomic_load(&p->errors);
    atomic_fetch_add(&p->errors, failed + (sent - acked - errs > 0 ? sent - acked - errs : 0));
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    free(subj);
    return NULL;
}

typedef struct cons {
    natsConnection *nc;
    jsCtx *js;
    natsSubscription **subs;
} cons;

static void consumers_open(const lg_opts *o, cons *c) {
    c->nc = connect_or_die(o);
    if (natsConnection_JetStream(&c->js, c->nc, NULL) != NATS_OK) {
        fprintf(stderr, "lg_nats: JetStream context failed\n");
        exit(2);
    }
    ensure_streams(o, c->js);
    c->subs = calloc((size_t)o->partitions, sizeof *c->subs);
    for (int i = 0; i < o->partitions; i++) {
        char subj[128];
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Config.AckPolicy = js_AckAll;
        so.Config.DeliverPolicy = js_DeliverAll;
        so.Config.MaxAckPending = 100000;
        jsErrCode jerr = 0;
        natsStatus s = js_PullSubscribe(&c->subs[i], c->js, lg_part_name(o, i, subj, sizeof subj), "c",
                                        NULL, &so, &jerr);
        if (s != NATS_OK) {
            fprintf(stderr, "lg_nats: pull subscribe %s: %s (%d)\n", subj, natsStatus_GetText(s), (int)jerr);
            exit(2);
        }
    }
}

static void run_consume(const lg_opts *o, cons *c, lg_hist *lat, lg_result *res, char *note, size_t note_len) {
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    uint64_t last = t0, t_last = t0;
    long long got = 0, errors = 0;
    int64_t wait_ms = o->partitions > 1 ? 20 : 100;
    for (long long round = 0; got < o->records && !lg_stop; round++) {
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsSubscription *sub = c->subs[round % o->partitions];
        natsStatus s = natsSubscription_Fetch(&list, sub, FETCH_BATCH, wait_ms, &jerr);
        uint64_t now = lg_now_ns();
        if (s == NATS_OK && list.Count > 0) {
            for (int k = 0; k < list.Count; k++) {
                natsMsg *m = list.Msgs[k];
                if (lat) {
                    uint64_t sent = lg_stamp_read(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
                    lg_hist_add(lat, now > sent ? (now - sent) / 1000u : 0);
                }
            }
            got += list.Count;
            if (natsMsg_Ack(list.Msgs[list.Count - 1], NULL) != NATS_OK)
                errors++;
            last = t_last = now;
        } else if (s != NATS_OK && s != NATS_TIMEOUT) {
            if (errors++ == 0)
                snprintf(note, note_len, "fetch: %s", natsStatus_GetText(s));
            if (errors > 100)
                break;
        }
        natsMsgList_Destroy(&list);
        if (now > deadline) { snprintf(note, note_len, "max-seconds reached"); break; }
        if (now - last > (uint64_t)o->idle_ms * 1000000u) { snprintf(note, note_len, "idle"); break; }
    }
    natsConnection_Flush(c->nc);
    res->records = got;
    res->errors = errors;
    res->seconds = (double)(t_last - t0) / 1e9;
}

int main(int argc, char **argv) {
    lg_opts o;
    if (lg_parse(argc, argv, &o, "nats", NULL, NULL, NULL))
        return 2;
    lg_install_signals();
    static prod p;
    static lg_hist lat;
    char note[256] = "";
    lg_result res = {0};
    p.o = &o;
    int rc;
    if (o.mode == LG_PRODUCE) {
        run_produce(&p);
        res = (lg_result){atomic_load(&p.acked), atomic_load(&p.errors), p.seconds, &p.lat, p.note};
        rc = lg_report(&o, &res);
    } else {
        cons c = {0};
        consumers_open(&o, &c);
        if (o.mode == LG_CONSUME) {
            run_consume(&o, &c, NULL, &res, note, sizeof note);
        } else {
            pthread_t th;
            pthread_create(&th, NULL, run_produce, &p);
            run_consume(&o, &c, &lat, &res, note, sizeof note);
            pthread_join(th, NULL);
            res.errors += atomic_load(&p.errors);
            res.lat = &lat;
        }
        res.note = note[0] ? note : p.note;
        rc = lg_report(&o, &res);
        for (int i = 0; i < o.partitions; i++)
            natsSubscription_Destroy(c.subs[i]);
        free(c.subs);
        jsCtx_Destroy(c.js);
        natsConnection_Destroy(c.nc);
    }
    nats_Close();
    return rc;
}
