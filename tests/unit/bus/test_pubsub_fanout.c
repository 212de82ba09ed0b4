/*
 * Unit tests for sp_pubsub's paced fan-out (frame subscribers are served by the same walk as
 * sockets): per-topic order, subscribers removed or added mid-walk, a small topic served before
 * a large fan-out completes, round robin between large topics, the pending cap.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bus/sp_pubsub.h"
#include "core/sp_err.h"

#define MAXSEQ 128

typedef struct sink_s {
    sp_pubsub_t *ps;
    sp_pubsub_sub_t *sub;
    size_t n;
    uint64_t seqs[MAXSEQ];
    long *counter;            /* shared delivery counter, may be NULL */
    long at_first;            /* *counter when this sink got its first frame */
    struct sink_s *kill_next; /* unsubscribed by this sink's first frame */
    bool kill_self;
} sink_t;

/* The seq of a server frame (text frame, unmasked, {"topic",...,"seq":n}); 0 for null. */
static uint64_t frame_seq(const sp_rbuf_t *f)
{
    const uint8_t *p = f->data;
    size_t len = p[1] & 0x7f, hdr = 2;
    if (len == 126)
        hdr = 4;
    else if (len == 127)
        hdr = 10;
    json_t *j = json_loadb((const char *)p + hdr, f->len - hdr, 0, NULL);
    cr_assert_not_null(j);
    uint64_t s = (uint64_t)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
    return s;
}

static void on_frame(const char *topic, sp_rbuf_t *frame, void *ud)
{
    sink_t *k = ud;
    (void)topic;
    if (k->n == 0 && k->counter)
        k->at_first = *k->counter;
    if (k->counter)
        (*k->counter)++;
    cr_assert_lt(k->n, MAXSEQ);
    k->seqs[k->n++] = frame_seq(frame);
    if (k->kill_next && k->kill_next->sub) {
        sp_pubsub_unsubscribe(k->ps, k->kill_next->sub);
        k->kill_next->sub = NULL;
    }
    if (k->kill_self && k->sub) {
        sp_pubsub_unsubscribe(k->ps, k->sub);
        k->sub = NULL;
    }
}

static sink_t *sinks_new(sp_pubsub_t *ps, const char *topic, size_t n, long *counter)
{
    sink_t *s = calloc(n, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        s[i].ps = ps;
        s[i].counter = counter;
        s[i].at_first = -1;
        s[i].sub = sp_pubsub_subscribe_frames(ps, topic, on_frame, &s[i]);
        cr_assert_not_null(s[i].sub);
    }
    return s;
}

static int64_t pub(sp_pubsub_t *ps, const char *topic, int v)
{
    json_t *p = json_pack("{s:i}", "v", v);
    int64_t s = sp_pubsub_publish(ps, topic, "ev", p);
    json_decref(p);
    return s;
}

static size_t active(sp_pubsub_t *ps)
{
    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    return (size_t)st.active_topics;
}

/* Runs loop turns until no walk is left; returns the turns taken. */
static int drain(uv_loop_t *loop, sp_pubsub_t *ps)
{
    int turns = 0;
    while (active(ps) && turns < 100000) {
        uv_run(loop, UV_RUN_NOWAIT);
        turns++;
    }
    cr_assert_eq(active(ps), 0);
    return turns;
}

static void done(uv_loop_t *loop, sp_pubsub_t *ps)
{
    sp_pubsub_free(ps);
    uv_run(loop, UV_RUN_DEFAULT); /* closes the idle handle */
    cr_assert_eq(uv_loop_close(loop), 0);
}

static void assert_seqs(const sink_t *k, uint64_t from, uint64_t to)
{
    cr_assert_eq(k->n, (size_t)(to - from + 1), "got %zu frames, want %llu..%llu", k->n,
                 (unsigned long long)from, (unsigned long long)to);
    for (size_t i = 0; i < k->n; i++)
        cr_assert_eq(k->seqs[i], from + i, "frame %zu: seq %llu", i,
                     (unsigned long long)k->seqs[i]);
}

Test(pubsub_fanout, order_kept_across_turns)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 8);
    long count = 0;
    sink_t *k = sinks_new(ps, "chat:u1", 3000, &count);
    for (int i = 1; i <= 3; i++)
        cr_assert_eq(pub(ps, "chat:u1", i), i);
    /* the publish served a bounded number, not 3000 */
    cr_assert_lt(count, 3000 * 3);
    cr_assert_gt(count, 0);
    cr_assert_eq(active(ps), 1);
    /* a few turns, then more messages while the walk is under way */
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 4; i <= 6; i++)
        cr_assert_eq(pub(ps, "chat:u1", i), i);
    int turns = drain(&loop, ps);
    cr_assert_gt(turns, 1);
    for (size_t i = 0; i < 3000; i++)
        assert_seqs(&k[i], 1, 6);
    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    cr_assert_eq(st.delivered, 3000 * 6);
    cr_assert_gt(st.deferred, 0);
    free(k);
    done(&loop, ps);
}

Test(pubsub_fanout, small_topic_not_queued_behind_large)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 8);
    long big = 0, small = 0;
    sink_t *a = sinks_new(ps, "user_stream:a", 10000, &big);
    sink_t *b = sinks_new(ps, "user_stream:b", 50, &small);
    cr_assert_eq(pub(ps, "user_stream:a", 1), 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(pub(ps, "user_stream:b", 1), 1);
    /* B's 50 sockets are served by the publish itself while A's walk is still on */
    cr_assert_eq(small, 50);
    cr_assert_lt(big, 10000);
    cr_assert_eq(active(ps), 1);
    drain(&loop, ps);
    cr_assert_eq(big, 10000);
    for (size_t i = 0; i < 10000; i++)
        assert_seqs(&a[i], 1, 1);
    for (size_t i = 0; i < 50; i++)
        assert_seqs(&b[i], 1, 1);
    free(a);
    free(b);
    done(&loop, ps);
}

Test(pubsub_fanout, large_topics_share_turns)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 8);
    long c1 = 0, c2 = 0;
    sink_t *a = sinks_new(ps, "chat:a", 4000, &c1);
    sink_t *b = sinks_new(ps, "chat:b", 4000, &c2);
    pub(ps, "chat:a", 1);
    pub(ps, "chat:b", 1);
    cr_assert_eq(active(ps), 2);
    long b_before = c2;
    uv_run(&loop, UV_RUN_NOWAIT);
    /* one turn advanced both walks (round robin), not A's alone */
    cr_assert_gt(c2, b_before);
    cr_assert_lt(c1, 4000);
    drain(&loop, ps);
    cr_assert_eq(c1, 4000);
    cr_assert_eq(c2, 4000);
    free(a);
    free(b);
    done(&loop, ps);
}

Test(pubsub_fanout, removal_and_addition_mid_walk)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 8);
    long count = 0;
    enum { N = 2000 };
    sink_t *k = sinks_new(ps, "alertbox:u1", N, &count);
    /* some sinks unsubscribe a neighbour, or themselves, when served */
    for (size_t i = 0; i + 1 < N; i += 100)
        k[i].kill_next = &k[i + 1];
    for (size_t i = 50; i < N; i += 100)
        k[i].kill_self = true;
    pub(ps, "alertbox:u1", 1);
    /* the walk has started; drop every third sink that has not been served yet */
    size_t dropped_unserved = 0;
    for (size_t i = 0; i < N; i += 3)
        if (k[i].sub && k[i].n == 0) {
            sp_pubsub_unsubscribe(ps, k[i].sub);
            k[i].sub = NULL;
            dropped_unserved++;
        }
    cr_assert_gt(dropped_unserved, 0);
    /* a sink added mid-walk gets only later messages */
    sink_t late = { .ps = ps, .at_first = -1 };
    late.sub = sp_pubsub_subscribe_frames(ps, "alertbox:u1", on_frame, &late);
    uv_run(&loop, UV_RUN_NOWAIT);
    pub(ps, "alertbox:u1", 2);
    drain(&loop, ps);
    assert_seqs(&late, 2, 2);
    for (size_t i = 0; i < N; i++) {
        if (i % 3 == 0 && k[i].sub == NULL && k[i].n == 0)
            continue; /* dropped before it was served: nothing */
        cr_assert_geq(k[i].n, 1, "sink %zu got nothing", i);
        cr_assert_eq(k[i].seqs[0], 1);
        if (k[i].sub) /* still subscribed: got both */
            assert_seqs(&k[i], 1, 2);
        else /* gone after a frame: nothing after it */
            cr_assert_leq(k[i].n, 2);
    }
    for (size_t i = 50; i < N; i += 100)
        if (k[i].n) /* else dropped before it was served */
            assert_seqs(&k[i], 1, 1);
    sp_pubsub_stats_t st;
    sp_pubsub_stats(ps, &st);
    size_t live = 0;
    for (size_t i = 0; i < N; i++)
        live += k[i].sub != NULL;
    cr_assert_eq(st.subscriptions, live + 1);
    free(k);
    done(&loop, ps);
}

Test(pubsub_fanout, publisher_faster_than_walk)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 4);
    sink_t *k = sinks_new(ps, "chat:u9", 1000, NULL);
    /* 100 messages with no loop turn in between: the pending cap finishes walks as needed */
    for (int i = 1; i <= 100; i++)
        cr_assert_eq(pub(ps, "chat:u9", i), i);
    drain(&loop, ps);
    for (size_t i = 0; i < 1000; i++)
        assert_seqs(&k[i], 1, 100);
    free(k);
    done(&loop, ps);
}

Test(pubsub_fanout, gap_notice_in_order)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    sp_pubsub_t *ps = sp_pubsub_new(&loop, 8);
    sink_t *k = sinks_new(ps, "chat:g", 500, NULL);
    json_t *p = json_object();
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:g", 1, "ev", p), 0);
    cr_assert_eq(sp_pubsub_deliver(ps, "chat:g", 5, "ev", p), 1); /* jump: gap notice first */
    json_decref(p);
    drain(&loop, ps);
    for (size_t i = 0; i < 500; i++) {
        cr_assert_eq(k[i].n, 3);
        cr_assert_eq(k[i].seqs[0], 1);
        cr_assert_eq(k[i].seqs[1], 0); /* the gap notice: "seq":null */
        cr_assert_eq(k[i].seqs[2], 5);
    }
    free(k);
    done(&loop, ps);
}

Test(pubsub_fanout, without_loop_publish_serves_all)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 2);
    long count = 0;
    sink_t *k = sinks_new(ps, "chat:n", 1000, &count);
    pub(ps, "chat:n", 1);
    cr_assert_eq(count, 1000);
    free(k);
    sp_pubsub_free(ps);
}
