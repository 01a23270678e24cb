/* Kafka front end: turns frames from the net layer into calls on the core
 * (broker, groups, offsets, transactions; core/core.h). Its framing (int32
 * size prefix) is the protocol table ksrv_proto, and ksrv_frontend is its
 * row of the server's front-end table.
 *
 * ksrv owns the request dispatcher and the state handlers share (parked
 * fetches, the batch-validation scratch). Each handler (kh_*.c) gets a kreq:
 * the decoded request header, a reader positioned at the request body, and
 * the response slot whose writer already holds the response header. A
 * handler decodes the body with the generated codec, encodes its response
 * into q->resp->w and calls kreq_done — now or later (Produce acks=all and
 * long-poll Fetch park the request). A handler that cannot decode the body
 * calls kreq_bad, which closes the connection with a log line, as Kafka does.
 *
 * Memory: arrays decoded from the request and everything a parked request
 * keeps live in q->resp->a (the slot's arena); the request bytes themselves
 * are only valid during the handler call. Loop thread only. */
#ifndef CAIRN_KAFKA_H
#define CAIRN_KAFKA_H
#include <stddef.h>
#include <stdint.h>

#include "broker/broker.h"
#include "core/core.h"
#include "net/net.h"
#include "record/batch.h"
#include "server/server.h"
#include "proto/kafka/gen/kafka_msgs.h"
#include "proto/kafka/kbuf.h"
#include "proto/kafka/kerr.h"

typedef struct ksrv ksrv;

typedef struct kreq {
    ksrv *ks;
    broker *b;
    net_conn *conn;
    net_resp *resp;
    kafka_request_header hdr;
    int16_t ver;                 /* hdr.api_version */
    kr r;                        /* the request body */
} kreq;

/* Create the front end on top of the core's services (it owns none of them;
 * free the front end before core_close). Never NULL. */
ksrv *ksrv_new(core *c);
/* Answer parked fetches and free; NULL is a no-op. */
void ksrv_free(ksrv *ks);
/* The Kafka protocol table (framing.c): serve a listener with it and the
 * ksrv as arg, net_server_new(l, host, port, &lim, &ksrv_proto, ks, &srv). */
extern const net_proto ksrv_proto;
/* The Kafka row of the server's front-end table (server/server.h). */
extern const srv_frontend ksrv_frontend;
/* The first listener bound: what a request that did not come through a
 * listener is answered with (later calls are ignored; see kreq_advertised). */
void ksrv_advertise(ksrv *ks, const char *host, int port);
/* One request, its size prefix already removed (arg is the ksrv): decode the
 * header, take the response slot, run the handler. */
void ksrv_on_frame(net_conn *c, const uint8_t *frame, size_t len, void *arg);
/* A response slot whose writer holds the size placeholder that the
 * framing patches at net_resp_ready (framing.c). */
net_resp *ksrv__resp_new(net_conn *c);
/* The framing sealed r (its response is ready): count its latency when
 * ksrv_on_frame timed it (r->ctx). */
void ksrv__resp_sealed(ksrv *ks, net_resp *r);
/* The server row's metrics hook: cairn_kafka_request_duration_seconds{api},
 * a histogram per API that was requested (util/hist.h hist_latency_ns). */
void ksrv_metrics(ksrv *ks, srv_metrics_sink *m);

/* The core's error (0 or -CN_E*, util/common.h) as a Kafka error code
 * (kerr_map.c). Unknown values give UNKNOWN_SERVER_ERROR. */
int16_t kerr_from_cn(int rc);

/* Handler helpers ---------------------------------------------------------- */
void *kreq_alloc(kreq *q, size_t n, size_t sz);   /* zeroed, from the slot arena */
/* Copy a string into the slot arena (for parked responses). */
kstr kreq_strdup(kreq *q, kstr s);
/* The address this node advertises to q's client: the listener the request
 * came through (0.0.0.0 as 127.0.0.1), so a client on an SSL listener is
 * sent back to it. Valid while the listener lives. */
void kreq_advertised(kreq *q, kstr *host, int32_t *port);
/* Response is encoded in q->resp->w: send it. */
void kreq_done(kreq *q);
/* Malformed body: close the connection with one log line. */
void kreq_bad(kreq *q, const char *what);
batch_scratch *ksrv_scratch(ksrv *ks);
struct grp_coord *ksrv_groups(ksrv *ks);
struct goff_store *ksrv_offsets(ksrv *ks);
/* The cluster (its nodes for Metadata), NULL on a single node. */
struct cluster *ksrv_cluster(ksrv *ks);
struct txn_coord *ksrv_txn(ksrv *ks);
auth_users *ksrv_users(ksrv *ks);
acl_store *ksrv_acls(ksrv *ks);
const auth_pmap *ksrv_pmap(ksrv *ks);          /* ssl.principal.mapping.rules */
auth_throttle *ksrv_throttle(ksrv *ks);        /* failed-login delays */
/* Where a client of q's listener reaches cluster member m: m's listener of
 * the same name (cluster_member_endpoint), else m's first one. */
void kreq_member_addr(kreq *q, const cluster_member *m, kstr *host, int32_t *port);
/* May q's client perform op (ACL_OP_*) on the resource (ACL_R_*, name)?
 * 1 when authorizer.enabled is off; else the ACLs decide (acl.h). */
int kreq_allowed(kreq *q, int op, int rtype, kstr name);
/* The same with the cluster resource. */
int kreq_cluster_allowed(kreq *q, int op);
const cairn_config *ksrv_config(ksrv *ks);
loop *ksrv_loop(ksrv *ks);
struct kh_sasl_state **ksrv__sasl(ksrv *ks);

/* SASL sessions (kh_sasl.c): one per connection (the framing's conn_open
 * and conn_close), holding who the client is. On a SASL listener
 * (SRV_TAG_SASL) a client must authenticate before anything but
 * ApiVersions, SaslHandshake and SaslAuthenticate; on the others the
 * principal is the TLS client certificate's subject (mapped by
 * ssl.principal.mapping.rules) or ANONYMOUS. 0, or -CN_EINVAL (logged)
 * when the certificate's subject matches no mapping rule there: the
 * connection is refused, as Kafka refuses it. */
typedef struct ksess ksess;
int ksess_new(ksrv *ks, net_conn *c, ksess **out);
void ksess_free(ksess *s);
/* After SaslHandshake v0 the client's SASL tokens come as bare
 * size-prefixed frames without a request header: 1 when frame was one
 * (it is handled: answered, or the connection closed), 0 otherwise. */
int ksess_raw_frame(ksess *s, net_conn *c, const uint8_t *frame, size_t len);
/* NULL when a request of api_key may run now, else why the connection
 * must close (not authenticated yet, session expired). */
const char *ksess_gate(ksess *s, int16_t api_key);
/* "User:alice", "User:CN=client,O=Example" (mTLS), "User:ANONYMOUS". */
const char *ksess_principal(const ksess *s);
/* acl_authorize for this session's principal and host, through a small
 * per-connection cache keyed by the ACL generation. */
int ksess_allowed(ksess *s, int op, int rtype, const char *name, size_t len);
void kh_sasl_init(ksrv *ks);
void kh_sasl_fini(ksrv *ks);

#define KARR_ALLOC(q, arr, count)                                                      \
    ((arr).n = (int32_t)(count),                                                       \
     (arr).items = kreq_alloc((q), (size_t)((count) > 0 ? (count) : 0), sizeof(*(arr).items)))

/* Handlers (one file each or per family): one per API in KAFKA_APIS
 * (proto/kafka/gen/kafka_apis.h). */
#define KSRV_HANDLER_DECL(name, NAME, key, min, max, handler) void handler(kreq *q);
KAFKA_APIS(KSRV_HANDLER_DECL)
#undef KSRV_HANDLER_DECL

/* Per-partition error of an offset commit (OffsetCommit, TxnOffsetCommit):
 * group_error if set, else unknown topic/partition or oversized metadata. */
int16_t kh_offset_commit_error(kreq *q, const topic *t, int32_t part, kstr metadata,
                               int16_t group_error);

/* Fetch parking (kh_fetch.c): re-check parked fetches after appends. */
void kh_fetch_wake(ksrv *ks);
void kh_fetch_init(ksrv *ks);
void kh_fetch_fini(ksrv *ks);
/* Opaque per-server fetch state, owned by kh_fetch.c. */
struct kh_fetch_state;
struct kh_fetch_state **ksrv_fetch_state(ksrv *ks);

/* The supported version table (kh_api_versions.c uses it, dispatch checks it). */
typedef struct ksrv_api {
    int16_t key;
    int16_t min, max;
    void (*handler)(kreq *q);
} ksrv_api;
extern const ksrv_api ksrv_apis[];
extern const int ksrv_n_apis;
#endif
