/* sp_pubsub_redis: Redis pub/sub backend for sp_pubsub. See sp_pubsub_redis.h. */
#include "bus/sp_pubsub_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_backoff.h"
#include "core/sp_err.h"
#include "bus/sp_hiredis_libuv.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "bus/sp_redis_msg.h"

#define MOD "redis"
#define KEY_PREFIX "streampai:seq:"
#define CHANNEL "streampai:bus"
#define CONNECT_TIMEOUT_MS 3000
#define CMD_TIMEOUT_MS 5000
#define KEEPALIVE_MS 5000
#define TICK_MS 500
#define BACKOFF_BASE_MS 200
#define BACKOFF_MAX_MS 5000
#define MAX_PENDING 20000
#define MAX_PENDING_BYTES (32u * 1024 * 1024)

/* counter := max(counter, publisher's seq) + 1; PUBLISH "SP1 <seq> <tail>"; atomically */
static const char PUB_SCRIPT[] =
    "local s = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "local f = tonumber(ARGV[1]) "
    "if s < f then s = f end "
    "s = s + 1 "
    "local n = string.format('%d', s) "
    "redis.call('SET', KEYS[1], n) "
    "redis.call('PUBLISH', ARGV[2], 'SP1 ' .. n .. ' ' .. ARGV[3]) "
    "return s";
/* counter := max(counter, seq): after local-only publishes during an outage */
static const char RAISE_SCRIPT[] =
    "local s = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "local f = tonumber(ARGV[1]) "
    "if s < f then redis.call('SET', KEYS[1], string.format('%d', f)) end "
    "return s";

typedef enum { ST_DOWN, ST_RESOLVING, ST_CONNECTING, ST_UP, ST_FAILING, ST_CLOSING } state_t;

typedef struct pend_s {
    struct pend_s *prev, *next;
    uint64_t id;
    char *tail;
    size_t len;
    bool sent, replied, echoed;
} pend_t;

struct sp_pubsub_redis_s {
    uv_loop_t *loop;
    sp_pubsub_t *ps;
    sp_redis_url_t url;
    char addr[300]; /* host:port for logs (never the password) */
    char node[SP_REDIS_NODE_LEN + 1];
    state_t state;
    redisAsyncContext *cmd, *sub;
    bool cmd_ready, sub_ready, was_up;
    uv_getaddrinfo_t gai;
    bool gai_active;
    uv_timer_t tick, retry;
    int open_handles;
    sp_backoff_t backoff;
    uint64_t state_since, last_progress, last_cmd;
    uint64_t outstanding;
    pend_t *head, *tail;
    size_t npend, pend_bytes;
    uint64_t next_id;
    sp_map_t *dirty; /* topics published locally while not connected */
    unsigned attempts;
    char reason[160];
    struct {
        uint64_t connects, failures, published, received, local_only, stale, jumps, bad;
    } st;
};

static void fail(sp_pubsub_redis_t *r, const char *why);

/* ---- pending publishes ------------------------------------------------------------ */

static void pend_unlink(sp_pubsub_redis_t *r, pend_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->tail = p->prev;
    r->npend--;
    r->pend_bytes -= p->len;
    sp_free(p->tail);
    sp_free(p);
}

static void mark_dirty(sp_pubsub_redis_t *r, const char *topic)
{
    if (!sp_map_gets(r->dirty, topic))
        sp_map_sets(r->dirty, topic, (void *)1);
}

/* Delivers on this node what never came back from Redis, in publish order. */
static void flush_pending_local(sp_pubsub_redis_t *r, bool deliver)
{
    while (r->head) {
        pend_t *p = r->head;
        if (deliver && !p->echoed) {
            sp_redis_msg_t m;
            json_t *root;
            const char *event;
            json_t *payload;
            char topic[SP_TOPIC_MAX + 1];
            if (sp_redis_msg_parse_tail((const uint8_t *)p->tail, p->len, &m) == 0 &&
                sp_redis_msg_body_decode(m.body, &root, &event, &payload) == 0) {
                memcpy(topic, m.topic.p, m.topic.len);
                topic[m.topic.len] = '\0';
                if (sp_pubsub_publish_local(r->ps, topic, event, payload) > 0) {
                    r->st.local_only++;
                    mark_dirty(r, topic);
                }
                json_decref(root);
            }
        }
        pend_unlink(r, p);
    }
}

/* ---- connection state ------------------------------------------------------------- */

static void set_reason(sp_pubsub_redis_t *r, const char *why)
{
    snprintf(r->reason, sizeof(r->reason), "%s", why ? why : "unknown");
}

static void on_retry(uv_timer_t *t);

static void schedule_retry(sp_pubsub_redis_t *r, bool log)
{
    uint64_t delay = sp_backoff_next(&r->backoff);
    r->state = ST_DOWN;
    if (!log) {
        sp_info(MOD, "redis reconnecting", "addr=%s retry_ms=%llu", r->addr,
                (unsigned long long)delay);
    } else if (++r->attempts == 1 || r->attempts % 10 == 0)
        sp_warn(MOD, "redis connect failed", "addr=%s reason=\"%s\" attempt=%u retry_ms=%llu",
                r->addr, r->reason, r->attempts, (unsigned long long)delay);
    else
        sp_debug(MOD, "redis connect failed", "addr=%s reason=\"%s\" attempt=%u retry_ms=%llu",
                 r->addr, r->reason, r->attempts, (unsigned long long)delay);
    uv_timer_start(&r->retry, on_retry, delay, 0);
}

/* Runs from the retry timer (never inside a hiredis callback). */
static void teardown(sp_pubsub_redis_t *r)
{
    redisAsyncContext *c = r->cmd, *s = r->sub;
    r->cmd = r->sub = NULL;
    /* pending reply callbacks run now with reply == NULL; state is FAILING so they only count */
    if (c)
        redisAsyncFree(c);
    if (s)
        redisAsyncFree(s);
    r->cmd_ready = r->sub_ready = false;
    r->outstanding = 0;
    size_t pending = r->npend;
    uint64_t before = r->st.local_only;
    flush_pending_local(r, true);
    if (r->was_up) {
        r->was_up = false;
        sp_warn(MOD, "redis connection lost", "addr=%s reason=\"%s\" pending=%zu local=%llu",
                r->addr, r->reason, pending, (unsigned long long)(r->st.local_only - before));
        sp_warn(MOD, "redis unavailable: publishing locally only until it is back", "addr=%s",
                r->addr);
        r->attempts = 0;
        sp_backoff_reset(&r->backoff);
        schedule_retry(r, false);
        return;
    }
    schedule_retry(r, true);
}

static void on_retry(uv_timer_t *t);

static void fail(sp_pubsub_redis_t *r, const char *why)
{
    if (r->state != ST_CONNECTING && r->state != ST_UP)
        return;
    set_reason(r, why);
    r->st.failures++;
    r->state = ST_FAILING;
    uv_timer_start(&r->retry, on_retry, 0, 0);
}

static const char *ctx_err(const redisAsyncContext *ac, const char *dflt)
{
    return ac && ac->errstr[0] ? ac->errstr : dflt;
}

static void send_raises(sp_pubsub_redis_t *r);

static void maybe_up(sp_pubsub_redis_t *r)
{
    if (r->state != ST_CONNECTING || !r->cmd_ready || !r->sub_ready)
        return;
    r->state = ST_UP;
    r->was_up = true;
    r->st.connects++;
    sp_info(MOD, "redis connected", "addr=%s node=%s attempts=%u", r->addr, r->node, r->attempts);
    r->attempts = 0;
    sp_backoff_reset(&r->backoff);
    r->last_cmd = r->last_progress = uv_now(r->loop);
    send_raises(r);
}

static void cmd_sent(sp_pubsub_redis_t *r)
{
    uint64_t now = uv_now(r->loop);
    if (r->outstanding++ == 0)
        r->last_progress = now;
    r->last_cmd = now;
}

static void cmd_replied(sp_pubsub_redis_t *r)
{
    if (r->outstanding)
        r->outstanding--;
    r->last_progress = uv_now(r->loop);
}

/* ---- hiredis callbacks ------------------------------------------------------------ */

static void on_connect(const redisAsyncContext *ac, int status)
{
    sp_pubsub_redis_t *r = ac->data;
    if (status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback */
    if (r->cmd == ac)
        r->cmd = NULL;
    if (r->sub == ac)
        r->sub = NULL;
    fail(r, ctx_err(ac, "connect failed"));
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    sp_pubsub_redis_t *r = ac->data;
    (void)status;
    if (r->cmd == ac)
        r->cmd = NULL;
    if (r->sub == ac)
        r->sub = NULL;
    fail(r, ctx_err(ac, "connection closed"));
}

/* AUTH / SELECT on either connection: an error reply is fatal for this attempt */
static void on_init_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    redisReply *rep = reply;
    (void)priv;
    if (ac == r->cmd)
        cmd_replied(r);
    if (!rep) {
        fail(r, ctx_err(ac, "connection closed"));
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "%s refused: %.100s", (const char *)priv, rep->str);
        fail(r, why);
    }
}

static void on_ready_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    redisReply *rep = reply;
    (void)priv;
    cmd_replied(r);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        fail(r, rep ? "PING refused" : ctx_err(ac, "connection closed"));
        return;
    }
    r->cmd_ready = true;
    maybe_up(r);
}

static void on_ping_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    (void)priv;
    cmd_replied(r);
    if (!reply)
        fail(r, ctx_err(ac, "connection closed"));
}

static void on_raise_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    redisReply *rep = reply;
    char *topic = priv;
    cmd_replied(r);
    if (rep && rep->type != REDIS_REPLY_ERROR)
        sp_map_dels(r->dirty, topic, NULL);
    else if (rep)
        fail(r, "counter raise refused");
    else
        fail(r, ctx_err(ac, "connection closed"));
    sp_free(topic);
}

static void on_publish_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    redisReply *rep = reply;
    pend_t *p = priv;
    cmd_replied(r);
    p->replied = true;
    if (!rep) {
        fail(r, ctx_err(ac, "connection closed"));
        return; /* teardown delivers it locally unless it came back */
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof(why), "publish refused: %.100s", rep->str);
        fail(r, why);
        return;
    }
    r->st.published++;
    if (p->echoed && r->state != ST_CLOSING)
        pend_unlink(r, p);
}

static void handle_message(sp_pubsub_redis_t *r, const char *data, size_t len)
{
    sp_redis_msg_t m;
    json_t *root;
    const char *event;
    json_t *payload;
    char topic[SP_TOPIC_MAX + 1];
    if (sp_redis_msg_parse((const uint8_t *)data, len, &m) != 0 ||
        sp_redis_msg_body_decode(m.body, &root, &event, &payload) != 0) {
        if (r->st.bad++ == 0)
            sp_warn(MOD, "malformed bus message ignored", "len=%zu", len);
        return;
    }
    if (memcmp(m.node.p, r->node, SP_REDIS_NODE_LEN) == 0) {
        for (pend_t *p = r->head; p; p = p->next)
            if (p->id == m.msg_id) {
                p->echoed = true;
                if (p->replied)
                    pend_unlink(r, p);
                break;
            }
    }
    memcpy(topic, m.topic.p, m.topic.len);
    topic[m.topic.len] = '\0';
    r->st.received++;
    int rc = sp_pubsub_deliver(r->ps, topic, m.seq, event, payload);
    if (rc == SP_EEXISTS) {
        if (r->st.stale++ == 0 || sp_log_enabled(SP_LOG_DEBUG))
            sp_info(MOD, "stale bus message dropped", "topic=%s seq=%llu have=%llu", topic,
                    (unsigned long long)m.seq, (unsigned long long)sp_pubsub_seq(r->ps, topic));
    } else if (rc == 1) {
        r->st.jumps++;
    }
    json_decref(root);
}

static void on_sub_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    sp_pubsub_redis_t *r = ac->data;
    redisReply *rep = reply;
    (void)priv;
    if (!rep) {
        fail(r, ctx_err(ac, "connection closed"));
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        fail(r, "SUBSCRIBE refused");
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        r->sub_ready = true;
        maybe_up(r);
    } else if (strcmp(kind, "message") == 0 && rep->element[2]->type == REDIS_REPLY_STRING) {
        if (r->state == ST_CLOSING)
            return;
        handle_message(r, rep->element[2]->str, (size_t)rep->element[2]->len);
    }
}

/* ---- connecting ------------------------------------------------------------------- */

static redisAsyncContext *open_ctx(sp_pubsub_redis_t *r, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, r->url.port);
    if (!ac) {
        set_reason(r, "out of memory");
        return NULL;
    }
    if (ac->err) {
        set_reason(r, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    if (sp_redis_uv_attach(ac, r->loop) != REDIS_OK) {
        set_reason(r, "poll init failed");
        redisAsyncFree(ac);
        return NULL;
    }
    redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (r->url.pass[0]) {
        if (r->url.user[0])
            redisAsyncCommand(ac, on_init_reply, "AUTH", "AUTH %s %s", r->url.user, r->url.pass);
        else
            redisAsyncCommand(ac, on_init_reply, "AUTH", "AUTH %s", r->url.pass);
    }
    return ac;
}

static void connect_to(sp_pubsub_redis_t *r, const char *ip)
{
    r->state = ST_CONNECTING;
    r->state_since = uv_now(r->loop);
    r->cmd_ready = r->sub_ready = false;
    r->outstanding = 0;
    if (!(r->cmd = open_ctx(r, ip)) || !(r->sub = open_ctx(r, ip))) {
        r->state = ST_FAILING;
        r->st.failures++;
        uv_timer_start(&r->retry, on_retry, 0, 0);
        return;
    }
    if (r->url.pass[0])
        cmd_sent(r);
    if (r->url.db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", r->url.db);
        redisAsyncCommand(r->cmd, on_init_reply, "SELECT", "SELECT %s", db);
        cmd_sent(r);
    }
    redisAsyncCommand(r->cmd, on_ready_reply, NULL, "PING");
    cmd_sent(r);
    redisAsyncCommand(r->sub, on_sub_reply, NULL, "SUBSCRIBE %s", CHANNEL);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sp_pubsub_redis_t *r = req->data;
    r->gai_active = false;
    if (r->state == ST_CLOSING) {
        uv_freeaddrinfo(res);
        if (r->open_handles == 0)
            sp_free(r);
        return;
    }
    char ip[64] = "";
    if (status == 0 && res) {
        if (res->ai_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof(ip));
        else
            uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof(ip));
    }
    uv_freeaddrinfo(res);
    if (!ip[0]) {
        char why[120];
        snprintf(why, sizeof(why), "resolve failed: %s",
                 status ? uv_strerror(status) : "no address");
        set_reason(r, why);
        r->st.failures++;
        schedule_retry(r, true);
        return;
    }
    connect_to(r, ip);
}

static void start_connect(sp_pubsub_redis_t *r)
{
    char port[16];
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", r->url.port);
    r->state = ST_RESOLVING;
    r->gai.data = r;
    int rc = uv_getaddrinfo(r->loop, &r->gai, on_resolved, r->url.host, port, &hints);
    if (rc) {
        set_reason(r, uv_strerror(rc));
        schedule_retry(r, true);
        return;
    }
    r->gai_active = true;
}

static void on_retry(uv_timer_t *t)
{
    sp_pubsub_redis_t *r = t->data;
    if (r->state == ST_FAILING)
        teardown(r);
    else if (r->state == ST_DOWN)
        start_connect(r);
}

static void on_tick(uv_timer_t *t)
{
    sp_pubsub_redis_t *r = t->data;
    uint64_t now = uv_now(r->loop);
    if (r->state == ST_CONNECTING && now - r->state_since > CONNECT_TIMEOUT_MS) {
        fail(r, "connect timed out");
    } else if (r->state == ST_UP) {
        if (r->outstanding && now - r->last_progress > CMD_TIMEOUT_MS) {
            fail(r, "command timed out");
        } else if (!r->outstanding && now - r->last_cmd >= KEEPALIVE_MS) {
            if (redisAsyncCommand(r->cmd, on_ping_reply, NULL, "PING") == REDIS_OK)
                cmd_sent(r);
            else
                fail(r, ctx_err(r->cmd, "PING not sent"));
        }
    }
}

static void send_raises(sp_pubsub_redis_t *r)
{
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (sp_map_next(r->dirty, &it, &k, &kl, &v)) {
        char key[sizeof(KEY_PREFIX) + SP_TOPIC_MAX + 1], seq[24];
        uint64_t s = sp_pubsub_seq(r->ps, k);
        snprintf(key, sizeof(key), KEY_PREFIX "%s", k);
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)s);
        char *t = sp_strdup(k);
        if (redisAsyncCommand(r->cmd, on_raise_reply, t, "EVAL %s 1 %s %s", RAISE_SCRIPT, key,
                              seq) != REDIS_OK) {
            sp_free(t);
            fail(r, "raise not sent");
            return;
        }
        cmd_sent(r);
    }
}

/* ---- backend hooks ---------------------------------------------------------------- */

static int be_publish(void *ud, const char *topic, const char *event, json_t *payload,
                      uint64_t cur_seq)
{
    sp_pubsub_redis_t *r = ud;
    if (r->state != ST_UP && r->state != ST_FAILING) {
        mark_dirty(r, topic);
        r->st.local_only++;
        return 0;
    }
    size_t len;
    char *tail = sp_redis_msg_encode_tail(r->node, r->next_id + 1, topic, event, payload, &len);
    if (!tail)
        return r->state == ST_UP ? SP_ETOOBIG : 0;
    pend_t *p = sp_calloc(1, sizeof(*p));
    p->id = ++r->next_id;
    p->tail = tail;
    p->len = len;
    p->prev = r->tail;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
    r->npend++;
    r->pend_bytes += len;
    if (r->state != ST_UP)
        return 1; /* failing: teardown delivers it locally, after what precedes it */
    if (r->npend > MAX_PENDING || r->pend_bytes > MAX_PENDING_BYTES) {
        fail(r, "backlog full");
        return 1;
    }
    char key[sizeof(KEY_PREFIX) + SP_TOPIC_MAX + 1], seq[24];
    snprintf(key, sizeof(key), KEY_PREFIX "%s", topic);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)cur_seq);
    if (redisAsyncCommand(r->cmd, on_publish_reply, p, "EVAL %s 1 %s %s %s %b", PUB_SCRIPT, key,
                          seq, CHANNEL, tail, len) != REDIS_OK) {
        fail(r, ctx_err(r->cmd, "publish not sent"));
        return 1;
    }
    p->sent = true;
    cmd_sent(r);
    return 1;
}

static void be_metrics(void *ud, sp_buf_t *out)
{
    sp_pubsub_redis_t *r = ud;
    sp_buf_appendf(out,
                   "# TYPE streampai_redis_connected gauge\nstreampai_redis_connected %d\n"
                   "# TYPE streampai_redis_connects_total counter\n"
                   "streampai_redis_connects_total %llu\n"
                   "# TYPE streampai_redis_failures_total counter\n"
                   "streampai_redis_failures_total %llu\n"
                   "# TYPE streampai_redis_published_total counter\n"
                   "streampai_redis_published_total %llu\n"
                   "# TYPE streampai_redis_received_total counter\n"
                   "streampai_redis_received_total %llu\n"
                   "# TYPE streampai_redis_local_only_total counter\n"
                   "streampai_redis_local_only_total %llu\n"
                   "# TYPE streampai_redis_stale_total counter\nstreampai_redis_stale_total %llu\n"
                   "# TYPE streampai_redis_jumps_total counter\nstreampai_redis_jumps_total %llu\n"
                   "# TYPE streampai_redis_bad_messages_total counter\n"
                   "streampai_redis_bad_messages_total %llu\n"
                   "# TYPE streampai_redis_pending gauge\nstreampai_redis_pending %zu\n",
                   r->state == ST_UP ? 1 : 0, (unsigned long long)r->st.connects,
                   (unsigned long long)r->st.failures, (unsigned long long)r->st.published,
                   (unsigned long long)r->st.received, (unsigned long long)r->st.local_only,
                   (unsigned long long)r->st.stale, (unsigned long long)r->st.jumps,
                   (unsigned long long)r->st.bad, r->npend);
}

static void on_handle_closed(uv_handle_t *h)
{
    sp_pubsub_redis_t *r = h->data;
    if (--r->open_handles == 0 && !r->gai_active)
        sp_free(r);
}

static void be_free(void *ud)
{
    sp_pubsub_redis_t *r = ud;
    bool was_up = r->state == ST_UP;
    r->state = ST_CLOSING;
    redisAsyncContext *c = r->cmd, *s = r->sub;
    r->cmd = r->sub = NULL;
    if (c)
        redisAsyncFree(c);
    if (s)
        redisAsyncFree(s);
    flush_pending_local(r, false);
    sp_map_free(r->dirty);
    r->dirty = NULL;
    if (was_up)
        sp_info(MOD, "redis disconnected", "addr=%s", r->addr);
    if (r->gai_active)
        uv_cancel((uv_req_t *)&r->gai);
    uv_close((uv_handle_t *)&r->tick, on_handle_closed);
    uv_close((uv_handle_t *)&r->retry, on_handle_closed);
}

int sp_pubsub_redis_attach(sp_pubsub_t *ps, uv_loop_t *loop, const char *url)
{
    sp_redis_url_t u;
    if (sp_redis_url_parse(url, &u) != 0) {
        sp_error(MOD, "REDIS_URL is not usable (expected redis://[[user]:pass@]host[:port][/db])",
                 "");
        return SP_EINVAL;
    }
    sp_pubsub_redis_t *r = sp_calloc(1, sizeof(*r));
    r->loop = loop;
    r->ps = ps;
    r->url = u;
    if (u.pass[0])
        sp_log_add_secret(u.pass);
    snprintf(r->addr, sizeof(r->addr), strchr(u.host, ':') ? "[%s]:%d" : "%s:%d", u.host, u.port);
    unsigned char rnd[SP_REDIS_NODE_LEN / 2];
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0) {
        uint64_t x = uv_hrtime() ^ ((uint64_t)(uintptr_t)r << 16);
        memcpy(rnd, &x, sizeof(rnd));
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(r->node + 2 * i, 3, "%02x", rnd[i]);
    r->dirty = sp_map_new(NULL);
    sp_backoff_init(&r->backoff, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
    uv_timer_init(loop, &r->tick);
    uv_timer_init(loop, &r->retry);
    r->tick.data = r->retry.data = r;
    r->open_handles = 2;
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&r->tick);
    uv_unref((uv_handle_t *)&r->retry);
    sp_pubsub_backend_t b = { .publish = be_publish, .write_metrics = be_metrics, .free = be_free,
                              .ud = r };
    sp_pubsub_set_backend(ps, &b);
    sp_info(MOD, "multi-node pubsub over redis", "addr=%s node=%s channel=%s", r->addr, r->node,
            CHANNEL);
    start_connect(r);
    return 0;
}
