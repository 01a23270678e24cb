/* Unit tests for the stream queues' AMQP <-> Kafka record mapping
 * (src/amqp/ah_stream_map.c; the table in ARCHITECTURE.md): properties and
 * headers-table entries to record headers and back, the text encoding of
 * non-string header values, keys, timestamps, defaults, and Kafka's
 * murmur2 partitioner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "amqp/amqp_int.h"
#include "record/batch.h"
#include "util/wbuf.h"

/* An amsg as publish_done builds it: routing key, content header, body. */
static amsg *make_msg(const char *rk, const amqp_basic_properties *props, const char *body)
{
    amsg *m = calloc(1, sizeof(*m));
    m->refs = 1;
    size_t kl = strlen(rk);
    m->buf = malloc(kl + 1);
    memcpy(m->buf, rk, kl + 1);
    m->exchange = (cn_str){m->buf, 0};
    m->routing_key = (cn_str){m->buf, (int32_t)kl};
    amqp_content_header h;
    memset(&h, 0, sizeof(h));
    h.class_id = AMQP_CLASS_BASIC;
    h.body_size = strlen(body);
    h.props = *props;
    wbuf w;
    wbuf_init(&w);
    assert_int_equal(amqp_content_header_encode(&w, &h), 0);
    m->hdr = malloc(w.len);
    memcpy(m->hdr, w.buf, w.len);
    m->hdr_len = w.len;
    wbuf_fini(&w);
    m->body_len = strlen(body);
    m->body = malloc(m->body_len + 1);
    memcpy(m->body, body, m->body_len + 1);
    return m;
}

static void free_msg(amsg *m)
{
    free(m->hdr);
    free(m->body);
    free(m->buf);
    free(m);
}

/* The one record of a batch, copied out (headers as "k=v;" text, "k=<null>;"). */
typedef struct one_rec {
    int n;
    int64_t ts;
    char key[300];
    int32_t key_len;
    char value[64];
    char headers[1024];
    batch_record r;      /* views valid while the batch lives (uncompressed) */
} one_rec;

static int grab(const batch_record *r, void *arg)
{
    one_rec *o = arg;
    o->n++;
    o->r = *r;
    o->ts = r->timestamp;
    o->key_len = r->key_len;
    if (r->key_len > 0)
        memcpy(o->key, r->key, (size_t)r->key_len);
    memcpy(o->value, r->value, (size_t)r->value_len);
    const uint8_t *p = r->headers, *end = r->headers + r->headers_len;
    batch_header h;
    size_t at = 0;
    while (batch_header_next(&p, end, &h) == 1) {
        at += (size_t)snprintf(o->headers + at, sizeof(o->headers) - at, "%.*s=", h.key_len,
                               (const char *)h.key);
        if (h.value_len < 0)
            at += (size_t)snprintf(o->headers + at, sizeof(o->headers) - at, "<null>;");
        else
            at += (size_t)snprintf(o->headers + at, sizeof(o->headers) - at, "%.*s;",
                                   h.value_len, (const char *)h.value);
    }
    return 0;
}

static void put(wbuf *w, const char *k, amqp_value v)
{
    assert_int_equal(amqp_put_entry(w, cn_str_c(k), &v), 0);
}

static void test_message_to_record_and_back(void **state)
{
    (void)state;
    wbuf t;
    wbuf_init(&t);
    amqp_value v;
    memset(&v, 0, sizeof(v));
    v.tag = AMQP_T_LONGSTR;
    v.u.str = cn_str_c("text");
    put(&t, "s", v);
    v.tag = AMQP_T_I32;
    v.u.i32 = -42;
    put(&t, "i", v);
    v.tag = AMQP_T_U8;
    v.u.u8 = 200;
    put(&t, "u8", v);
    v.tag = AMQP_T_BOOL;
    v.u.b = 1;
    put(&t, "b", v);
    v.tag = AMQP_T_DECIMAL;
    v.u.dec = (amqp_decimal){2, 5};
    put(&t, "d1", v);
    v.u.dec = (amqp_decimal){3, -12345};
    put(&t, "d2", v);
    v.u.dec = (amqp_decimal){0, 7};
    put(&t, "d3", v);
    v.tag = AMQP_T_TIMESTAMP;
    v.u.ts = 1700000000;
    put(&t, "ts", v);
    v.tag = AMQP_T_F64;
    v.u.f64 = 0.5;
    put(&t, "f", v);
    v.tag = AMQP_T_VOID;
    put(&t, "v", v);
    v.tag = AMQP_T_BYTES;
    v.u.bytes = (cn_bytes){(const uint8_t *)"raw", 3};
    put(&t, "x", v);
    size_t mark = amqp_put_entry_open(&t, cn_str_c("nested"), AMQP_T_TABLE);
    amqp_put_close(&t, mark);

    amqp_basic_properties p;
    memset(&p, 0, sizeof(p));
    p.flags = AMQP_BASIC_FLAG_CONTENT_TYPE | AMQP_BASIC_FLAG_HEADERS |
              AMQP_BASIC_FLAG_DELIVERY_MODE | AMQP_BASIC_FLAG_PRIORITY |
              AMQP_BASIC_FLAG_MESSAGE_ID | AMQP_BASIC_FLAG_TIMESTAMP | AMQP_BASIC_FLAG_APP_ID;
    p.content_type = cn_str_c("text/plain");
    p.headers = (amqp_table){t.buf, (uint32_t)t.len};
    p.delivery_mode = 1;
    p.priority = 9;
    p.message_id = cn_str_c("m-1");
    p.timestamp = 1700000123;
    p.app_id = cn_str_c("app");
    amsg *m = make_msg("rk", &p, "body");

    uint8_t *batch;
    size_t len;
    assert_int_equal(asrv__stream_msg_batch(m, 5, &batch, &len), 0);
    batch_scratch *s = batch_scratch_new();
    one_rec o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(batch_foreach(batch, len, s, grab, &o), 0);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.key_len, 2);
    assert_memory_equal(o.key, "rk", 2);
    assert_string_equal(o.value, "body");
    assert_int_equal(o.ts, 1700000123000LL);
    assert_string_equal(o.headers,
                        "amqp.content-type=text/plain;amqp.delivery-mode=1;amqp.priority=9;"
                        "amqp.message-id=m-1;amqp.app-id=app;"
                        "s=text;i=-42;u8=200;b=true;d1=0.05;d2=-12.345;d3=7;ts=1700000000;"
                        "f=0.5;v=<null>;x=raw;");

    /* back: properties restored, headers as longstr (void stays void) */
    o.r.offset = 17;
    amsg *back = asrv__stream_record_msg(&o.r, 2, 3);
    assert_int_equal(back->routing_key.len, 2);
    assert_memory_equal(back->routing_key.ptr, "rk", 2);
    assert_int_equal(back->body_len, 4);
    amqp_content_header h;
    assert_int_equal(amqp_content_header_decode(back->hdr, back->hdr_len, &h), 0);
    assert_int_equal(h.body_size, 4);
    assert_int_equal(h.props.flags, p.flags);
    assert_true(cn_str_eq(h.props.content_type, "text/plain"));
    assert_true(cn_str_eq(h.props.message_id, "m-1"));
    assert_true(cn_str_eq(h.props.app_id, "app"));
    assert_int_equal(h.props.delivery_mode, 1);
    assert_int_equal(h.props.priority, 9);
    assert_int_equal(h.props.timestamp, 1700000123);
    amqp_value hv;
    assert_int_equal(amqp_table_get(h.props.headers, "i", &hv), 0);
    assert_int_equal(hv.tag, AMQP_T_LONGSTR);
    assert_true(cn_str_eq(hv.u.str, "-42"));
    assert_int_equal(amqp_table_get(h.props.headers, "v", &hv), 0);
    assert_int_equal(hv.tag, AMQP_T_VOID);
    assert_int_equal(amqp_table_get(h.props.headers, "x-stream-offset", &hv), 0);
    assert_int_equal(hv.tag, AMQP_T_I64);
    assert_int_equal(hv.u.i64, 17);
    assert_int_equal(amqp_table_get(h.props.headers, "x-stream-partition", &hv), 0);
    assert_int_equal(hv.tag, AMQP_T_I32);
    assert_int_equal(hv.u.i32, 2);
    assert_int_equal(amqp_table_get(h.props.headers, "amqp.content-type", &hv), -CN_ENOENT);
    assert_int_equal(amqp_table_get(h.props.headers, "nested", &hv), -CN_ENOENT);
    amsg_unref(back);

    batch_scratch_free(s);
    free(batch);
    free_msg(m);
    wbuf_fini(&t);
}

static void test_plain_record_defaults(void **state)
{
    (void)state;
    /* a Kafka record with no key and no headers */
    batch_build_rec rec = {NULL, -1, "v", 1, 1700000000999LL, NULL, 0};
    uint8_t *batch;
    size_t len;
    assert_int_equal(batch_build(&rec, 1, BATCH_COMPRESSION_NONE, 0, &batch, &len), 0);
    batch_scratch *s = batch_scratch_new();
    one_rec o;
    memset(&o, 0, sizeof(o));
    assert_int_equal(batch_foreach(batch, len, s, grab, &o), 0);
    amsg *m = asrv__stream_record_msg(&o.r, 0, 1);
    assert_int_equal(m->routing_key.len, 0);
    amqp_content_header h;
    assert_int_equal(amqp_content_header_decode(m->hdr, m->hdr_len, &h), 0);
    assert_int_equal(h.props.flags, AMQP_BASIC_FLAG_HEADERS | AMQP_BASIC_FLAG_DELIVERY_MODE |
                                        AMQP_BASIC_FLAG_TIMESTAMP);
    assert_int_equal(h.props.delivery_mode, 2);
    assert_int_equal(h.props.timestamp, 1700000000);
    amqp_value hv;
    assert_int_equal(amqp_table_get(h.props.headers, "x-stream-partition", &hv), -CN_ENOENT);
    amsg_unref(m);
    free(batch);

    /* a key no routing key can hold: x-stream-key */
    char big[300];
    memset(big, 'k', sizeof(big));
    batch_build_rec rec2 = {big, 300, "v", 1, 0, NULL, 0};
    assert_int_equal(batch_build(&rec2, 1, BATCH_COMPRESSION_NONE, 0, &batch, &len), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(batch_foreach(batch, len, s, grab, &o), 0);
    m = asrv__stream_record_msg(&o.r, 0, 1);
    assert_int_equal(m->routing_key.len, 0);
    assert_int_equal(amqp_content_header_decode(m->hdr, m->hdr_len, &h), 0);
    assert_int_equal(amqp_table_get(h.props.headers, "x-stream-key", &hv), 0);
    assert_int_equal(hv.u.str.len, 300);
    amsg_unref(m);
    free(batch);

    /* an empty routing key is a null key; no timestamp property: the publish time */
    amqp_basic_properties p;
    memset(&p, 0, sizeof(p));
    amsg *pm = make_msg("", &p, "");
    assert_int_equal(asrv__stream_msg_batch(pm, 1234, &batch, &len), 0);
    memset(&o, 0, sizeof(o));
    assert_int_equal(batch_foreach(batch, len, s, grab, &o), 0);
    assert_int_equal(o.key_len, -1);
    assert_int_equal(o.ts, 1234);
    assert_string_equal(o.headers, "");
    free(batch);
    free_msg(pm);
    batch_scratch_free(s);
}

static void test_murmur2(void **state)
{
    (void)state;
    /* org.apache.kafka.common.utils.UtilsTest.testMurmur2 */
    assert_int_equal((int32_t)broker_murmur2("21", 2), -973932308);
    assert_int_equal((int32_t)broker_murmur2("foobar", 6), -790332482);
    assert_int_equal((int32_t)broker_murmur2("a-little-bit-long-string", 24), -985981536);
    assert_int_equal((int32_t)broker_murmur2("a-little-bit-longer-string", 26), -1486304829);
    assert_int_equal((int32_t)broker_murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 48),
                     -58897971);
    assert_int_equal((int32_t)broker_murmur2("abc", 3), 479470107);
    assert_int_equal(broker_key_partition("foobar", 6, 1), 0);
    assert_int_equal(broker_key_partition("foobar", 6, 7),
                     (int32_t)(((uint32_t)-790332482 & 0x7fffffffu) % 7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_to_record_and_back),
        cmocka_unit_test(test_plain_record_defaults),
        cmocka_unit_test(test_murmur2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
