/* Queue arguments: parsing, validation, redeclare equivalence (qargs.h). */
#include <stdio.h>
#include <string.h>

#include "amqp/qargs.h"

/* Known arguments: how each is checked and compared. */
enum { K_INT, K_STR, K_BOOL };
enum {
    A_TTL, A_EXPIRES, A_MAXLEN, A_MAXBYTES, A_MAXPRIO, A_OVERFLOW, A_DLX, A_DLRK, A_SAC,
    A_TYPE, A_MODE, A__COUNT
};

static const struct {
    const char *name;
    int kind;
} known[A__COUNT] = {
    [A_TTL] = {"x-message-ttl", K_INT},
    [A_EXPIRES] = {"x-expires", K_INT},
    [A_MAXLEN] = {"x-max-length", K_INT},
    [A_MAXBYTES] = {"x-max-length-bytes", K_INT},
    [A_MAXPRIO] = {"x-max-priority", K_INT},
    [A_OVERFLOW] = {"x-overflow", K_STR},
    [A_DLX] = {"x-dead-letter-exchange", K_STR},
    [A_DLRK] = {"x-dead-letter-routing-key", K_STR},
    [A_SAC] = {"x-single-active-consumer", K_BOOL},
    [A_TYPE] = {"x-queue-type", K_STR},
    [A_MODE] = {"x-queue-mode", K_STR},
};

static int key_is(cn_str k, const char *name)
{
    size_t n = strlen(name);
    return k.len >= 0 && (size_t)k.len == n && memcmp(k.ptr, name, n) == 0;
}

static int which(cn_str k)
{
    for (int i = 0; i < A__COUNT; i++)
        if (key_is(k, known[i].name))
            return i;
    return -1;
}

static int str_eq(cn_str s, const char *lit)
{
    return key_is(s, lit);
}

/* RabbitMQ's names of the field types (for messages). */
static const char *type_name(uint8_t tag)
{
    switch (tag) {
    case AMQP_T_BOOL: return "bool";
    case AMQP_T_I8: return "byte";
    case AMQP_T_U8: return "unsignedbyte";
    case AMQP_T_I16: return "short";
    case AMQP_T_U16: return "unsignedshort";
    case AMQP_T_I32: return "signedint";
    case AMQP_T_U32: return "unsignedint";
    case AMQP_T_I64: return "long";
    case AMQP_T_F32: return "float";
    case AMQP_T_F64: return "double";
    case AMQP_T_DECIMAL: return "decimal";
    case AMQP_T_LONGSTR: return "longstr";
    case AMQP_T_BYTES: return "binary";
    case AMQP_T_ARRAY: return "array";
    case AMQP_T_TIMESTAMP: return "timestamp";
    case AMQP_T_TABLE: return "table";
    case AMQP_T_VOID: return "void";
    }
    return "unknown";
}

static int fail(aqargs_err *err, uint16_t code, cn_str key, const char *fmt, const char *a,
                long long v)
{
    err->code = code;
    err->key = key;
    snprintf(err->text, sizeof(err->text), fmt, a, v);
    return -1;
}

#define PRECONDITION 406
#define NOT_IMPLEMENTED 540

static int get_int(cn_str k, const amqp_value *v, int64_t lo, int64_t hi, int64_t *out,
                   aqargs_err *err)
{
    const char *name = known[which(k)].name;
    if (amqp_value_int(v, out) < 0) {
        err->code = PRECONDITION;
        err->key = k;
        snprintf(err->text, sizeof(err->text), "invalid arg '%s': {unacceptable_type,%s}", name,
                 type_name(v->tag));
        return -1;
    }
    if (*out < lo)
        return fail(err, PRECONDITION, k,
                    lo > 0 ? "invalid arg '%s': {value_zero,%lld}"
                           : "invalid arg '%s': {value_negative,%lld}",
                    name, (long long)*out);
    if (*out > hi)
        return fail(err, PRECONDITION, k, "invalid arg '%s': {value_too_large,%lld}", name,
                    (long long)*out);
    return 0;
}

static int want_tag(cn_str k, const amqp_value *v, uint8_t tag, aqargs_err *err)
{
    if (v->tag == tag)
        return 0;
    err->code = PRECONDITION;
    err->key = k;
    snprintf(err->text, sizeof(err->text), "invalid arg '%.*s': {unacceptable_type,%s}",
             (int)k.len, k.ptr, type_name(v->tag));
    return -1;
}

static int bad_value(cn_str k, cn_str s, aqargs_err *err)
{
    err->code = PRECONDITION;
    err->key = k;
    snprintf(err->text, sizeof(err->text), "invalid arg '%.*s': {unknown_value,<<\"%.*s\">>}",
             (int)k.len, k.ptr, s.len > 64 ? 64 : (int)s.len, s.ptr ? s.ptr : "");
    return -1;
}

/* 1 if args has an entry named name. */
static int find_name(amqp_table args, const char *name)
{
    amqp_iter it;
    amqp_table_iter(&it, args);
    cn_str k;
    amqp_value v;
    while (amqp_table_next(&it, &k, &v) > 0)
        if (key_is(k, name))
            return 1;
    return 0;
}

int asrv_qargs_parse(amqp_table args, int durable, int exclusive, int auto_delete, aqargs *out,
                     aqargs_err *err)
{
    memset(out, 0, sizeof(*out));
    out->message_ttl = out->expires = out->max_length = out->max_length_bytes = -1;
    cn_str none = {"", 0};
    amqp_iter it;
    amqp_table_iter(&it, args);
    cn_str k;
    amqp_value v;
    int rc;
    while ((rc = amqp_table_next(&it, &k, &v)) > 0) {
        int a = which(k);
        int64_t n;
        switch (a) {
        case A_TTL:
            if (get_int(k, &v, 0, INT32_MAX * 2LL + 1, &n, err) < 0)
                return -1;
            out->message_ttl = n;
            break;
        case A_EXPIRES:
            if (get_int(k, &v, 1, INT32_MAX * 2LL + 1, &n, err) < 0)
                return -1;
            out->expires = n;
            break;
        case A_MAXLEN:
            if (get_int(k, &v, 0, INT64_MAX, &n, err) < 0)
                return -1;
            out->max_length = n;
            break;
        case A_MAXBYTES:
            if (get_int(k, &v, 0, INT64_MAX, &n, err) < 0)
                return -1;
            out->max_length_bytes = n;
            break;
        case A_MAXPRIO:
            if (get_int(k, &v, 0, 255, &n, err) < 0)
                return -1;
            out->max_priority = (uint8_t)n;
            break;
        case A_OVERFLOW:
            if (want_tag(k, &v, AMQP_T_LONGSTR, err) < 0)
                return -1;
            if (str_eq(v.u.str, "drop-head"))
                out->overflow = AQ_OVF_DROP_HEAD;
            else if (str_eq(v.u.str, "reject-publish"))
                out->overflow = AQ_OVF_REJECT_PUBLISH;
            else if (str_eq(v.u.str, "reject-publish-dlx"))
                out->overflow = AQ_OVF_REJECT_PUBLISH_DLX;
            else
                return bad_value(k, v.u.str, err);
            break;
        case A_DLX:
            if (want_tag(k, &v, AMQP_T_LONGSTR, err) < 0)
                return -1;
            if (v.u.str.len > 255)
                return bad_value(k, v.u.str, err);
            out->has_dlx = 1;
            out->dlx = v.u.str.len > 0 ? v.u.str : none;
            break;
        case A_DLRK:
            if (want_tag(k, &v, AMQP_T_LONGSTR, err) < 0)
                return -1;
            if (v.u.str.len > 255)
                return bad_value(k, v.u.str, err);
            out->has_dlrk = 1;
            out->dlrk = v.u.str.len > 0 ? v.u.str : none;
            break;
        case A_SAC:
            if (want_tag(k, &v, AMQP_T_BOOL, err) < 0)
                return -1;
            out->single_active = v.u.b ? 1 : 0;
            break;
        case A_TYPE:
            if (want_tag(k, &v, AMQP_T_LONGSTR, err) < 0)
                return -1;
            if (str_eq(v.u.str, "classic")) {
                out->type = AQ_TYPE_CLASSIC;
            } else if (str_eq(v.u.str, "quorum")) {
                out->type = AQ_TYPE_QUORUM;
            } else if (str_eq(v.u.str, "stream")) {
                out->type = AQ_TYPE_STREAM; /* its flags are checked by ah_stream.c */
            } else {
                return bad_value(k, v.u.str, err);
            }
            break;
        case A_MODE:
            if (want_tag(k, &v, AMQP_T_LONGSTR, err) < 0)
                return -1;
            if (!str_eq(v.u.str, "default") && !str_eq(v.u.str, "lazy"))
                return bad_value(k, v.u.str, err);
            break;
        default:
            break; /* ignored, as RabbitMQ */
        }
    }
    if (rc < 0) {
        err->code = PRECONDITION;
        err->key = none;
        snprintf(err->text, sizeof(err->text), "malformed arguments");
        return -1;
    }
    if (out->has_dlrk && !out->has_dlx) {
        err->code = PRECONDITION;
        err->key = none;
        snprintf(err->text, sizeof(err->text),
                 "invalid arg 'x-dead-letter-routing-key': Key x-dead-letter-routing-key "
                 "should be specified together with x-dead-letter-exchange");
        return -1;
    }
    if (out->type == AQ_TYPE_STREAM) {
        /* A stream is a Kafka topic: its retention is the topic's. */
        if (out->max_length_bytes >= 0 || find_name(args, "x-max-age"))
            return fail(err, NOT_IMPLEMENTED, none,
                        "stream retention arguments (%s, x-max-age) are not implemented: set "
                        "the topic's retention.bytes / retention.ms%.0lld", "x-max-length-bytes", 0);
        const char *bad = out->message_ttl >= 0 ? "x-message-ttl"
                        : out->expires >= 0 ? "x-expires"
                        : out->max_length >= 0 ? "x-max-length"
                        : out->max_priority ? "x-max-priority"
                        : out->has_dlx ? "x-dead-letter-exchange"
                        : out->overflow != AQ_OVF_DROP_HEAD ? "x-overflow"
                        : out->single_active ? "x-single-active-consumer" : NULL;
        if (bad)
            return fail(err, PRECONDITION, none, "invalid arg '%s' for queue type stream%.0lld",
                        bad, 0);
    }
    if (out->type == AQ_TYPE_QUORUM) {
        const char *prop = !durable ? "non-durable" : exclusive ? "exclusive-owner"
                         : auto_delete ? "auto-delete" : NULL;
        if (prop) {
            err->code = PRECONDITION;
            err->key = none;
            snprintf(err->text, sizeof(err->text), "invalid property '%s' for quorum queue", prop);
            return -1;
        }
    }
    return 0;
}

/* The value of argument a in t: 1 and *out, or 0 when absent. */
static int find(amqp_table t, int a, amqp_value *out)
{
    amqp_iter it;
    amqp_table_iter(&it, t);
    cn_str k;
    amqp_value v;
    int found = 0;
    while (amqp_table_next(&it, &k, &v) > 0)
        if (key_is(k, known[a].name)) {
            *out = v; /* the last one wins, as in the parse */
            found = 1;
        }
    return found;
}

static void show(char *buf, size_t cap, int present, const amqp_value *v)
{
    int64_t n;
    if (!present)
        snprintf(buf, cap, "none");
    else if (amqp_value_int(v, &n) == 0)
        snprintf(buf, cap, "the value '%lld' of type '%s'", (long long)n, type_name(v->tag));
    else if (v->tag == AMQP_T_LONGSTR)
        snprintf(buf, cap, "the value '%.*s' of type 'longstr'",
                 v->u.str.len > 40 ? 40 : (int)v->u.str.len, v->u.str.ptr ? v->u.str.ptr : "");
    else if (v->tag == AMQP_T_BOOL)
        snprintf(buf, cap, "the value '%s' of type 'bool'", v->u.b ? "true" : "false");
    else
        snprintf(buf, cap, "a value of type '%s'", type_name(v->tag));
}

int asrv_qargs_equiv(amqp_table was, amqp_table now, aqargs_err *err)
{
    for (int a = 0; a < A__COUNT; a++) {
        amqp_value v1, v2;
        int p1 = find(was, a, &v1), p2 = find(now, a, &v2);
        if (a == A_TYPE) { /* absent: classic */
            static const char classic[] = "classic";
            amqp_value c = {.tag = AMQP_T_LONGSTR};
            c.u.str = (cn_str){classic, 7};
            if (!p1)
                v1 = c, p1 = 1;
            if (!p2)
                v2 = c, p2 = 1;
        }
        int same = p1 == p2;
        if (same && p1) {
            int64_t n1, n2;
            if (amqp_value_int(&v1, &n1) == 0 && amqp_value_int(&v2, &n2) == 0)
                same = n1 == n2;
            else if (v1.tag != v2.tag)
                same = 0;
            else if (v1.tag == AMQP_T_LONGSTR)
                same = v1.u.str.len == v2.u.str.len &&
                       (v1.u.str.len <= 0 ||
                        memcmp(v1.u.str.ptr, v2.u.str.ptr, (size_t)v1.u.str.len) == 0);
            else if (v1.tag == AMQP_T_BOOL)
                same = !v1.u.b == !v2.u.b;
            else
                same = 0; /* a type no valid declare has */
        }
        if (same)
            continue;
        char a1[96], a2[96];
        show(a1, sizeof(a1), p2, &v2);
        show(a2, sizeof(a2), p1, &v1);
        err->code = PRECONDITION;
        err->key = cn_str_c(known[a].name);
        snprintf(err->text, sizeof(err->text), "inequivalent arg '%s': received %s but current is %s",
                 known[a].name, a1, a2);
        return -1;
    }
    return 0;
}
