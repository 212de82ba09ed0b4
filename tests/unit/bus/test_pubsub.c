/* Unit tests for sp_pubsub: topic names, authorisation, seq, history ring, replay and gaps. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "bus/sp_pubsub.h"

Test(pubsub, topic_parse)
{
    sp_topic_info_t ti;
#define P(s) sp_pubsub_topic_parse((s), strlen(s), &ti)
    cr_assert_eq(P("user_stream:u1"), 0);
    cr_assert_eq(ti.kind, SP_TOPIC_USER_STREAM);
    cr_assert(sp_str_eq_cstr(ti.user_id, "u1"));
    cr_assert_eq(P("user_stream:u1:statistics"), 0);
    cr_assert_eq(ti.kind, SP_TOPIC_USER_STREAM_STATS);
    cr_assert(sp_str_eq_cstr(ti.user_id, "u1"));
    cr_assert_eq(P("platform:twitch:u2"), 0);
    cr_assert_eq(ti.kind, SP_TOPIC_PLATFORM);
    cr_assert(sp_str_eq_cstr(ti.arg, "twitch"));
    cr_assert(sp_str_eq_cstr(ti.user_id, "u2"));
    cr_assert_eq(P("widget_config:alertbox:u3"), 0);
    cr_assert_eq(ti.kind, SP_TOPIC_WIDGET_CONFIG);
    cr_assert(sp_str_eq_cstr(ti.arg, "alertbox"));
    cr_assert_eq(P("livestream:global"), 0);
    cr_assert_eq(ti.kind, SP_TOPIC_LIVESTREAM_GLOBAL);
    cr_assert_eq(ti.user_id.len, 0);
    cr_assert_eq(P("users_presence"), 0);
    cr_assert_eq(P("cloudflare_input:5f0e-aa"), 0);
    cr_assert_eq(P("stream_lifecycle:x"), 0);
    cr_assert_eq(P("alertbox:x"), 0);
    cr_assert_eq(P("chat:x"), 0);
    cr_assert_eq(P(""), SP_EINVAL);
    cr_assert_eq(P("chat:"), SP_EINVAL);
    cr_assert_eq(P("chat:a:b"), SP_EINVAL);
    cr_assert_eq(P("user_stream:u1:other"), SP_EINVAL);
    cr_assert_eq(P("nope:u1"), SP_EINVAL);
    cr_assert_eq(P("chat:a b"), SP_EINVAL);
    cr_assert_eq(P("a:b:c:d:e"), SP_EINVAL);
    cr_assert_eq(P("livestream:other"), SP_EINVAL);
#undef P
}

Test(pubsub, default_authorize)
{
    cr_assert(sp_pubsub_default_authorize("u1", 0, "user_stream:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", 0, "platform:kick:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", 0, "user_stream:u1:statistics"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "user_stream:u2"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "user_stream:u10"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "livestream:global"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "users_presence"));
    cr_assert_not(sp_pubsub_default_authorize(NULL, 0, "user_stream:u1"));
    cr_assert_not(sp_pubsub_default_authorize("", 0, "user_stream:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "garbage"));
}

typedef struct {
    int n;
    uint64_t seqs[64];
    char events[64][16];
    json_int_t vals[64];
} got_t;

static void on_pub(const char *topic, const char *event, json_t *payload, uint64_t seq, void *ud)
{
    got_t *g = ud;
    (void)topic;
    if (g->n < 64) {
        g->seqs[g->n] = seq;
        snprintf(g->events[g->n], sizeof(g->events[0]), "%s", event);
        g->vals[g->n] = json_integer_value(json_object_get(payload, "v"));
    }
    g->n++;
}

static int64_t pub(sp_pubsub_t *ps, const char *topic, int v)
{
    json_t *p = json_pack("{s:i}", "v", v);
    int64_t s = sp_pubsub_publish(ps, topic, "ev", p);
    json_decref(p);
    return s;
}

Test(pubsub, seq_per_topic_and_callbacks)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 8);
    got_t a = { 0 }, b = { 0 };
    sp_pubsub_sub_t *sa = sp_pubsub_subscribe(ps, "chat:u1", on_pub, &a);
    sp_pubsub_sub_t *sb = sp_pubsub_subscribe(ps, "alertbox:u1", on_pub, &b);
    cr_assert_not_null(sa);
    cr_assert_not_null(sb);
    cr_assert_null(sp_pubsub_subscribe(ps, "bogus", on_pub, &a));
    cr_assert_eq(pub(ps, "chat:u1", 10), 1);
    cr_assert_eq(pub(ps, "chat:u1", 11), 2);
    cr_assert_eq(pub(ps, "alertbox:u1", 12), 1);
    cr_assert_eq(pub(ps, "chat:u1", 13), 3);
    cr_assert_eq(pub(ps, "bad topic", 1), SP_EINVAL);
    cr_assert_eq(sp_pubsub_seq(ps, "chat:u1"), 3);
    cr_assert_eq(sp_pubsub_seq(ps, "alertbox:u1"), 1);
    cr_assert_eq(sp_pubsub_seq(ps, "chat:u9"), 0);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(a.seqs[0], 1);
    cr_assert_eq(a.seqs[2], 3);
    cr_assert_eq(a.vals[2], 13);
    cr_assert_str_eq(a.events[1], "ev");
    cr_assert_eq(b.n, 1);
    cr_assert_eq(b.vals[0], 12);

    sp_pubsub_unsubscribe(ps, sa);
    pub(ps, "chat:u1", 14);
    cr_assert_eq(a.n, 3);
    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    cr_assert_eq(st.published, 5);
    cr_assert_eq(st.delivered, 4);
    cr_assert_eq(st.subscriptions, 1);
    cr_assert_eq(st.topics, 2);
    sp_pubsub_free(ps);
}

/* Collects replayed frames: decodes the JSON inside each server frame. */
typedef struct {
    int n;
    uint64_t seq[64];
    json_int_t v[64];
} rep_t;

static void on_replay(sp_rbuf_t *frame, uint64_t seq, void *ud)
{
    rep_t *r = ud;
    size_t hl = (frame->data[1] & 0x7f) == 126 ? 4 : 2;
    cr_assert_eq(frame->data[0], 0x81);
    json_t *j = json_loadb((const char *)frame->data + hl, frame->len - hl, 0, NULL);
    cr_assert_not_null(j);
    cr_assert_eq((uint64_t)json_integer_value(json_object_get(j, "seq")), seq);
    cr_assert_str_eq(json_string_value(json_object_get(j, "topic")), "chat:u1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "event")), "ev");
    r->seq[r->n] = seq;
    r->v[r->n] = json_integer_value(json_object_get(json_object_get(j, "payload"), "v"));
    r->n++;
    json_decref(j);
}

Test(pubsub, history_ring_and_resume)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 4);
    sp_pubsub_replay_t out;
    rep_t r = { 0 };

    /* nothing yet */
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u1", 0, on_replay, &r, &out), 0);
    cr_assert_eq(out.replayed, 0);
    cr_assert_not(out.gap);
    cr_assert_eq(sp_pubsub_replay(ps, "junk", 0, on_replay, &r, &out), SP_EINVAL);

    for (int i = 1; i <= 3; i++)
        pub(ps, "chat:u1", 100 + i);
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u1", 1, on_replay, &r, &out), 0);
    cr_assert_eq(out.replayed, 2);
    cr_assert_not(out.gap);
    cr_assert_eq(out.oldest_seq, 1);
    cr_assert_eq(out.seq, 3);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.seq[0], 2);
    cr_assert_eq(r.v[0], 102);
    cr_assert_eq(r.seq[1], 3);

    /* up to date: nothing */
    r.n = 0;
    sp_pubsub_replay(ps, "chat:u1", 3, on_replay, &r, &out);
    cr_assert_eq(r.n, 0);
    cr_assert_not(out.gap);

    /* wrap the ring: 7 published, ring of 4 keeps 4..7 */
    for (int i = 4; i <= 7; i++)
        pub(ps, "chat:u1", 100 + i);
    r.n = 0;
    sp_pubsub_replay(ps, "chat:u1", 3, on_replay, &r, &out);
    cr_assert_not(out.gap); /* 4.. is still there */
    cr_assert_eq(out.oldest_seq, 4);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.seq[0], 4);
    cr_assert_eq(r.seq[3], 7);
    cr_assert_eq(r.v[3], 107);

    /* too old: gap, then everything kept */
    r.n = 0;
    sp_pubsub_replay(ps, "chat:u1", 1, on_replay, &r, &out);
    cr_assert(out.gap);
    cr_assert_eq(out.oldest_seq, 4);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.seq[0], 4);

    /* a seq from the future (server restarted): gap and full replay */
    r.n = 0;
    sp_pubsub_replay(ps, "chat:u1", 99, on_replay, &r, &out);
    cr_assert(out.gap);
    cr_assert_eq(r.n, 4);

    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    cr_assert_eq(st.gaps, 2);
    sp_pubsub_free(ps);
}

typedef struct {
    size_t n, bytes;
    uint64_t first;
} sized_t;

static void on_sized(sp_rbuf_t *frame, uint64_t seq, void *ud)
{
    sized_t *z = ud;
    if (z->n++ == 0)
        z->first = seq;
    z->bytes += frame->len;
}

static void pub_big(sp_pubsub_t *ps, const char *topic, size_t len)
{
    char *text = malloc(len + 1);
    memset(text, 'x', len);
    text[len] = '\0';
    json_t *p = json_pack("{s:s}", "text", text);
    cr_assert_gt(sp_pubsub_publish(ps, topic, "ev", p), 0);
    json_decref(p);
    free(text);
}

Test(pubsub, history_byte_cap)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 100);
    sp_pubsub_set_history_bytes(ps, 4096);
    sp_pubsub_replay_t out;
    for (int i = 0; i < 20; i++)
        pub_big(ps, "chat:u1", 1000); /* ~1.05 KB frames: 3 fit in 4 KiB, 4 do not */
    sized_t z = { 0 };
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u1", 0, on_sized, &z, &out), 0);
    cr_assert_eq(z.n, 3, "kept %zu", z.n);
    cr_assert_leq(z.bytes, 4096);
    cr_assert_gt(z.bytes + z.bytes / 3, 4096); /* one more would not fit */
    cr_assert_eq(z.first, 18);
    cr_assert_eq(out.oldest_seq, 18);
    cr_assert(out.gap, "a resume from before the oldest kept frame is a gap");
    /* small messages (~65 B frames): the byte cap still holds, far more of them are kept */
    for (int i = 0; i < 150; i++)
        pub(ps, "chat:u1", i);
    z = (sized_t){ 0 };
    sp_pubsub_replay(ps, "chat:u1", 0, on_sized, &z, &out);
    cr_assert_gt(z.n, 40);
    cr_assert_lt(z.n, 100);
    cr_assert_leq(z.bytes, 4096);
    cr_assert_eq(z.first, 170 - z.n + 1, "the newest kept, contiguous");
    /* one frame bigger than the cap: the newest is always kept, alone */
    pub_big(ps, "chat:u1", 10000);
    z = (sized_t){ 0 };
    sp_pubsub_replay(ps, "chat:u1", 0, on_sized, &z, &out);
    cr_assert_eq(z.n, 1);
    cr_assert_eq(z.first, 171);
    cr_assert_gt(z.bytes, 10000);
    sp_pubsub_free(ps);
    /* a roomy byte cap: the count cap rules */
    ps = sp_pubsub_new(NULL, 10);
    sp_pubsub_set_history_bytes(ps, 65536);
    for (int i = 0; i < 20; i++)
        pub(ps, "chat:u1", i);
    z = (sized_t){ 0 };
    sp_pubsub_replay(ps, "chat:u1", 0, on_sized, &z, &out);
    cr_assert_eq(z.n, 10);
    cr_assert_eq(z.first, 11);
    sp_pubsub_free(ps);
}

Test(pubsub, zero_history_reports_gap)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 0);
    sp_pubsub_replay_t out;
    pub(ps, "chat:u1", 1);
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u1", 0, NULL, NULL, &out), 0);
    cr_assert(out.gap);
    cr_assert_eq(out.replayed, 0);
    cr_assert_eq(sp_pubsub_replay(ps, "chat:u1", 1, NULL, NULL, &out), 0);
    cr_assert_not(out.gap);
    sp_pubsub_free(ps);
}

/* A callback that unsubscribes itself and another subscriber during fan-out. */
typedef struct {
    sp_pubsub_t *ps;
    sp_pubsub_sub_t *self, *other;
    int n;
} unsub_t;

static void on_unsub(const char *topic, const char *event, json_t *payload, uint64_t seq, void *ud)
{
    unsub_t *u = ud;
    (void)topic, (void)event, (void)payload, (void)seq;
    u->n++;
    if (u->self)
        sp_pubsub_unsubscribe(u->ps, u->self);
    if (u->other)
        sp_pubsub_unsubscribe(u->ps, u->other);
    u->self = u->other = NULL;
}

Test(pubsub, unsubscribe_during_fanout)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 2);
    unsub_t u1 = { .ps = ps }, u2 = { .ps = ps };
    /* subs are prepended: u2 runs first and removes itself and u1 */
    u1.self = sp_pubsub_subscribe(ps, "chat:u1", on_unsub, &u1);
    u2.self = sp_pubsub_subscribe(ps, "chat:u1", on_unsub, &u2);
    u2.other = u1.self;
    u1.self = NULL;
    pub(ps, "chat:u1", 1);
    cr_assert_eq(u2.n, 1);
    cr_assert_eq(u1.n, 0);
    pub(ps, "chat:u1", 2);
    cr_assert_eq(u2.n, 1);
    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    cr_assert_eq(st.subscriptions, 0);
    sp_pubsub_free(ps);
}

Test(pubsub, publish_validation_and_metrics)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 2);
    sp_pubsub_replay_t out;
    json_t *p = json_pack("{s:s}", "k", "v");
    cr_assert_eq(sp_pubsub_publish(ps, "user_stream:abc", "state", p), 1);
    json_decref(p);
    cr_assert_eq(sp_pubsub_publish(ps, "user_stream:abc", "", NULL), SP_EINVAL);
    cr_assert_eq(sp_pubsub_publish(ps, "user_stream:abc", "x", NULL), 2);
    sp_pubsub_replay(ps, "user_stream:abc", 0, NULL, NULL, &out);
    cr_assert_eq(out.replayed, 2);
    sp_buf_t m;
    sp_buf_init(&m, 0);
    sp_pubsub_write_metrics(ps, &m);
    cr_assert(strstr(m.p, "streampai_pubsub_published_total 2\n"));
    sp_buf_cleanup(&m);
    sp_pubsub_free(ps);
}
