/* Fetch: serve record batches straight from segment files with sendfile.
 *
 * Each partition's data is a log_slice (a file range holding a reference to
 * its segment file) spliced into the response as a wbuf_file whose release
 * is log_slice_release: the response buffer holds the reference until the
 * bytes are sent (util/wbuf.h), so retention cannot close the file under a
 * queued response. No record bytes are copied into user space. The response max_bytes is soft in Kafka's way (KIP-74):
 * the first batch found is returned whole even if it is larger.
 *
 * Long poll: when fewer than min_bytes are available and max_wait_ms > 0, the
 * request is parked. Its body is copied into the slot arena and decoded again
 * from there, so it outlives the connection's read buffer. Parked fetches are
 * re-measured after every loop iteration that appended data, and answered when
 * min_bytes is reached or their timer fires. Nothing is read until then. */
#include <stdlib.h>
#include <string.h>

#include "broker/pstate.h"
#include "kafka/kafka.h"
#include "util/common.h"

typedef struct fetch_park {
    struct fetch_park *next, *prev;
    ksrv *ks;
    broker *b;
    net_resp *resp;
    int16_t ver;
    kafka_fetch_request req;
    loop_timer timer;
} fetch_park;

struct kh_fetch_state {
    fetch_park *head;
};

void kh_fetch_init(ksrv *ks) { *ksrv_fetch_state(ks) = xcalloc(1, sizeof(struct kh_fetch_state)); }

/* Shutdown: parked fetches are answered with what they have (nothing new can
 * arrive), so their slots are freed by the net layer. */
static void park_answer(fetch_park *fp);

void kh_fetch_fini(ksrv *ks)
{
    struct kh_fetch_state *st = *ksrv_fetch_state(ks);
    while (st->head)
        park_answer(st->head);
    free(st);
    *ksrv_fetch_state(ks) = NULL;
}

typedef struct aborted_ctx {
    kreq *q;
    kafka_fetch_response_aborted_transaction *items;
    int32_t n;
} aborted_ctx;

static void aborted_one(void *arg, const pst_aborted *a)
{
    aborted_ctx *ac = arg;
    ac->items[ac->n].producer_id = a->pid;
    ac->items[ac->n].first_offset = a->first_offset;
    ac->n++;
}

/* The aborted transactions a read_committed reader of [from, to) must skip. */
static void aborted_list(kreq *q, partition *p, int64_t from, int64_t to,
                         kafka_fetch_response_partition_data *pd)
{
    int n = pst_aborted_in(p->ps, from, to, NULL, NULL);
    aborted_ctx ac = {q, kreq_alloc(q, (size_t)n, sizeof(*ac.items)), 0};
    pst_aborted_in(p->ps, from, to, aborted_one, &ac);
    pd->aborted_transactions.items = ac.items;
    pd->aborted_transactions.n = ac.n;
}

/* A partition's records in a response: the log slice and the file range the
 * response buffer splices (ref = &sl). Lives in the slot arena. */
typedef struct fetch_slice {
    log_slice sl;
    wbuf_file file;
} fetch_slice;

static void fetch_slice_release(void *ref) { log_slice_release(ref); }

/* Walk the request; with rsp == NULL only count available bytes, otherwise
 * build the response, whose records fields splice slices from the slot
 * arena (the encoder hands their references to q->resp->w). Returns the byte
 * count, or INT64_MAX when a partition has an error that should be answered
 * at once (leader epoch fencing; not the leader of a replicated partition). */
static int64_t fetch_eval(broker *b, const kafka_fetch_request *req, int16_t ver,
                          kafka_fetch_response *rsp, kreq *q, const uint8_t *denied)
{
    int64_t total = 0;
    int urgent = 0; /* an error the client must act on: answer now */
    int64_t budget = ver >= 3 ? req->max_bytes : INT32_MAX;
    if (budget <= 0)
        budget = INT32_MAX;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    if (rsp) {
        KARR_ALLOC(q, rsp->responses, nt);
    }
    for (int32_t i = 0; i < nt; i++) {
        const kafka_fetch_request_fetch_topic *ft = &req->topics.items[i];
        topic *t = broker_topic_find(b, ft->topic);
        int32_t np = ft->partitions.n > 0 ? ft->partitions.n : 0;
        kafka_fetch_response_fetchable_topic_response *tr = NULL;
        if (rsp) {
            tr = &rsp->responses.items[i];
            tr->topic = ft->topic;
            KARR_ALLOC(q, tr->partitions, np);
        }
        for (int32_t j = 0; j < np; j++) {
            const kafka_fetch_request_fetch_partition *fp = &ft->partitions.items[j];
            kafka_fetch_response_partition_data *pd = tr ? &tr->partitions.items[j] : NULL;
            partition *p = t && fp->partition >= 0 && fp->partition < t->n_parts
                               ? t->parts[fp->partition] : NULL;
            if (pd) {
                pd->partition_index = fp->partition;
                pd->high_watermark = -1;
                pd->last_stable_offset = -1;
                pd->log_start_offset = -1;
                pd->aborted_transactions.n = -1;
                pd->preferred_read_replica = -1;
                pd->records = (krecords){NULL, 0, NULL};
            }
            if (denied && denied[i]) { /* no READ on the topic: answered at once */
                if (pd)
                    pd->error_code = KERR_TOPIC_AUTHORIZATION_FAILED;
                urgent = 1;
                continue;
            }
            if (!p) {
                if (pd)
                    pd->error_code = KERR_UNKNOWN_TOPIC_OR_PARTITION;
                continue;
            }
            /* KIP-320 (v9+): a client whose leader epoch is older than the
             * partition's (FENCED_LEADER_EPOCH) or newer (UNKNOWN_LEADER_EPOCH)
             * refreshes its metadata; answered at once, not long-polled. */
            int erc = ver >= 9 ? broker_check_epoch(p, fp->current_leader_epoch) : 0;
            if (erc < 0) {
                if (pd)
                    pd->error_code = kerr_from_cn(erc);
                urgent = 1;
                continue;
            }
            if (broker_partition_serving(p) < 0) {
                /* Replicated: only the leader serves (no follower fetching),
                 * and only once its term's first entry has committed: until
                 * then its high watermark is what it knew as a follower,
                 * which may be below what the last leader served (it would
                 * go back; found by the nemesis once elections got fast). */
                if (pd)
                    pd->error_code = KERR_NOT_LEADER_OR_FOLLOWER;
                urgent = broker_partition_replicated(p);
                continue;
            }
            int64_t hw = log_high_watermark(p->log);
            int64_t lso = broker_lso(p);
            /* read_committed readers stop at the last stable offset. */
            int64_t limit = req->isolation_level == 1 ? lso : hw;
            if (pd) {
                pd->high_watermark = hw;
                pd->last_stable_offset = lso;
                pd->log_start_offset = log_start_offset(p->log);
                if (req->isolation_level == 1)
                    aborted_list(q, p, fp->fetch_offset, limit, pd);
            }
            int64_t want = CN_MIN((int64_t)fp->partition_max_bytes, budget);
            /* KIP-74: until something was returned, the first batch may exceed limits. */
            if (total == 0 && want <= 0)
                want = 1;
            if (want <= 0)
                continue;
            log_slice tmp, *sl = &tmp;
            fetch_slice *fs = NULL;
            if (pd) {
                fs = kreq_alloc(q, 1, sizeof(*fs));
                sl = &fs->sl;
            }
            int rc = log_read_verified(p->log, fp->fetch_offset, limit, want, sl);
            if (rc == -CN_ERANGE) {
                if (pd)
                    pd->error_code = KERR_OFFSET_OUT_OF_RANGE;
                continue;
            }
            if (rc < 0) {
                if (pd)
                    pd->error_code = KERR_KAFKA_STORAGE_ERROR;
                continue;
            }
            total += sl->len;
            budget -= sl->len;
            if (!pd) {
                log_slice_release(sl);
                continue;
            }
            pd->error_code = KERR_NONE;
            broker_note_read(p, 0, sl->len);
            if (sl->len > 0) {
                fs->file = (wbuf_file){ .fd = sl->fd, .pos = sl->pos,
                                        .release = fetch_slice_release, .ref = sl };
                pd->records.len = (int32_t)sl->len;
                pd->records.file = &fs->file;
            } else {
                log_slice_release(sl);
            }
        }
    }
    return urgent ? INT64_MAX : total;
}

static void fetch_respond(broker *b, const kafka_fetch_request *req, int16_t ver, net_resp *resp,
                          const uint8_t *denied)
{
    kreq q;
    memset(&q, 0, sizeof(q));
    q.b = b;
    q.resp = resp;
    kafka_fetch_response rsp;
    kafka_fetch_response_init(&rsp);
    rsp.error_code = KERR_NONE;
    rsp.session_id = 0; /* sessionless: every fetch is a full fetch */
    fetch_eval(b, req, ver, &rsp, &q, denied);
    kafka_fetch_response_encode(&resp->w, ver, &rsp);
    net_resp_ready(resp);
}

static void park_unlink(fetch_park *fp)
{
    struct kh_fetch_state *st = *ksrv_fetch_state(fp->ks);
    if (fp->prev)
        fp->prev->next = fp->next;
    else
        st->head = fp->next;
    if (fp->next)
        fp->next->prev = fp->prev;
    fp->next = fp->prev = NULL;
}

static void park_answer(fetch_park *fp)
{
    park_unlink(fp);
    loop_timer_stop(broker_loop(fp->b), &fp->timer);
    fetch_respond(fp->b, &fp->req, fp->ver, fp->resp, NULL);
}

static void park_timeout(loop_timer *t) { park_answer(t->data); }

void kh_fetch_wake(ksrv *ks)
{
    struct kh_fetch_state *st = *ksrv_fetch_state(ks);
    fetch_park *fp = st->head;
    while (fp) {
        fetch_park *next = fp->next;
        if (fetch_eval(fp->b, &fp->req, fp->ver, NULL, NULL, NULL) >= fp->req.min_bytes)
            park_answer(fp);
        fp = next;
    }
}

void kh_fetch(kreq *q)
{
    const uint8_t *body = q->r.p;
    size_t body_len = kr_remaining(&q->r);
    kafka_fetch_request req;
    if (kafka_fetch_request_decode(&q->r, q->ver, &req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    /* READ on each topic (the authorizer): a fetch with a refused topic is
     * answered at once, never parked, so a parked fetch needs no checks. */
    uint8_t *denied = NULL;
    for (int32_t i = 0; i < req.topics.n; i++)
        if (!kreq_allowed(q, ACL_OP_READ, ACL_R_TOPIC, req.topics.items[i].topic)) {
            if (!denied)
                denied = kreq_alloc(q, (size_t)req.topics.n, 1);
            denied[i] = 1;
        }
    if (denied || req.max_wait_ms <= 0 || req.min_bytes <= 0 ||
        fetch_eval(q->b, &req, q->ver, NULL, NULL, NULL) >= req.min_bytes) {
        fetch_respond(q->b, &req, q->ver, q->resp, denied);
        return;
    }
    /* Park: keep a private copy of the body and decode it again from there. */
    fetch_park *fp = kreq_alloc(q, 1, sizeof(*fp));
    uint8_t *copy = kreq_alloc(q, body_len, 1);
    memcpy(copy, body, body_len);
    kr r2;
    kr_init(&r2, copy, body_len, &q->resp->a);
    if (kafka_fetch_request_decode(&r2, q->ver, &fp->req) < 0) {
        kreq_bad(q, "body");
        return;
    }
    fp->ks = q->ks;
    fp->b = q->b;
    fp->resp = q->resp;
    fp->ver = q->ver;
    struct kh_fetch_state *st = *ksrv_fetch_state(q->ks);
    fp->next = st->head;
    if (st->head)
        st->head->prev = fp;
    st->head = fp;
    loop_timer_init(&fp->timer, park_timeout, fp);
    loop_timer_start(broker_loop(q->b), &fp->timer, req.max_wait_ms);
}
