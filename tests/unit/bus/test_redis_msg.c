/*
 * Unit tests for sp_redis_msg (Redis bus envelope + REDIS_URL) and for the pubsub
 * backend hooks the Redis backend uses (deliver on receipt, stale/jump handling,
 * resume across holes).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "bus/sp_pubsub.h"
#include "bus/sp_redis_msg.h"

#define NODE "0123456789abcdef"

static int parse(const char *s, sp_redis_msg_t *m)
{
    return sp_redis_msg_parse((const uint8_t *)s, strlen(s), m);
}

Test(redis_msg, roundtrip)
{
    json_t *pl = json_pack("{s:i,s:s}", "n", 7, "text", "h\xc3\xa9llo \"x\" \n");
    size_t len;
    char *tail = sp_redis_msg_encode_tail(NODE, 42, "chat:u1", "chat_message", pl, &len);
    cr_assert_not_null(tail);
    cr_assert_eq(strlen(tail), len);
    /* what the Redis script publishes */
    char env[512];
    snprintf(env, sizeof(env), "SP1 17 %s", tail);
    sp_redis_msg_t m;
    cr_assert_eq(parse(env, &m), 0);
    cr_assert_eq(m.seq, 17);
    cr_assert_eq(m.msg_id, 42);
    cr_assert(sp_str_eq_cstr(m.node, NODE));
    cr_assert(sp_str_eq_cstr(m.topic, "chat:u1"));
    json_t *root;
    const char *ev;
    json_t *p2;
    cr_assert_eq(sp_redis_msg_body_decode(m.body, &root, &ev, &p2), 0);
    cr_assert_str_eq(ev, "chat_message");
    cr_assert(json_equal(p2, pl));
    json_decref(root);
    /* the tail alone parses too (local fallback path) */
    cr_assert_eq(sp_redis_msg_parse_tail((const uint8_t *)tail, len, &m), 0);
    cr_assert_eq(m.seq, 0);
    cr_assert_eq(m.msg_id, 42);
    sp_free(tail);
    json_decref(pl);

    /* NULL payload -> null */
    tail = sp_redis_msg_encode_tail(NODE, 1, "livestream:global", "x", NULL, &len);
    cr_assert_str_eq(tail, NODE " 1 livestream:global {\"event\":\"x\",\"payload\":null}");
    sp_free(tail);
}

Test(redis_msg, max_seq)
{
    sp_redis_msg_t m;
    cr_assert_eq(parse("SP1 9007199254740991 " NODE " 0 chat:a {\"event\":\"e\"}", &m), 0);
    cr_assert_eq(m.seq, SP_REDIS_SEQ_MAX);
    cr_assert_eq(m.msg_id, 0);
    cr_assert_eq(parse("SP1 9007199254740992 " NODE " 0 chat:a {\"event\":\"e\"}", &m), SP_EINVAL);
    cr_assert_eq(parse("SP1 18446744073709551616 " NODE " 0 chat:a {}", &m), SP_EINVAL);
}

Test(redis_msg, rejects)
{
    static const char *bad[] = {
        "",
        "SP1",
        "SP2 1 " NODE " 1 chat:a {\"event\":\"e\"}",
        "sp1 1 " NODE " 1 chat:a {\"event\":\"e\"}",
        "SP1 0 " NODE " 1 chat:a {\"event\":\"e\"}",       /* seq 0 */
        "SP1 01 " NODE " 1 chat:a {\"event\":\"e\"}",      /* leading zero */
        "SP1 -1 " NODE " 1 chat:a {\"event\":\"e\"}",
        "SP1 1e3 " NODE " 1 chat:a {\"event\":\"e\"}",
        "SP1  1 " NODE " 1 chat:a {\"event\":\"e\"}",      /* double space */
        "SP1 1 0123456789ABCDEF 1 chat:a {\"event\":\"e\"}", /* upper-case node */
        "SP1 1 0123456789abcde 1 chat:a {\"event\":\"e\"}",  /* short node */
        "SP1 1 " NODE " 01 chat:a {\"event\":\"e\"}",
        "SP1 1 " NODE " 1 chat:a:b:c:d {\"event\":\"e\"}", /* bad topic */
        "SP1 1 " NODE " 1 nope:a {\"event\":\"e\"}",
        "SP1 1 " NODE " 1 chat:a",                         /* no body */
        "SP1 1 " NODE " 1 chat:a ",
        "SP1 1 " NODE " 1 chat:a [1]",
        "SP1 1 " NODE " 1 chat:a {\"event\":\"e\"} ",
    };
    sp_redis_msg_t m;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_neq(parse(bad[i], &m), 0, "accepted: %s", bad[i]);
    cr_assert_eq(sp_redis_msg_parse(NULL, 0, &m), SP_EINVAL);
    cr_assert_eq(sp_redis_msg_parse((const uint8_t *)"SP1 ", SP_REDIS_MSG_MAX + 1, &m), SP_ETOOBIG);
}

Test(redis_msg, body_rejects)
{
    static const char *bad[] = { "{}", "{\"event\":1}", "{\"event\":\"\"}", "{\"event\":\"e\"",
                                 "{\"event\":\"e\",\"event\":\"f\"}", "[]", "{\"payload\":1}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *root;
        const char *ev;
        json_t *pl;
        cr_assert_eq(sp_redis_msg_body_decode(sp_str(bad[i]), &root, &ev, &pl), SP_EINVAL, "%s",
                     bad[i]);
        cr_assert_null(root);
    }
    json_t *root;
    const char *ev;
    json_t *pl;
    cr_assert_eq(sp_redis_msg_body_decode(sp_str("{\"event\":\"e\"}"), &root, &ev, &pl), 0);
    cr_assert(json_is_null(pl));
    json_decref(root);
}

Test(redis_msg, encode_rejects)
{
    size_t len;
    cr_assert_null(sp_redis_msg_encode_tail("short", 1, "chat:a", "e", NULL, &len));
    cr_assert_null(sp_redis_msg_encode_tail(NODE, 1, "bad topic", "e", NULL, &len));
    cr_assert_null(sp_redis_msg_encode_tail(NODE, 1, "chat:a", "", NULL, &len));
    char *big = sp_malloc(SP_REDIS_MSG_MAX + 1);
    memset(big, 'a', SP_REDIS_MSG_MAX);
    big[SP_REDIS_MSG_MAX] = '\0';
    json_t *pl = json_string(big);
    cr_assert_null(sp_redis_msg_encode_tail(NODE, 1, "chat:a", "e", pl, &len));
    json_decref(pl);
    sp_free(big);
}

Test(redis_url, parse)
{
    sp_redis_url_t u;
    cr_assert_eq(sp_redis_url_parse("redis://127.0.0.1:6380", &u), 0);
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 6380);
    cr_assert_str_eq(u.pass, "");
    cr_assert_eq(u.db, 0);
    cr_assert_eq(sp_redis_url_parse("redis://cache.internal", &u), 0);
    cr_assert_str_eq(u.host, "cache.internal");
    cr_assert_eq(u.port, 6379);
    cr_assert_eq(sp_redis_url_parse("redis://:s%40cret@h:1/3", &u), 0);
    cr_assert_str_eq(u.user, "");
    cr_assert_str_eq(u.pass, "s@cret");
    cr_assert_eq(u.db, 3);
    cr_assert_eq(sp_redis_url_parse("redis://app:pw@h/", &u), 0);
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.pass, "pw");
    cr_assert_eq(sp_redis_url_parse("redis://pw@h", &u), 0);
    cr_assert_str_eq(u.pass, "pw");
    cr_assert_eq(sp_redis_url_parse("redis://[::1]:7000/2", &u), 0);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 7000);
    cr_assert_eq(u.db, 2);
    static const char *bad[] = { NULL,           "",          "rediss://h:1", "http://h",
                                 "redis://",     "redis://:1", "redis://h:0", "redis://h:65536",
                                 "redis://h:x",  "redis://h/x", "redis://h h", "redis://[::1",
                                 "redis://a:%zz@h", "redis://a:%00@h", "unix:///tmp/r.sock" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(sp_redis_url_parse(bad[i], &u), SP_EINVAL, "accepted %s", bad[i]);
}

/* ---- the pubsub side of the backend contract -------------------------------------- */

typedef struct {
    int taken;
    char topic[64];
    uint64_t cur_seq;
    int mode; /* 1 take, 0 local, <0 error */
} fake_be_t;

static int fake_publish(void *ud, const char *topic, const char *event, json_t *payload,
                        uint64_t cur_seq)
{
    fake_be_t *b = ud;
    (void)event;
    (void)payload;
    b->taken++;
    snprintf(b->topic, sizeof(b->topic), "%s", topic);
    b->cur_seq = cur_seq;
    return b->mode;
}

static int freed;
static void fake_free(void *ud)
{
    (void)ud;
    freed++;
}

typedef struct {
    uint64_t seqs[16];
    size_t n;
} seen_t;

static void on_msg(const char *topic, const char *event, json_t *payload, uint64_t seq, void *ud)
{
    seen_t *s = ud;
    (void)topic;
    (void)event;
    (void)payload;
    if (s->n < 16)
        s->seqs[s->n++] = seq;
}

static void count_replay(sp_rbuf_t *frame, uint64_t seq, void *ud)
{
    (void)frame;
    seen_t *s = ud;
    if (s->n < 16)
        s->seqs[s->n++] = seq;
}

Test(pubsub_backend, publish_deliver_contract)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 8);
    fake_be_t b = { .mode = 1 };
    sp_pubsub_backend_t be = { .publish = fake_publish, .free = fake_free, .ud = &b };
    sp_pubsub_set_backend(ps, &be);
    seen_t seen = { 0 };
    cr_assert_not_null(sp_pubsub_subscribe(ps, "chat:u", on_msg, &seen));

    /* taken: nothing delivered yet, returns 0 */
    cr_assert_eq(sp_pubsub_publish(ps, "chat:u", "e", NULL), 0);
    cr_assert_eq(b.taken, 1);
    cr_assert_str_eq(b.topic, "chat:u");
    cr_assert_eq(seen.n, 0);
    cr_assert_eq(sp_pubsub_seq(ps, "chat:u"), 0);
    /* invalid input never reaches the backend */
    cr_assert_eq(sp_pubsub_publish(ps, "bad", "e", NULL), SP_EINVAL);
    cr_assert_eq(b.taken, 1);

    /* delivered on receipt with the backend's seq */
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 5, "e", NULL), 0);
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 6, "e", NULL), 0);
    cr_assert_eq(sp_pubsub_seq(ps, "chat:u"), 6);
    /* stale / duplicate */
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 6, "e", NULL), SP_EEXISTS);
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 2, "e", NULL), SP_EEXISTS);
    /* jump */
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 9, "e", NULL), 1);
    cr_assert_eq(seen.n, 3);
    cr_assert_eq(seen.seqs[0], 5);
    cr_assert_eq(seen.seqs[2], 9);
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:u", 0, "e", NULL), SP_EINVAL);

    /* backend passes cur_seq and can refuse */
    sp_pubsub_publish(ps, "chat:u", "e", NULL);
    cr_assert_eq(b.cur_seq, 9);
    b.mode = SP_ETOOBIG;
    cr_assert_eq(sp_pubsub_publish(ps, "chat:u", "e", NULL), SP_ETOOBIG);
    /* backend down: local delivery with the next local seq */
    b.mode = 0;
    cr_assert_eq(sp_pubsub_publish(ps, "chat:u", "e", NULL), 10);
    cr_assert_eq(seen.n, 4);

    /* resume across the hole 6 -> 9 reports a gap; after it none */
    seen_t rp = { 0 };
    sp_pubsub_replay_t out;
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u", 5, count_replay, &rp, &out), 0);
    cr_assert(out.gap);
    cr_assert_eq(out.replayed, 3); /* 6, 9, 10 */
    rp.n = 0;
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u", 6, count_replay, &rp, &out), 0);
    cr_assert(out.gap, "7 and 8 were never received");
    rp.n = 0;
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u", 9, count_replay, &rp, &out), 0);
    cr_assert_not(out.gap);
    cr_assert_eq(out.replayed, 1);

    freed = 0;
    sp_pubsub_free(ps);
    cr_assert_eq(freed, 1, "the pubsub frees its backend");
}
