/*
 * eventsub: the pure Twitch EventSub WebSocket session machine (see the header for the
 * lifecycle and the caller's contract). No I/O, no clocks: times come in with the events.
 */
#include "platforms/twitch/eventsub.h"

#include "core/sp_jarena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"

static const char *const state_names[] = {
    "idle", "connecting", "awaiting_welcome", "subscribing", "live",
    "reconnecting", "backoff", "closed", "failed",
};
static const char *const status_names[] = {
    "connecting", "connected", "degraded", "needs_reauth", "stopped",
};
static const struct {
    const char *type;
    const char *version;
} subs_table[SP_TWITCH_SUB_COUNT] = {
    { "channel.chat.message", "1" },
    { "channel.follow", "2" },
    { "channel.subscribe", "1" },
    { "channel.subscription.gift", "1" },
    { "channel.subscription.message", "1" },
    { "channel.cheer", "1" },
    { "channel.raid", "1" },
    { "stream.online", "1" },
    { "stream.offline", "1" },
    { "channel.chat.message_delete", "1" },
};

const char *sp_twitch_es_state_name(sp_twitch_es_state_t st)
{
    if ((unsigned)st > SP_TWITCH_ES_FAILED) return "unknown";
    return state_names[st];
}

const char *sp_twitch_es_status_name(sp_twitch_es_status_t st)
{
    if ((unsigned)st > SP_TWITCH_ES_ST_STOPPED) return "unknown";
    return status_names[st];
}

const char *sp_twitch_es_close_reason(int code)
{
    switch (code) {
    case 1000: return "client_disconnected";
    case 4000: return "internal_error";
    case 4001: return "inbound_traffic";
    case 4002: return "failed_ping_pong";
    case 4003: return "connection_unused";
    case 4004: return "reconnect_grace_expired";
    case 4005: return "network_timeout";
    case 4006: return "network_error";
    case 4007: return "invalid_reconnect";
    default: return "connection_lost";
    }
}

const char *sp_twitch_sub_type(sp_twitch_sub_t sub)
{
    if ((unsigned)sub >= SP_TWITCH_SUB_COUNT) return NULL;
    return subs_table[sub].type;
}

const char *sp_twitch_sub_version(sp_twitch_sub_t sub)
{
    if ((unsigned)sub >= SP_TWITCH_SUB_COUNT) return NULL;
    return subs_table[sub].version;
}

int sp_twitch_sub_parse(const char *type)
{
    if (type == NULL) return -1;
    for (int i = 0; i < SP_TWITCH_SUB_COUNT; i++)
        if (strcmp(type, subs_table[i].type) == 0) return i;
    return -1;
}

/* ---- small validators ------------------------------------------------------------------ */

/* 1..cap-1 printable ASCII characters (no blank, quote or backslash). */
static bool token_ok(const char *s, size_t cap)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') return false;
    }
    return n > 0 && n < cap;
}

static bool url_ok(const char *u, bool allow_ws)
{
    if (u == NULL || !token_ok(u, SP_TWITCH_ES_URL_MAX)) return false;
    if (strncmp(u, "wss://", 6) == 0) return u[6] != '\0' && u[6] != '/';
    return allow_ws && strncmp(u, "ws://", 5) == 0 && u[5] != '\0' && u[5] != '/';
}

static bool digits_ok(const char *s)
{
    if (s == NULL) return false;
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (s[n] < '0' || s[n] > '9') return false;
    return n >= 1 && n <= 32;
}

/* ---- init -------------------------------------------------------------------------------- */

int sp_twitch_es_init(sp_twitch_es_t *es, const char *url, unsigned subs, uint64_t backoff_base_ms,
                      uint64_t backoff_max_ms)
{
    memset(es, 0, sizeof *es);
    if (!url_ok(url, true)) return SP_EINVAL;
    if ((subs & ~SP_TWITCH_SUB_ALL) != 0) return SP_EINVAL;
    snprintf(es->base_url, sizeof es->base_url, "%s", url);
    es->want = subs ? subs : SP_TWITCH_SUB_ALL;
    sp_backoff_init(&es->backoff, backoff_base_ms ? backoff_base_ms : 1000,
                    backoff_max_ms ? backoff_max_ms : 60000);
    es->state = SP_TWITCH_ES_IDLE;
    return 0;
}

void sp_twitch_es_free(sp_twitch_es_t *es)
{
    json_decref(es->held);
    es->held = NULL;
}

/* ---- actions ----------------------------------------------------------------------------- */

static sp_twitch_es_action_t *push(sp_twitch_es_result_t *r, sp_twitch_es_action_type_t t)
{
    /* SP_TWITCH_ES_MAX_ACTIONS is above the longest transition (4 actions); a bug here must
     * not write past the array, so the last slot is reused. */
    if (r->n >= SP_TWITCH_ES_MAX_ACTIONS) r->n = SP_TWITCH_ES_MAX_ACTIONS - 1;
    sp_twitch_es_action_t *a = &r->a[r->n++];
    memset(a, 0, sizeof *a);
    a->type = t;
    return a;
}

static void status(sp_twitch_es_t *es, sp_twitch_es_result_t *r, sp_twitch_es_status_t st,
                   const char *why)
{
    snprintf(es->reason, sizeof es->reason, "%s", why ? why : "");
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_STATUS);
    a->status = st;
    a->reason = es->reason;
}

static void arm(sp_twitch_es_t *es, sp_twitch_es_result_t *r, int64_t at)
{
    es->deadline = at;
    push(r, SP_TWITCH_ES_A_ARM_TIMER)->at_ms = at;
}

static void close_sock(sp_twitch_es_result_t *r, uint32_t *sock)
{
    if (*sock == 0) return;
    push(r, SP_TWITCH_ES_A_CLOSE)->sock = *sock;
    *sock = 0;
}

static uint32_t new_sock(sp_twitch_es_t *es)
{
    es->next_id = es->next_id == UINT32_MAX ? 1 : es->next_id + 1;
    return es->next_id;
}

/* Opens a fresh session on the base url. */
static void connect_fresh(sp_twitch_es_t *es, sp_twitch_es_result_t *r, int64_t now)
{
    es->cur = new_sock(es);
    es->mig = 0;
    es->mig_open = false;
    es->active = 0;
    es->session_id[0] = '\0';
    es->state = SP_TWITCH_ES_CONNECTING;
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_CONNECT);
    a->sock = es->cur;
    a->url = es->base_url;
    arm(es, r, now + SP_TWITCH_ES_CONNECT_TIMEOUT_MS);
}

/* The session is lost: close what is left, wait (backoff with jitter), then start afresh.
 * degraded forces the degraded status (a client-side fault that repeats by itself). */
static void lose(sp_twitch_es_t *es, sp_twitch_es_result_t *r, int64_t now, const char *why,
                 bool degraded)
{
    close_sock(r, &es->mig);
    close_sock(r, &es->cur);
    es->mig_open = false;
    es->active = 0;
    es->session_id[0] = '\0';
    es->state = SP_TWITCH_ES_BACKOFF;
    if (es->backoff.attempt + 1 >= SP_TWITCH_ES_DEGRADED_AFTER) degraded = true;
    status(es, r, degraded ? SP_TWITCH_ES_ST_DEGRADED : SP_TWITCH_ES_ST_CONNECTING, why);
    uint64_t d = sp_backoff_next(&es->backoff);
    if (d > INT64_MAX / 4) d = INT64_MAX / 4; /* sp_backoff caps it; keep the sum in range */
    es->deadline = now + (int64_t)d;
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_RECONNECT_LATER);
    a->delay_ms = d;
    a->at_ms = es->deadline;
}

static int64_t keepalive_deadline(const sp_twitch_es_t *es)
{
    return es->last_rx + es->keepalive_ms + SP_TWITCH_ES_KEEPALIVE_MARGIN_MS;
}

/* ---- dedupe ------------------------------------------------------------------------------ */

static uint64_t id_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1; /* 0 marks an empty slot */
}

/* true if id was seen; otherwise remembers it. */
static bool seen_before(sp_twitch_es_t *es, const char *id)
{
    uint64_t h = id_hash(id);
    for (size_t i = 0; i < SP_TWITCH_ES_DEDUP; i++)
        if (es->seen[i] == h) return true;
    es->seen[es->seen_pos] = h;
    es->seen_pos = (es->seen_pos + 1) % SP_TWITCH_ES_DEDUP;
    return false;
}

/* ---- messages ---------------------------------------------------------------------------- */

typedef struct {
    const char *type;
    json_t *payload;
    char id[SP_TWITCH_ES_ID_MAX];
    char ts[64];
    char sub_type[64];
    char sub_version[16];
} envelope_t;

static bool parse_envelope(json_t *root, envelope_t *e)
{
    json_t *md = json_object_get(root, "metadata");
    if (!json_is_object(md)) return false;
    e->type = sp_json_str(md, "message_type");
    if (e->type == NULL) return false;
    if (!sp_json_strcpy(md, "message_id", e->id, sizeof e->id, SP_JSON_REQUIRED, NULL) ||
        !token_ok(e->id, sizeof e->id))
        return false;
    if (!sp_json_strcpy(md, "message_timestamp", e->ts, sizeof e->ts, 0, NULL)) return false;
    if (!sp_json_strcpy(md, "subscription_type", e->sub_type, sizeof e->sub_type, 0, NULL) ||
        !sp_json_strcpy(md, "subscription_version", e->sub_version, sizeof e->sub_version, 0,
                        NULL))
        return false;
    e->payload = json_object_get(root, "payload");
    return json_is_object(e->payload);
}

/* A notification/revocation: fresh (by message_timestamp) and not seen before. */
static const char *admit(sp_twitch_es_t *es, const envelope_t *e, int64_t wall_ms)
{
    int64_t ts;
    if (e->sub_type[0] == '\0') return "bad_message";
    if (e->ts[0] == '\0' || sp_time_parse_rfc3339(e->ts, strlen(e->ts), &ts) != 0)
        return "bad_timestamp";
    /* both in range of a plausible Unix ms time: the subtraction cannot overflow */
    if (ts < 0 || ts > INT64_MAX / 4 || wall_ms < 0 || wall_ms > INT64_MAX / 4) return "stale";
    if (wall_ms - ts > SP_TWITCH_ES_MAX_AGE_MS) return "stale";
    if (seen_before(es, e->id)) return "duplicate";
    return NULL;
}

static void on_welcome(sp_twitch_es_t *es, const envelope_t *e, uint32_t sock, int64_t now,
                       sp_twitch_es_result_t *r)
{
    json_t *session = json_object_get(e->payload, "session");
    char id[SP_TWITCH_ES_ID_MAX];
    if (!json_is_object(session) ||
        !sp_json_strcpy(session, "id", id, sizeof id, SP_JSON_REQUIRED, NULL) ||
        !token_ok(id, sizeof id)) {
        lose(es, r, now, "bad_welcome", false);
        return;
    }
    /* keepalive_timeout_seconds: Twitch allows 10..600; anything else is clamped */
    int64_t ka = 10;
    json_t *k = json_object_get(session, "keepalive_timeout_seconds");
    if (json_is_integer(k)) {
        json_int_t v = json_integer_value(k);
        ka = v < 10 ? 10 : v > 600 ? 600 : (int64_t)v;
    }
    es->keepalive_ms = ka * 1000;
    es->last_rx = now;
    snprintf(es->session_id, sizeof es->session_id, "%s", id);
    if (es->state == SP_TWITCH_ES_RECONNECTING) {
        /* migration done: the subscriptions moved with the session */
        close_sock(r, &es->cur);
        es->cur = sock;
        es->mig = 0;
        es->mig_open = false;
        es->state = SP_TWITCH_ES_LIVE;
        sp_backoff_reset(&es->backoff);
        status(es, r, SP_TWITCH_ES_ST_CONNECTED, "");
    } else {
        es->state = SP_TWITCH_ES_SUBSCRIBING;
        es->active = 0;
        sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_CREATE_SUBS);
        a->sock = es->cur;
        a->session_id = es->session_id;
        a->subs = es->want;
    }
    arm(es, r, keepalive_deadline(es));
}

static void on_reconnect(sp_twitch_es_t *es, const envelope_t *e, int64_t now,
                         sp_twitch_es_result_t *r)
{
    if (es->state == SP_TWITCH_ES_RECONNECTING) return; /* already moving */
    json_t *session = json_object_get(e->payload, "session");
    char url[SP_TWITCH_ES_URL_MAX];
    /* ws:// only when the base url is ws:// (tests); a wss:// session never downgrades */
    bool allow_ws = strncmp(es->base_url, "ws://", 5) == 0;
    if (!json_is_object(session) ||
        !sp_json_strcpy(session, "reconnect_url", url, sizeof url, SP_JSON_REQUIRED, NULL) ||
        !url_ok(url, allow_ws)) {
        lose(es, r, now, "bad_reconnect_url", false);
        return;
    }
    snprintf(es->reconnect_url, sizeof es->reconnect_url, "%s", url);
    es->mig = new_sock(es);
    es->mig_open = false;
    es->state = SP_TWITCH_ES_RECONNECTING;
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_CONNECT);
    a->sock = es->mig;
    a->url = es->reconnect_url;
    arm(es, r, now + SP_TWITCH_ES_RECONNECT_GRACE_MS);
}

static void on_revocation(sp_twitch_es_t *es, const envelope_t *e, sp_twitch_es_result_t *r)
{
    char *st = es->revoked;
    json_t *sub = json_object_get(e->payload, "subscription");
    if (!json_is_object(sub) ||
        !sp_json_strcpy(sub, "status", st, sizeof es->revoked, 0, NULL) || st[0] == '\0')
        snprintf(st, sizeof es->revoked, "revoked");
    snprintf(es->msg_id, sizeof es->msg_id, "%s", e->id);
    int t = sp_twitch_sub_parse(e->sub_type);
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_REVOKED);
    a->message_id = es->msg_id;
    a->sub_type = t >= 0 ? subs_table[t].type : "unknown";
    a->sub_version = t >= 0 ? subs_table[t].version : "";
    a->reason = st;
    if (t >= 0) {
        es->active &= ~(1u << t);
        es->want &= ~(1u << t); /* not re-created on the next fresh session either */
    }
    if (strcmp(st, "authorization_revoked") == 0) {
        /* the token is gone: every other subscription follows; stop and ask for re-auth */
        close_sock(r, &es->mig);
        close_sock(r, &es->cur);
        es->mig_open = false;
        es->state = SP_TWITCH_ES_FAILED;
        es->deadline = 0;
        push(r, SP_TWITCH_ES_A_CANCEL_TIMER);
        status(es, r, SP_TWITCH_ES_ST_NEEDS_REAUTH, "authorization_revoked");
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "revoked:%s:%s", t >= 0 ? subs_table[t].type : "unknown", st);
    status(es, r, SP_TWITCH_ES_ST_DEGRADED, why);
}

static void on_message(sp_twitch_es_t *es, const sp_twitch_es_event_t *ev,
                       sp_twitch_es_result_t *r)
{
    bool on_cur = ev->sock == es->cur && es->cur != 0;
    bool on_mig = ev->sock == es->mig && es->mig != 0 && es->mig_open;
    if (!on_cur && !on_mig) {
        r->note = "unknown_socket";
        return;
    }
    if (on_cur && es->state == SP_TWITCH_ES_CONNECTING) {
        r->note = "early"; /* text before OPENED: the caller's bug; ignore */
        return;
    }
    if (ev->data == NULL || ev->len == 0 || ev->len > SP_TWITCH_ES_MAX_MSG) {
        r->note = "bad_message";
        return;
    }
    /* the tree lives until the frame's actions are done (sp_jarena.h) */
    bool arena = sp_jarena_begin();
    json_t *root = json_loadb(ev->data, ev->len, JSON_REJECT_DUPLICATES, NULL);
    if (arena) sp_jarena_end();
    envelope_t e;
    memset(&e, 0, sizeof e);
    if (!json_is_object(root) || !parse_envelope(root, &e)) {
        json_decref(root);
        r->note = "bad_message";
        return;
    }
    json_decref(es->held);
    es->held = root;
    if (on_cur) es->last_rx = ev->now_ms;

    bool welcome = strcmp(e.type, "session_welcome") == 0;
    if (on_mig) {
        /* the new socket: only its welcome matters (notifications start after it) */
        if (welcome) on_welcome(es, &e, ev->sock, ev->now_ms, r);
        else r->note = "early";
        return;
    }
    if (es->state == SP_TWITCH_ES_AWAITING_WELCOME) {
        if (welcome) on_welcome(es, &e, ev->sock, ev->now_ms, r);
        else r->note = "early";
        return;
    }
    if (welcome || strcmp(e.type, "session_keepalive") == 0) return; /* traffic only */
    if (strcmp(e.type, "session_reconnect") == 0) {
        on_reconnect(es, &e, ev->now_ms, r);
        return;
    }
    bool notif = strcmp(e.type, "notification") == 0;
    bool revoc = strcmp(e.type, "revocation") == 0;
    if (!notif && !revoc) {
        r->note = "unknown_type"; /* a future message type: traffic, nothing else */
        return;
    }
    const char *refused = admit(es, &e, ev->wall_ms);
    if (refused) {
        r->note = refused;
        return;
    }
    if (revoc) {
        on_revocation(es, &e, r);
        return;
    }
    json_t *event = json_object_get(e.payload, "event");
    if (!json_is_object(event)) {
        r->note = "bad_message";
        return;
    }
    int t = sp_twitch_sub_parse(e.sub_type);
    snprintf(es->msg_id, sizeof es->msg_id, "%s", e.id);
    sp_twitch_es_action_t *a = push(r, SP_TWITCH_ES_A_DELIVER);
    a->message_id = es->msg_id;
    if (t >= 0) {
        a->sub_type = subs_table[t].type;
        a->sub_version = subs_table[t].version;
    } else {
        /* a type we did not ask for: handed over anyway, map.c decides */
        snprintf(es->sub_type, sizeof es->sub_type, "%s", e.sub_type);
        a->sub_type = es->sub_type;
        a->sub_version = "";
    }
    a->event = event;
}

/* ---- other events ------------------------------------------------------------------------- */

static void on_closed(sp_twitch_es_t *es, const sp_twitch_es_event_t *ev,
                      sp_twitch_es_result_t *r)
{
    int code = ev->close_code;
    char why[64];
    snprintf(why, sizeof why, "close_%d_%s", code >= 0 && code <= 65535 ? code : 0,
             sp_twitch_es_close_reason(code));
    /* client-side faults repeat by themselves: surface them at once */
    bool ours = code == 4001 || code == 4003 || code == 4007;
    if (ev->sock == es->mig && es->mig != 0) {
        /* the migration failed (4007 invalid reconnect, network): start afresh */
        es->mig = 0;
        es->mig_open = false;
        lose(es, r, ev->now_ms, why, ours);
        return;
    }
    if (ev->sock != es->cur || es->cur == 0) {
        r->note = "unknown_socket";
        return;
    }
    es->cur = 0;
    if (es->state == SP_TWITCH_ES_RECONNECTING) {
        /* the old socket went first: the new one carries the session on; keep waiting for its
         * welcome (the grace deadline still applies) */
        return;
    }
    lose(es, r, ev->now_ms, why, ours);
}

static void on_tick(sp_twitch_es_t *es, int64_t now, sp_twitch_es_result_t *r)
{
    if (es->deadline == 0) {
        r->note = "no_timer";
        return;
    }
    switch (es->state) {
    case SP_TWITCH_ES_SUBSCRIBING:
    case SP_TWITCH_ES_LIVE: {
        int64_t d = keepalive_deadline(es);
        if (now < d) {
            arm(es, r, d);
            return;
        }
        lose(es, r, now, "keepalive_timeout", false);
        return;
    }
    default:
        break;
    }
    if (now < es->deadline) {
        arm(es, r, es->deadline);
        return;
    }
    switch (es->state) {
    case SP_TWITCH_ES_CONNECTING: lose(es, r, now, "connect_timeout", false); return;
    case SP_TWITCH_ES_AWAITING_WELCOME: lose(es, r, now, "welcome_timeout", false); return;
    case SP_TWITCH_ES_RECONNECTING: lose(es, r, now, "reconnect_timeout", false); return;
    case SP_TWITCH_ES_BACKOFF: connect_fresh(es, r, now); return;
    default: es->deadline = 0; r->note = "no_timer"; return;
    }
}

static void on_subs(sp_twitch_es_t *es, const sp_twitch_es_event_t *ev,
                    sp_twitch_es_result_t *r)
{
    if (es->state != SP_TWITCH_ES_SUBSCRIBING || ev->sock != es->cur) {
        r->note = "stale_result";
        return;
    }
    es->active = ev->subs_ok & es->want;
    if (ev->auth_failed && es->active == 0) {
        close_sock(r, &es->cur);
        es->state = SP_TWITCH_ES_FAILED;
        es->deadline = 0;
        push(r, SP_TWITCH_ES_A_CANCEL_TIMER);
        status(es, r, SP_TWITCH_ES_ST_NEEDS_REAUTH, "subscriptions_unauthorized");
        return;
    }
    if (es->active == 0) {
        lose(es, r, ev->now_ms, "subscriptions_failed", true);
        return;
    }
    es->state = SP_TWITCH_ES_LIVE;
    sp_backoff_reset(&es->backoff);
    unsigned failed = (ev->subs_failed | (es->want & ~ev->subs_ok)) & es->want;
    if (failed == 0) {
        status(es, r, SP_TWITCH_ES_ST_CONNECTED, "");
        return;
    }
    int first = __builtin_ctz(failed);
    char why[96];
    snprintf(why, sizeof why, "subscription_failed:%s", subs_table[first].type);
    status(es, r, SP_TWITCH_ES_ST_DEGRADED, why);
}

sp_twitch_es_result_t sp_twitch_es_apply(sp_twitch_es_t *es, const sp_twitch_es_event_t *ev)
{
    sp_twitch_es_result_t r;
    memset(&r, 0, sizeof r);
    /* the previous DELIVER's frame is released: its pointers are no longer valid */
    json_decref(es->held);
    es->held = NULL;

    /* deadlines are now + a few minutes at most: a clock in this range never overflows */
    if (ev->now_ms < 0 || ev->now_ms > INT64_MAX / 4) {
        r.err = SP_EINVAL;
        r.note = "bad_clock";
        return r;
    }
    bool running = es->state != SP_TWITCH_ES_IDLE && es->state != SP_TWITCH_ES_CLOSED &&
                   es->state != SP_TWITCH_ES_FAILED;
    switch (ev->type) {
    case SP_TWITCH_ES_EV_START:
        if (running) {
            r.err = SP_EINVAL;
            r.note = "running";
            return r;
        }
        sp_backoff_reset(&es->backoff);
        status(es, &r, SP_TWITCH_ES_ST_CONNECTING, "");
        connect_fresh(es, &r, ev->now_ms);
        return r;
    case SP_TWITCH_ES_EV_STOP:
        if (!running) {
            r.note = "not_running";
            return r;
        }
        close_sock(&r, &es->mig);
        close_sock(&r, &es->cur);
        es->mig_open = false;
        es->active = 0;
        es->deadline = 0;
        es->state = SP_TWITCH_ES_CLOSED;
        push(&r, SP_TWITCH_ES_A_CANCEL_TIMER);
        status(es, &r, SP_TWITCH_ES_ST_STOPPED, "");
        return r;
    case SP_TWITCH_ES_EV_OPENED:
        if (ev->sock != 0 && ev->sock == es->mig) {
            es->mig_open = true;
        } else if (ev->sock != 0 && ev->sock == es->cur &&
                   es->state == SP_TWITCH_ES_CONNECTING) {
            es->state = SP_TWITCH_ES_AWAITING_WELCOME;
            arm(es, &r, ev->now_ms + SP_TWITCH_ES_WELCOME_TIMEOUT_MS);
        } else {
            r.note = "unknown_socket";
        }
        return r;
    case SP_TWITCH_ES_EV_MESSAGE:
        on_message(es, ev, &r);
        return r;
    case SP_TWITCH_ES_EV_CLOSED:
        on_closed(es, ev, &r);
        return r;
    case SP_TWITCH_ES_EV_TICK:
        if (!running) {
            r.note = "not_running";
            return r;
        }
        on_tick(es, ev->now_ms, &r);
        return r;
    case SP_TWITCH_ES_EV_SUBS_RESULT:
        on_subs(es, ev, &r);
        return r;
    }
    r.err = SP_EINVAL;
    r.note = "bad_event";
    return r;
}

/* ---- subscription bodies ----------------------------------------------------------------- */

int sp_twitch_es_sub_body(sp_twitch_sub_t sub, const char *broadcaster_id, const char *user_id,
                          const sp_twitch_transport_t *tr, char **out)
{
    *out = NULL;
    if ((unsigned)sub >= SP_TWITCH_SUB_COUNT || !digits_ok(broadcaster_id) ||
        !digits_ok(user_id) || tr == NULL || tr->method == NULL)
        return SP_EINVAL;
    json_t *transport;
    if (strcmp(tr->method, "websocket") == 0) {
        if (tr->session_id == NULL || !token_ok(tr->session_id, SP_TWITCH_ES_ID_MAX))
            return SP_EINVAL;
        transport = json_pack("{s:s, s:s}", "method", "websocket", "session_id", tr->session_id);
    } else if (strcmp(tr->method, "webhook") == 0) {
        size_t sl = tr->secret ? strlen(tr->secret) : 0;
        /* http:// too: the config decides (prod refuses a plain-http PUBLIC_URL) */
        if (tr->callback == NULL ||
            (strncmp(tr->callback, "https://", 8) != 0 &&
             strncmp(tr->callback, "http://", 7) != 0) ||
            !token_ok(tr->callback, 2048) || sl < 10 || sl > 100 ||
            !token_ok(tr->secret, 101))
            return SP_EINVAL;
        transport = json_pack("{s:s, s:s, s:s}", "method", "webhook", "callback", tr->callback,
                              "secret", tr->secret);
    } else {
        return SP_EINVAL;
    }
    json_t *cond;
    switch (sub) {
    case SP_TWITCH_SUB_CHAT_MESSAGE:
    case SP_TWITCH_SUB_CHAT_DELETE:
        cond = json_pack("{s:s, s:s}", "broadcaster_user_id", broadcaster_id, "user_id",
                         user_id);
        break;
    case SP_TWITCH_SUB_FOLLOW:
        cond = json_pack("{s:s, s:s}", "broadcaster_user_id", broadcaster_id,
                         "moderator_user_id", user_id);
        break;
    case SP_TWITCH_SUB_RAID:
        cond = json_pack("{s:s}", "to_broadcaster_user_id", broadcaster_id);
        break;
    default:
        cond = json_pack("{s:s}", "broadcaster_user_id", broadcaster_id);
        break;
    }
    json_t *body = json_pack("{s:s, s:s, s:o, s:o}", "type", subs_table[sub].type, "version",
                             subs_table[sub].version, "condition", cond, "transport", transport);
    if (body == NULL) return SP_ENOMEM;
    *out = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return *out ? 0 : SP_ENOMEM;
}
