/*
 * sp_pubsub: in-process topic bus with per-topic seq, a history ring per topic
 * and resume. See sp_pubsub.h.
 */
#include "bus/sp_pubsub.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "net/sp_ws_proto.h"

#define MOD "pubsub"
#define MAX_TOPICS 200000
/*
 * Fan-out scheduling (docs/internals/websocket.md): a publish serves at most FANOUT_SYNC
 * sockets at once; the rest of the topic's sockets are served by an idle handle, at most
 * FANOUT_TURN per loop turn shared round robin by the topics with work left, so another topic's
 * small fan-out never waits behind a large one. A topic keeps up to FANOUT_PENDING frames not
 * yet delivered to every socket; one more finishes the walk first (bounded, like before).
 */
#define FANOUT_SYNC 64
#define FANOUT_TURN 256
#define FANOUT_PENDING 64

typedef struct topic_s topic_t;

struct sp_pubsub_sub_s {
    topic_t *t;
    sp_ws_conn_t *conn;         /* socket subscriber, or */
    sp_pubsub_cb cb;            /* callback subscriber, or */
    sp_pubsub_frame_cb fcb;     /* frame subscriber (served like a socket) */
    void *ud;
    uint64_t fidx;              /* last pending frame index given to it */
    sp_pubsub_sub_t *prev, *next; /* topic list */
    sp_pubsub_sub_t *cnext;       /* the socket's list (via sp_ws_conn ext slot) */
    bool dead;
};

typedef struct {
    uint64_t seq;
    sp_rbuf_t *frame;
} hist_t;

typedef struct {
    uint64_t idx; /* topic-wide index of frames handed to the fan-out (gap notices included) */
    sp_rbuf_t *frame;
} pend_t;

struct topic_s {
    char *name;
    uint64_t seq;
    hist_t *ring; /* history_size slots */
    size_t head;  /* next slot to write */
    size_t count;
    size_t ring_bytes; /* frame bytes held by the ring (capped by history_bytes) */
    sp_pubsub_sub_t *subs;
    unsigned iterating;
    bool has_dead;
    /* fan-out: frames not yet given to every frame/socket subscriber (oldest first) */
    pend_t *pend;
    size_t pend_n, pend_cap;
    uint64_t fidx;         /* index of the newest frame handed to the fan-out */
    uint64_t pass_fidx;    /* newest index when the current walk started */
    sp_pubsub_sub_t *cur;  /* the walk's next subscriber (NULL: no walk) */
    bool walking;          /* a walk is in progress (cur may be NULL at the end) */
    bool running;          /* inside fan_walk (re-entrant publishes only append) */
    topic_t *anext;        /* active list (topics with a walk to finish) */
    bool active;
    size_t nsinks;         /* live socket + frame subscribers */
};

struct sp_pubsub_s {
    uv_loop_t *loop;
    size_t history_size;
    size_t history_bytes; /* 0: no byte cap */
    sp_map_t *topics;
    sp_ws_hub_t *hub;
    sp_pubsub_stats_t st;
    sp_pubsub_backend_t backend;
    uv_idle_t *idle; /* allocated on first use; freed by its close callback */
    topic_t *ahead, *atail;
    uint64_t deferred; /* socket deliveries made by the idle handle, not the publish */
};

/* ---- topic names ----------------------------------------------------------------- */

static bool seg_ok(const char *p, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || c == '@'))
            return false;
    }
    return true;
}

int sp_pubsub_topic_parse(const char *topic, size_t len, sp_topic_info_t *out)
{
    sp_str_t seg[4];
    size_t n = 0, start = 0;
    memset(out, 0, sizeof(*out));
    if (!topic || len == 0 || len > SP_TOPIC_MAX)
        return SP_EINVAL;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || topic[i] == ':') {
            if (n == 4)
                return SP_EINVAL;
            seg[n].p = topic + start;
            seg[n].len = i - start;
            if (!seg_ok(seg[n].p, seg[n].len))
                return SP_EINVAL;
            n++;
            start = i + 1;
        }
    }
    sp_topic_kind_t k = SP_TOPIC_INVALID;
    sp_str_t user = { "", 0 }, arg = { "", 0 };
    if (n == 1 && sp_str_eq_cstr(seg[0], "users_presence")) {
        k = SP_TOPIC_USERS_PRESENCE;
    } else if (n == 2 && sp_str_eq_cstr(seg[0], "livestream") && sp_str_eq_cstr(seg[1], "global")) {
        k = SP_TOPIC_LIVESTREAM_GLOBAL;
    } else if (n == 2) {
        static const struct {
            const char *name;
            sp_topic_kind_t kind;
        } one[] = { { "user_stream", SP_TOPIC_USER_STREAM },
                    { "cloudflare_input", SP_TOPIC_CLOUDFLARE_INPUT },
                    { "stream_lifecycle", SP_TOPIC_STREAM_LIFECYCLE },
                    { "alertbox", SP_TOPIC_ALERTBOX },
                    { "chat", SP_TOPIC_CHAT } };
        for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++)
            if (sp_str_eq_cstr(seg[0], one[i].name)) {
                k = one[i].kind;
                user = seg[1];
            }
    } else if (n == 3) {
        if (sp_str_eq_cstr(seg[0], "user_stream") && sp_str_eq_cstr(seg[2], "statistics")) {
            k = SP_TOPIC_USER_STREAM_STATS;
            user = seg[1];
        } else if (sp_str_eq_cstr(seg[0], "platform")) {
            k = SP_TOPIC_PLATFORM;
            arg = seg[1];
            user = seg[2];
        } else if (sp_str_eq_cstr(seg[0], "widget_config")) {
            k = SP_TOPIC_WIDGET_CONFIG;
            arg = seg[1];
            user = seg[2];
        }
    }
    if (k == SP_TOPIC_INVALID)
        return SP_EINVAL;
    out->kind = k;
    out->user_id = user;
    out->arg = arg;
    return 0;
}

bool sp_pubsub_default_authorize(const char *user_id, unsigned conn_flags, const char *topic)
{
    sp_topic_info_t ti;
    if (!user_id || !*user_id || !topic)
        return false;
    if (sp_pubsub_topic_parse(topic, strlen(topic), &ti) != 0 || ti.user_id.len == 0)
        return false;
    if (conn_flags & SP_WS_WIDGET) { /* a widget socket: its widget's two topics only */
        const char *w = (conn_flags & SP_WS_WIDGET_ALERTBOX) ? "alertbox" : "chat";
        bool own = ti.kind == ((conn_flags & SP_WS_WIDGET_ALERTBOX) ? SP_TOPIC_ALERTBOX
                                                                    : SP_TOPIC_CHAT);
        if (!own && !(ti.kind == SP_TOPIC_WIDGET_CONFIG && sp_str_eq_cstr(ti.arg, w)))
            return false;
    }
    return sp_str_eq_cstr(ti.user_id, user_id);
}

/* ---- topics ---------------------------------------------------------------------- */

static void topic_free(void *v)
{
    topic_t *t = v;
    sp_pubsub_sub_t *s = t->subs;
    while (s) {
        sp_pubsub_sub_t *n = s->next;
        if (s->conn && !s->dead)
            sp_ws_conn_set_ext(s->conn, NULL);
        sp_free(s);
        s = n;
    }
    for (size_t i = 0; i < t->pend_n; i++)
        sp_rbuf_unref(t->pend[i].frame);
    sp_free(t->pend);
    sp_free(t->name);
    sp_free(t);
}

static void ring_clear(topic_t *t, size_t cap)
{
    for (size_t i = 0; i < t->count; i++) {
        size_t idx = (t->head + cap - t->count + i) % cap;
        sp_rbuf_unref(t->ring[idx].frame);
    }
    t->count = 0;
    t->ring_bytes = 0;
    sp_free(t->ring);
    t->ring = NULL;
}

static topic_t *topic_get(sp_pubsub_t *ps, const char *name, bool create, int *err)
{
    sp_topic_info_t ti;
    *err = 0;
    if (!name || sp_pubsub_topic_parse(name, strlen(name), &ti) != 0) {
        *err = SP_EINVAL;
        return NULL;
    }
    topic_t *t = sp_map_gets(ps->topics, name);
    if (t || !create)
        return t;
    if (sp_map_count(ps->topics) >= MAX_TOPICS) {
        *err = SP_ELIMIT;
        return NULL;
    }
    t = sp_calloc(1, sizeof(*t));
    t->name = sp_strdup(name);
    if (ps->history_size)
        t->ring = sp_calloc(ps->history_size, sizeof(hist_t));
    sp_map_sets(ps->topics, name, t);
    ps->st.topics = sp_map_count(ps->topics);
    return t;
}

static void sub_unlink_topic(topic_t *t, sp_pubsub_sub_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        t->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

static void topic_sweep(sp_pubsub_t *ps, topic_t *t)
{
    (void)ps;
    if (t->iterating || !t->has_dead)
        return;
    sp_pubsub_sub_t *s = t->subs, *n;
    for (; s; s = n) {
        n = s->next;
        if (s->dead) {
            sub_unlink_topic(t, s);
            sp_free(s);
        }
    }
    t->has_dead = false;
}

/* Marks a sub dead; frees it now unless its topic is mid-fan-out. */
static void sub_kill(sp_pubsub_t *ps, sp_pubsub_sub_t *s)
{
    topic_t *t = s->t;
    if (s->dead)
        return;
    if (s->conn || s->fcb)
        t->nsinks--;
    s->dead = true;
    s->conn = NULL;
    ps->st.subscriptions--;
    t->has_dead = true;
    topic_sweep(ps, t);
}

/* ---- public API ------------------------------------------------------------------ */

static void idle_closed(uv_handle_t *h)
{
    sp_free(h);
}

void sp_pubsub_set_history_bytes(sp_pubsub_t *ps, size_t bytes)
{
    if (ps)
        ps->history_bytes = bytes;
}

sp_pubsub_t *sp_pubsub_new(uv_loop_t *loop, size_t history_size)
{
    sp_pubsub_t *ps = sp_calloc(1, sizeof(*ps));
    ps->loop = loop;
    ps->history_size = history_size;
    ps->topics = sp_map_new(NULL);
    return ps;
}

void sp_pubsub_free(sp_pubsub_t *ps)
{
    if (!ps)
        return;
    if (ps->backend.free) {
        sp_pubsub_backend_t b = ps->backend;
        memset(&ps->backend, 0, sizeof(ps->backend));
        b.free(b.ud);
    }
    if (ps->hub)
        sp_ws_hub_set_ext(ps->hub, NULL);
    if (ps->idle) {
        uv_idle_stop(ps->idle);
        uv_close((uv_handle_t *)ps->idle, idle_closed);
    }
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (sp_map_next(ps->topics, &it, &k, &kl, &v)) {
        topic_t *t = v;
        ring_clear(t, ps->history_size);
        topic_free(t);
    }
    sp_map_free(ps->topics);
    sp_free(ps);
}

static sp_pubsub_sub_t *sub_add(topic_t *t)
{
    sp_pubsub_sub_t *s = sp_calloc(1, sizeof(*s));
    s->t = t;
    s->next = t->subs;
    if (t->subs)
        t->subs->prev = s;
    t->subs = s;
    return s;
}

sp_pubsub_sub_t *sp_pubsub_subscribe(sp_pubsub_t *ps, const char *topic, sp_pubsub_cb cb, void *ud)
{
    int err;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t || !cb)
        return NULL;
    sp_pubsub_sub_t *s = sub_add(t);
    s->cb = cb;
    s->ud = ud;
    ps->st.subscriptions++;
    return s;
}

/* caught_up: the socket is being given everything kept (resume), so pending frames are not
 * for it any more, also when it was subscribed already. */
static int sp_pubsub_subscribe_conn(sp_pubsub_t *ps, const char *topic, sp_ws_conn_t *c,
                                    bool caught_up)
{
    int err;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t)
        return err;
    for (sp_pubsub_sub_t *s = sp_ws_conn_get_ext(c); s; s = s->cnext)
        if (s->t == t) {
            if (caught_up)
                s->fidx = t->fidx;
            return 0;
        }
    sp_pubsub_sub_t *s = sub_add(t);
    s->conn = c;
    s->fidx = t->fidx; /* frames already in the fan-out are older than this subscription */
    t->nsinks++;
    s->cnext = sp_ws_conn_get_ext(c);
    sp_ws_conn_set_ext(c, s);
    ps->st.subscriptions++;
    return 0;
}

sp_pubsub_sub_t *sp_pubsub_subscribe_frames(sp_pubsub_t *ps, const char *topic,
                                            sp_pubsub_frame_cb cb, void *ud)
{
    int err;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t || !cb)
        return NULL;
    sp_pubsub_sub_t *s = sub_add(t);
    s->fcb = cb;
    s->ud = ud;
    s->fidx = t->fidx;
    t->nsinks++;
    ps->st.subscriptions++;
    return s;
}

void sp_pubsub_unsubscribe(sp_pubsub_t *ps, sp_pubsub_sub_t *sub)
{
    if (sub && !sub->conn)
        sub_kill(ps, sub);
}

static int sp_pubsub_unsubscribe_conn(sp_pubsub_t *ps, const char *topic, sp_ws_conn_t *c)
{
    int err;
    topic_t *t = topic_get(ps, topic, false, &err);
    if (!t)
        return err ? err : SP_ENOTFOUND;
    sp_pubsub_sub_t *head = sp_ws_conn_get_ext(c), *prev = NULL;
    for (sp_pubsub_sub_t *s = head; s; prev = s, s = s->cnext) {
        if (s->t != t)
            continue;
        if (prev)
            prev->cnext = s->cnext;
        else
            sp_ws_conn_set_ext(c, s->cnext);
        sub_kill(ps, s);
        return 0;
    }
    return SP_ENOTFOUND;
}

static void sp_pubsub_drop_conn(sp_pubsub_t *ps, sp_ws_conn_t *c)
{
    sp_pubsub_sub_t *s = sp_ws_conn_get_ext(c), *n;
    sp_ws_conn_set_ext(c, NULL);
    for (; s; s = n) {
        n = s->cnext;
        s->cnext = NULL;
        sub_kill(ps, s);
    }
}

/* ---- fan-out ------------------------------------------------------------------------ */

/* Drops the pending frames every subscriber has (index <= upto). */
static void pend_retire(topic_t *t, uint64_t upto)
{
    size_t k = 0;
    while (k < t->pend_n && t->pend[k].idx <= upto)
        sp_rbuf_unref(t->pend[k++].frame);
    memmove(t->pend, t->pend + k, (t->pend_n - k) * sizeof(pend_t));
    t->pend_n -= k;
}

/*
 * Gives s every pending frame it lacks, oldest first, then ONE write. Returns 1 if it had
 * something to send. A frame callback may (un)subscribe or publish: pend is re-read each time.
 */
static size_t serve_sub(sp_pubsub_t *ps, topic_t *t, sp_pubsub_sub_t *s)
{
    size_t i = 0;
    while (i < t->pend_n && t->pend[i].idx <= s->fidx)
        i++;
    if (i == t->pend_n)
        return 0;
    for (; i < t->pend_n && !s->dead; i++) {
        s->fidx = t->pend[i].idx;
        if (s->conn) {
            if (sp_ws_conn_queue_frame(s->conn, t->pend[i].frame) != 0) {
                /* closing or cut as a slow reader: nothing more for it */
                ps->st.dropped += t->pend_n - i;
                s->fidx = t->pend[t->pend_n - 1].idx;
                break;
            }
        } else {
            s->fcb(t->name, t->pend[i].frame, s->ud);
        }
        ps->st.delivered++;
    }
    if (s->conn && !s->dead)
        sp_ws_conn_flush(s->conn);
    return 1;
}

/*
 * Walks the topic's subscribers on from t->cur, serving at most budget of them; at the end of
 * the list the frames every subscriber has are retired and, if newer ones wait, a new walk
 * starts. While a walk is on, t->iterating keeps killed subscribers (and the cursor) alive.
 * Returns the work done (subscribers served, plus 1 per 32 passed over).
 */
static size_t fan_walk(sp_pubsub_t *ps, topic_t *t, size_t budget)
{
    size_t served = 0, passed = 0;
    t->running = true;
    while (t->walking && served + passed / 32 < budget) {
        sp_pubsub_sub_t *s = t->cur;
        if (!s) {
            pend_retire(t, t->pass_fidx);
            if (t->pend_n == 0) {
                t->walking = false;
                break;
            }
            t->pass_fidx = t->fidx;
            t->cur = t->subs;
            continue;
        }
        t->cur = s->next;
        if (s->dead || (!s->conn && !s->fcb) || !serve_sub(ps, t, s))
            passed++;
        else
            served++;
    }
    t->running = false;
    if (!t->walking) {
        t->iterating--;
        topic_sweep(ps, t);
    }
    return served + passed / 32;
}

static void on_idle(uv_idle_t *h)
{
    sp_pubsub_t *ps = h->data;
    size_t n = 0, budget = FANOUT_TURN;
    for (topic_t *t = ps->ahead; t; t = t->anext)
        n++;
    size_t slice = n ? budget / n : budget;
    if (slice < 32)
        slice = 32;
    topic_t *last = ps->atail;
    while (ps->ahead && budget) {
        topic_t *t = ps->ahead;
        ps->ahead = t->anext;
        if (!ps->ahead)
            ps->atail = NULL;
        t->anext = NULL;
        if (t->walking) {
            size_t used = fan_walk(ps, t, slice < budget ? slice : budget);
            ps->deferred += used;
            budget -= used < budget ? used : budget;
        }
        if (t->walking) {
            if (ps->atail)
                ps->atail->anext = t;
            else
                ps->ahead = t;
            ps->atail = t;
        } else {
            t->active = false;
        }
        if (t == last)
            break;
    }
    if (!ps->ahead)
        uv_idle_stop(h);
}

static void activate(sp_pubsub_t *ps, topic_t *t)
{
    if (t->active)
        return;
    if (!ps->idle) {
        ps->idle = sp_malloc(sizeof(*ps->idle));
        uv_idle_init(ps->loop, ps->idle);
        ps->idle->data = ps;
    }
    t->active = true;
    t->anext = NULL;
    if (ps->atail)
        ps->atail->anext = t;
    else
        ps->ahead = t;
    ps->atail = t;
    uv_idle_start(ps->idle, on_idle); /* no-op when started */
}

/* Hands a frame to the topic's socket and frame subscribers (see FANOUT_*). */
static void fan_add(sp_pubsub_t *ps, topic_t *t, sp_rbuf_t *frame)
{
    if (t->nsinks == 0 && !t->walking)
        return;
    if (t->walking && t->pend_n >= FANOUT_PENDING && !t->running)
        fan_walk(ps, t, SIZE_MAX); /* the publisher outruns the walk: finish it now */
    if (t->pend_n == t->pend_cap) {
        t->pend_cap = t->pend_cap ? t->pend_cap * 2 : 4;
        t->pend = sp_realloc(t->pend, t->pend_cap * sizeof(pend_t));
    }
    t->pend[t->pend_n].idx = ++t->fidx;
    t->pend[t->pend_n++].frame = sp_rbuf_ref(frame);
    if (!t->walking) {
        t->walking = true;
        t->iterating++;
        t->cur = t->subs;
        t->pass_fidx = t->fidx;
    }
    if (t->running)
        return; /* re-entrant: the walk under way takes it */
    fan_walk(ps, t, ps->loop ? FANOUT_SYNC : SIZE_MAX);
    if (t->walking)
        activate(ps, t);
}

/* Numbers, encodes once, keeps in the ring and fans out. Returns 0 or SP_EINVAL. */
static int deliver(sp_pubsub_t *ps, topic_t *t, uint64_t seq, const char *event, json_t *payload)
{
    json_t *o = json_pack("{s:s,s:s,s:O,s:I}", "topic", t->name, "event", event, "payload",
                          payload ? payload : json_null(), "seq", (json_int_t)seq);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (!txt) {
        json_decref(o);
        return SP_EINVAL;
    }
    t->seq = seq;
    sp_rbuf_t *frame = sp_ws_frame_encode(SP_WS_OP_TEXT, txt, strlen(txt));
    free(txt);
    ps->st.published++;

    if (ps->history_size) {
        hist_t *h = &t->ring[t->head];
        if (t->count == ps->history_size) {
            t->ring_bytes -= h->frame->len;
            sp_rbuf_unref(h->frame);
        } else {
            t->count++;
        }
        h->seq = seq;
        h->frame = sp_rbuf_ref(frame);
        t->ring_bytes += frame->len;
        t->head = (t->head + 1) % ps->history_size;
        /* the byte cap: oldest frames go first, the newest always stays */
        while (ps->history_bytes && t->ring_bytes > ps->history_bytes && t->count > 1) {
            hist_t *old = &t->ring[(t->head + ps->history_size - t->count) % ps->history_size];
            t->ring_bytes -= old->frame->len;
            sp_rbuf_unref(old->frame);
            old->frame = NULL;
            t->count--;
        }
    }

    /* callback subscribers now; sockets and frame subscribers through the paced fan-out */
    t->iterating++;
    for (sp_pubsub_sub_t *s = t->subs; s; s = s->next) {
        if (!s->dead && s->cb) {
            s->cb(t->name, event, json_object_get(o, "payload"), seq, s->ud);
            ps->st.delivered++;
        }
    }
    t->iterating--;
    topic_sweep(ps, t);
    fan_add(ps, t, frame);
    sp_rbuf_unref(frame);
    json_decref(o);
    return 0;
}

int64_t sp_pubsub_publish_local(sp_pubsub_t *ps, const char *topic, const char *event,
                                json_t *payload)
{
    int err;
    if (!event || !*event)
        return SP_EINVAL;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t)
        return err;
    uint64_t seq = t->seq + 1;
    if ((err = deliver(ps, t, seq, event, payload)) != 0)
        return err;
    return (int64_t)seq;
}

int64_t sp_pubsub_publish(sp_pubsub_t *ps, const char *topic, const char *event, json_t *payload)
{
    int err;
    if (!event || !*event)
        return SP_EINVAL;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t)
        return err;
    if (ps->backend.publish) {
        int rc = ps->backend.publish(ps->backend.ud, t->name, event, payload, t->seq);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return 0; /* numbered by the backend; comes back through sp_pubsub_deliver */
    }
    return sp_pubsub_publish_local(ps, topic, event, payload);
}

static void send_ctl(sp_ws_conn_t *c, const char *topic, const char *event, json_t *payload);

int sp_pubsub_deliver(sp_pubsub_t *ps, const char *topic, uint64_t seq, const char *event,
                      json_t *payload)
{
    int err;
    if (!event || !*event || seq == 0)
        return SP_EINVAL;
    topic_t *t = topic_get(ps, topic, true, &err);
    if (!t)
        return err;
    if (seq <= t->seq)
        return SP_EEXISTS; /* stale: this node already numbered past it */
    int jumped = t->seq > 0 && seq > t->seq + 1;
    if (jumped) {
        /* messages this node never received: tell live subscribers before the frame (the same
         * notice for all, encoded once, in the fan-out's order) */
        json_t *o = json_pack("{s:s,s:s,s:{s:I,s:I,s:I},s:n}", "topic", t->name, "event", "gap",
                              "payload", "after_seq", (json_int_t)t->seq, "oldest_seq",
                              (json_int_t)seq, "missed_from", (json_int_t)(t->seq + 1), "seq");
        char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (txt) {
            sp_rbuf_t *gap = sp_ws_frame_encode(SP_WS_OP_TEXT, txt, strlen(txt));
            fan_add(ps, t, gap);
            sp_rbuf_unref(gap);
        }
        free(txt);
        json_decref(o);
    }
    if ((err = deliver(ps, t, seq, event, payload)) != 0)
        return err;
    return jumped;
}

void sp_pubsub_set_backend(sp_pubsub_t *ps, const sp_pubsub_backend_t *b)
{
    if (b)
        ps->backend = *b;
    else
        memset(&ps->backend, 0, sizeof(ps->backend));
}

uint64_t sp_pubsub_seq(const sp_pubsub_t *ps, const char *topic)
{
    topic_t *t = topic ? sp_map_gets(ps->topics, topic) : NULL;
    return t ? t->seq : 0;
}

int sp_pubsub_replay(sp_pubsub_t *ps, const char *topic, uint64_t after_seq,
                     sp_pubsub_replay_cb cb, void *ud, sp_pubsub_replay_t *out)
{
    int err;
    memset(out, 0, sizeof(*out));
    topic_t *t = topic_get(ps, topic, false, &err);
    if (err)
        return err;
    if (!t)
        return 0; /* nothing published yet */
    out->seq = t->seq;
    if (after_seq > t->seq) {
        /* the client saw a previous server instance's sequence: everything kept is new */
        out->gap = true;
        after_seq = 0;
    }
    if (t->count == 0) {
        out->gap = out->gap || after_seq < t->seq;
        return 0;
    }
    size_t cap = ps->history_size;
    size_t first = (t->head + cap - t->count) % cap;
    out->oldest_seq = t->ring[first].seq;
    if (after_seq + 1 < out->oldest_seq)
        out->gap = true;
    uint64_t expect = after_seq + 1;
    for (size_t i = 0; i < t->count; i++) {
        hist_t *h = &t->ring[(first + i) % cap];
        if (h->seq <= after_seq)
            continue;
        if (h->seq != expect)
            out->gap = true; /* a hole (multi-node: messages this node never received) */
        expect = h->seq + 1;
        if (cb)
            cb(h->frame, h->seq, ud);
        out->replayed++;
    }
    ps->st.replayed += out->replayed;
    if (out->gap)
        ps->st.gaps++;
    return 0;
}

/* ---- socket protocol --------------------------------------------------------------- */

static void send_ctl(sp_ws_conn_t *c, const char *topic, const char *event, json_t *payload)
{
    json_t *o = json_pack("{s:s,s:s,s:o,s:n}", "topic", topic, "event", event, "payload",
                          payload ? payload : json_object(), "seq");
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (txt)
        sp_ws_conn_send_text(c, txt, strlen(txt));
    free(txt);
    json_decref(o);
}

static void replay_to_conn(sp_rbuf_t *frame, uint64_t seq, void *ud)
{
    (void)seq;
    sp_ws_conn_send_frame(ud, frame);
}

static int sp_pubsub_resume(sp_pubsub_t *ps, sp_ws_conn_t *c, const char *topic, uint64_t after_seq,
                     sp_pubsub_replay_t *out)
{
    sp_pubsub_replay_t tmp;
    if (!out)
        out = &tmp;
    /* count first, so the gap notice precedes the replayed frames */
    int rc = sp_pubsub_replay(ps, topic, after_seq, NULL, NULL, out);
    if (rc)
        return rc;
    ps->st.replayed -= out->replayed;
    if (out->gap)
        ps->st.gaps--;
    if ((rc = sp_pubsub_subscribe_conn(ps, topic, c, true)) != 0)
        return rc;
    if (out->gap) {
        uint64_t a = after_seq > out->seq ? 0 : after_seq;
        send_ctl(c, topic, "gap",
                 json_pack("{s:I,s:I,s:I}", "after_seq", (json_int_t)after_seq, "oldest_seq",
                           (json_int_t)out->oldest_seq, "missed_from", (json_int_t)(a + 1)));
    }
    rc = sp_pubsub_replay(ps, topic, after_seq, replay_to_conn, c, out);
    send_ctl(c, topic, "resumed",
             json_pack("{s:I,s:I,s:I,s:b}", "after_seq", (json_int_t)after_seq, "replayed",
                       (json_int_t)out->replayed, "seq", (json_int_t)out->seq, "gap", out->gap));
    return rc;
}

static bool may_join(sp_pubsub_t *ps, sp_ws_conn_t *c, const char *topic)
{
    (void)ps;
    return sp_pubsub_default_authorize(sp_ws_conn_user(c), sp_ws_conn_flags(c), topic);
}

static void refuse(sp_ws_conn_t *c, const char *topic, const char *reason)
{
    send_ctl(c, topic ? topic : "", "subscribe_error", json_pack("{s:s}", "reason", reason));
}

static bool ext_message(sp_ws_conn_t *c, const char *type, void *json_obj, void *ud)
{
    sp_pubsub_t *ps = ud;
    json_t *j = json_obj;
    const char *topic = json_string_value(json_object_get(j, "topic"));
    sp_topic_info_t ti;

    if (strcmp(type, "subscribe") == 0 || strcmp(type, "resume") == 0) {
        if (!topic || sp_pubsub_topic_parse(topic, strlen(topic), &ti) != 0) {
            refuse(c, topic, "invalid topic");
            return true;
        }
        if (!may_join(ps, c, topic)) {
            sp_ulog(SP_LOG_INFO, MOD, sp_ws_conn_user(c), "subscription refused", "topic=%s",
                    topic);
            refuse(c, topic, "forbidden");
            return true;
        }
        if (type[0] == 's') {
            int rc = sp_pubsub_subscribe_conn(ps, topic, c, false);
            if (rc) {
                refuse(c, topic, sp_err_name(rc));
                return true;
            }
            send_ctl(c, topic, "subscribed",
                     json_pack("{s:I}", "seq", (json_int_t)sp_pubsub_seq(ps, topic)));
            return true;
        }
        json_t *as = json_object_get(j, "after_seq");
        if (!json_is_integer(as) || json_integer_value(as) < 0) {
            refuse(c, topic, "after_seq must be an integer >= 0");
            return true;
        }
        int rc = sp_pubsub_resume(ps, c, topic, (uint64_t)json_integer_value(as), NULL);
        if (rc)
            refuse(c, topic, sp_err_name(rc));
        return true;
    }
    if (strcmp(type, "unsubscribe") == 0) {
        if (topic && sp_pubsub_unsubscribe_conn(ps, topic, c) == 0)
            send_ctl(c, topic, "unsubscribed", NULL);
        else
            refuse(c, topic, "not subscribed");
        return true;
    }
#ifdef SP_TEST_HOOKS /* test hooks build + TEST_MODE only */
    if (strcmp(type, "publish") == 0 && sp_ws_hub_opts(sp_ws_conn_hub(c))->test_mode) {
        const char *event = json_string_value(json_object_get(j, "event"));
        int64_t seq = sp_pubsub_publish(ps, topic, event ? event : "test",
                                        json_object_get(j, "payload"));
        if (seq < 0)
            refuse(c, topic, sp_err_name((int)seq));
        return true;
    }
#endif
    return false;
}

static void ext_close(sp_ws_conn_t *c, void *ud)
{
    sp_pubsub_drop_conn(ud, c);
}

void sp_pubsub_attach(sp_pubsub_t *ps, sp_ws_hub_t *hub)
{
    sp_ws_ext_t ext = { .on_message = ext_message, .on_close = ext_close, .ud = ps };
    ps->hub = hub;
    sp_ws_hub_set_ext(hub, &ext);
}

static size_t active_topics(const sp_pubsub_t *ps)
{
    size_t n = 0;
    for (const topic_t *t = ps->ahead; t; t = t->anext)
        n++;
    return n;
}

void sp_pubsub_stats(const sp_pubsub_t *ps, sp_pubsub_stats_t *out)
{
    *out = ps->st;
    out->deferred = ps->deferred;
    out->active_topics = active_topics(ps);
    out->topics = sp_map_count(ps->topics);
}

void sp_pubsub_write_metrics(const sp_pubsub_t *ps, sp_buf_t *out)
{
    const sp_pubsub_stats_t *s = &ps->st;
    sp_buf_appendf(out,
                   "# TYPE streampai_pubsub_published_total counter\n"
                   "streampai_pubsub_published_total %llu\n"
                   "# TYPE streampai_pubsub_delivered_total counter\n"
                   "streampai_pubsub_delivered_total %llu\n"
                   "# TYPE streampai_pubsub_dropped_total counter\n"
                   "streampai_pubsub_dropped_total %llu\n"
                   "# TYPE streampai_pubsub_replayed_total counter\n"
                   "streampai_pubsub_replayed_total %llu\n"
                   "# TYPE streampai_pubsub_gaps_total counter\nstreampai_pubsub_gaps_total %llu\n"
                   "# TYPE streampai_pubsub_topics gauge\nstreampai_pubsub_topics %zu\n"
                   "# TYPE streampai_pubsub_subscriptions gauge\n"
                   "streampai_pubsub_subscriptions %llu\n"
                   "# TYPE streampai_pubsub_fanout_deferred_total counter\n"
                   "streampai_pubsub_fanout_deferred_total %llu\n"
                   "# TYPE streampai_pubsub_fanout_active_topics gauge\n"
                   "streampai_pubsub_fanout_active_topics %zu\n",
                   (unsigned long long)s->published, (unsigned long long)s->delivered,
                   (unsigned long long)s->dropped, (unsigned long long)s->replayed,
                   (unsigned long long)s->gaps, sp_map_count(ps->topics),
                   (unsigned long long)s->subscriptions, (unsigned long long)ps->deferred,
                   active_topics(ps));
    if (ps->backend.write_metrics)
        ps->backend.write_metrics(ps->backend.ud, out);
}
