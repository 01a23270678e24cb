/* lg_amqp: RabbitMQ load generator (librabbitmq, AMQP 0-9-1), the same phases
 * as tools/loadgen.c via tools/lg/lg_common.c.
 *
 * Partition i is the durable queue "<topic>.<i>" (classic, or quorum with
 * --quorum), declared if missing; records go round-robin over the queues
 * through the default exchange as persistent messages (delivery_mode 2).
 * --transient: a non-durable queue and transient messages (delivery_mode 1);
 * confirms then only say the broker took the message. Any AMQP 0-9-1 server
 * (RabbitMQ, Cairn's AMQP listener) can be the target.
 * produce: publisher confirms (confirm.select); at most --window messages
 *   unconfirmed; basic.ack (also "multiple") is the ack. For a persistent
 *   message on a durable queue RabbitMQ confirms after the message is on
 *   disk (fsync). Latency = publish -> confirm.
 * consume: basic.consume on every queue, prefetch --window / queues per
 *   consumer (at most --window unacked in all), basic.ack with multiple=1
 *   every min(256, prefetch / 2) messages, after a 100 ms wait with nothing
 *   new, and at the end.
 * e2e: consumer first, a producer thread (own connection) paces at --rate. */
#include <pthread.h>
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lg/lg_common.h"

static int g_quorum, g_transient;

static int extra_opt(const char *name, const char *val, int *used, void *arg) {
    (void)val; (void)used; (void)arg;
    if (!strcmp(name, "--quorum")) { g_quorum = 1; return 1; }
    if (!strcmp(name, "--transient")) { g_transient = 1; return 1; }
    return 0;
}

static void die_on_rpc(amqp_rpc_reply_t r, const char *what) {
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "lg_amqp: %s: %s\n", what, amqp_error_string2(r.library_error));
    else
        fprintf(stderr, "lg_amqp: %s: server error (reply type %d)\n", what, (int)r.reply_type);
    exit(2);
}

static amqp_connection_state_t connect_or_die(const lg_opts *o) {
    char host[256];
    snprintf(host, sizeof host, "%s", o->addr);
    char *colon = strrchr(host, ':');
    int port = 5672;
    if (colon) { *colon = 0; port = atoi(colon + 1); }
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {10, 0};
    if (!s || amqp_socket_open_noblock(s, host, port, &tv) != AMQP_STATUS_OK) {
        fprintf(stderr, "lg_amqp: connect %s failed\n", o->addr);
        exit(2);
    }
    die_on_rpc(amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(c, 1);
    die_on_rpc(amqp_get_rpc_reply(c), "channel.open");
    for (int i = 0; i < o->partitions; i++) {
        char q[128];
        amqp_table_entry_t e = {amqp_cstring_bytes("x-queue-type"),
                                {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
        amqp_table_t args = {g_quorum ? 1 : 0, g_quorum ? &e : NULL};
        amqp_queue_declare(c, 1, amqp_cstring_bytes(lg_part_name(o, i, q, sizeof q)), 0, !g_transient, 0, 0,
                           args);
        die_on_rpc(amqp_get_rpc_reply(c), "queue.declare");
    }
    return c;
}

typedef struct prod {
    const lg_opts *o;
    lg_hist lat;
    long long acked, errors;
    double seconds;
    char note[256];
} prod;

/* Read one frame (timeout_us < 0: block up to 20 s); apply confirms.
 * Returns -1 on a broken connection. */
static int read_confirms(amqp_connection_state_t c, prod *p, uint64_t *ring, long window,
                         uint64_t *confirmed, uint64_t published, long timeout_us) {
    amqp_frame_t f;
    struct timeval tv = {timeout_us < 0 ? 20 : 0, timeout_us < 0 ? 0 : timeout_us};
    int rc = amqp_simple_wait_frame_noblock(c, &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    if (rc != AMQP_STATUS_OK)
        return -1;
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    uint64_t tag;
    int multiple, nack = 0;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *a = f.payload.method.decoded;
        tag = a->delivery_tag; multiple = a->multiple;
    } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        amqp_basic_nack_t *a = f.payload.method.decoded;
        tag = a->delivery_tag; multiple = a->multiple; nack = 1;
    } else {
        if (p->errors++ == 0)
            snprintf(p->note, sizeof p->note, "unexpected method 0x%08x", f.payload.method.id);
        return f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD || f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD ? -1 : 0;
    }
    if (tag > published)
        tag = published;
    /* A slot holds the publish time until its confirm arrives, then 0, so a
     * single ack followed by a covering multiple ack is counted once. */
    uint64_t from = multiple ? *confirmed + 1 : tag;
    uint64_t now = lg_now_ns();
    for (uint64_t t = from; t <= tag; t++) {
        uint64_t *slot = &ring[t % (uint64_t)window];
        if (!*slot)
            continue;
        if (nack) {
            p->errors++;
        } else {
            lg_hist_add(&p->lat, now > *slot ? (now - *slot) / 1000u : 0);
            p->acked++;
        }
        *slot = 0;
    }
    while (*confirmed < published && !ring[(*confirmed + 1) % (uint64_t)window])
        (*confirmed)++;
    return 0;
}

static void *run_produce(void *arg) {
    prod *p = arg;
    const lg_opts *o = p->o;
    amqp_connection_state_t c = connect_or_die(o);
    amqp_confirm_select(c, 1);
    die_on_rpc(amqp_get_rpc_reply(c), "confirm.select");
    char *payload = lg_payload_new(o->size);
    uint64_t *ring = calloc((size_t)o->window, sizeof *ring);
    char (*q)[128] = calloc((size_t)o->partitions, sizeof *q);
    for (int i = 0; i < o->partitions; i++)
        lg_part_name(o, i, q[i], sizeof q[i]);
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = g_transient ? 1 : 2;
    uint64_t published = 0, confirmed = 0;
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    int broken = 0;
    for (long long i = 0; i < o->records && !lg_stop && !broken; i++) {
        lg_pace(t0, i, o->rate);
        uint64_t now = lg_now_ns();
        if (now > deadline) { snprintf(p->note, sizeof p->note, "max-seconds reached"); break; }
        lg_stamp(payload, o->size, now);
        amqp_bytes_t body = {(size_t)o->size, payload};
        if (amqp_basic_publish(c, 1, amqp_empty_bytes, amqp_cstring_bytes(q[i % o->partitions]), 0, 0,
                               &props, body) != AMQP_STATUS_OK) {
            broken = 1;
            break;
        }
        published++;
        ring[published % (uint64_t)o->window] = now;
        /* take ready confirms without blocking; block while the window is full */
        if (amqp_data_in_buffer(c) || o->rate)
            if (read_confirms(c, p, ring, o->window, &confirmed, published, 0) < 0) broken = 1;
        while (!broken && published - confirmed >= (uint64_t)o->window)
            if (read_confirms(c, p, ring, o->window, &confirmed, published, -1) < 0) broken = 1;
    }
    while (!broken && confirmed < published && lg_now_ns() < deadline + 20000000000ull)
        if (read_confirms(c, p, ring, o->window, &confirmed, published, -1) < 0) broken = 1;
    if (confirmed < published) {
        p->errors += (long long)(published - confirmed);
        snprintf(p->note, sizeof p->note, "%s", broken ? "connection broken" : "confirms missing");
    }
    p->seconds = (double)(lg_now_ns() - t0) / 1e9;
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    free(payload); free(ring); free(q);
    return NULL;
}

static void run_consume(const lg_opts *o, amqp_connection_state_t c, lg_hist *lat, lg_result *res,
                        char *note, size_t note_len) {
    /* At most --window unacked on the connection, as every generator keeps
     * (bench/README.md): the window is shared by the per-queue consumers
     * (librabbitmq also slows to a crawl with 16 x 1000 buffered deliveries). */
    long per = o->window / (o->partitions > 0 ? o->partitions : 1);
    if (per < 1)
        per = 1;
    amqp_basic_qos(c, 1, 0, (uint16_t)(per > 65535 ? 65535 : per), 0);
    die_on_rpc(amqp_get_rpc_reply(c), "basic.qos");
    for (int i = 0; i < o->partitions; i++) {
        char q[128];
        amqp_basic_consume(c, 1, amqp_cstring_bytes(lg_part_name(o, i, q, sizeof q)), amqp_empty_bytes,
                           0, 0, 0, amqp_empty_table);
        die_on_rpc(amqp_get_rpc_reply(c), "basic.consume");
    }
    /* Ack (multiple) every ack_every deliveries: at most half a consumer's
     * prefetch, so a consumer whose queue still holds messages never waits
     * for an ack that the others' deliveries would have had to trigger; and
     * whatever is unacked when a 100 ms wait times out. */
    long long ack_every = per / 2 < 256 ? (per / 2 > 0 ? per / 2 : 1) : 256;
    uint64_t t0 = lg_now_ns(), deadline = t0 + (uint64_t)(o->max_seconds * 1e9);
    uint64_t last = t0, t_last = t0, last_tag = 0;
    long long got = 0, errors = 0, unacked = 0;
    while (got < o->records && !lg_stop) {
        amqp_envelope_t env;
        struct timeval tv = {0, 100000};
        amqp_maybe_release_buffers(c);
        amqp_rpc_reply_t r = amqp_consume_message(c, &env, &tv, 0);
        uint64_t now = lg_now_ns();
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (lat) {
                uint64_t sent = lg_stamp_read(env.message.body.bytes, env.message.body.len);
                lg_hist_add(lat, now > sent ? (now - sent) / 1000u : 0);
            }
            got++;
            last_tag = env.delivery_tag;
            amqp_destroy_envelope(&env);
            if (++unacked >= ack_every) {
                amqp_basic_ack(c, 1, last_tag, 1);
                unacked = 0;
            }
            last = t_last = now;
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
            if (unacked) {
                amqp_basic_ack(c, 1, last_tag, 1);
                unacked = 0;
            }
        } else {
            if (errors++ == 0)
                snprintf(note, note_len, "consume: reply type %d err %d", (int)r.reply_type, r.library_error);
            break;
        }
        if (now > deadline) { snprintf(note, note_len, "max-seconds reached"); break; }
        if (now - last > (uint64_t)o->idle_ms * 1000000u) { snprintf(note, note_len, "idle"); break; }
    }
    if (unacked)
        amqp_basic_ack(c, 1, last_tag, 1);
    res->records = got;
    res->errors = errors;
    res->seconds = (double)(t_last - t0) / 1e9;
}

int main(int argc, char **argv) {
    lg_opts o;
    if (lg_parse(argc, argv, &o, "rabbitmq", " [--quorum | --transient]", extra_opt, NULL))
        return 2;
    lg_install_signals();
    if (g_quorum)
        o.system = "rabbitmq-quorum";
    if (g_transient)
        o.system = "amqp-transient";
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
    amqp_connection_state_t c = connect_or_die(&o);
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
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
    return lg_report(&o, &res);
}
