/*
 * sp_psup_ops: what the supervisor does on the user's behalf through the platform vtables:
 * title/category sync, viewers sampling (published and sampled into viewer_samples, peak and
 * average written at the end), and chat sending (fan-out with a result per platform, replies
 * routed to the parent message's platform). See sp_psup_int.h for the op model.
 */
#include "platforms/sp_psup_int.h"

#include <stdio.h>
#include <string.h>

#include "bus/sp_pubsub.h"
#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "store/sp_store.h"

/* ------------------------------------------------------------------------------------------ */
/* title / category                                                                           */

static void on_channel(int err, void *ud)
{
    sp_psup_op_t *op = ud;
    if (err == SP_EAUTH && op->s) sp_psup_auth_failed(op->s, op->user_id, op->gen, op->platform);
    if (err != 0)
        sp_ulog(SP_LOG_WARN, "platforms", op->user_id, "title sync failed", "platform=%s err=%s",
                op->platform, sp_err_name(err));
    else
        sp_ulog(SP_LOG_INFO, "platforms", op->user_id, "title synced", "platform=%s",
                op->platform);
    sp_psup_op_end(op);
}

void sp_psup_push_channel(sp_psup_mon_t *mon, const char *title, const char *category)
{
    if (mon->acct == NULL || (title == NULL && category == NULL)) return;
    const sp_platform_t *p = mon->acct->platform;
    if (p == NULL || p->update_channel == NULL) return;
    sp_psup_op_t *op = sp_psup_op_new(mon->s, SP_PSUP_OP_TITLE, mon->u->user_id, mon->u->gen);
    snprintf(op->platform, sizeof(op->platform), "%s", mon->platform);
    op->acct = mon->acct;
    sp_platform_account_ref(op->acct);
    p->update_channel(&mon->s->env, op->acct, title, category, on_channel, op);
}

/* ------------------------------------------------------------------------------------------ */
/* viewers                                                                                    */

static void viewers_done(sp_psup_t *s, sp_psup_user_t *u)
{
    if (u->v.n_platforms == 0) return; /* no platform answered: nothing to show or keep */
    u->v.ts = u->v_ts;
    u->v_last = u->v;
    u->has_last = true;
    int64_t total = 0;
    for (size_t i = 0; i < u->v.n_platforms; i++) total += u->v.platforms[i].count;
    if (total > u->peak_total) u->peak_total = total;
    char topic[SP_TOPIC_MAX];
    snprintf(topic, sizeof(topic), "user_stream:%s:statistics", u->user_id);
    sp_psup_publish(s, topic, "viewers", sp_viewers_to_json(&u->v));
    if (s->store == NULL) return;
    for (size_t i = 0; i < u->v.n_platforms; i++)
        sp_store_enqueue(s->store,
                         "INSERT INTO viewer_samples (stream_id, platform, ts, viewers) VALUES "
                         "($1, $2, $3, $4)",
                         json_pack("[s, s, I, I]", u->stream_id, u->v.platforms[i].platform,
                                   (json_int_t)u->v_ts, (json_int_t)u->v.platforms[i].count),
                         NULL, NULL);
}

static void on_viewers(int err, bool live, int64_t viewers, void *ud)
{
    sp_psup_op_t *op = ud;
    sp_psup_user_t *u = sp_psup_op_user(op);
    if (u == NULL) {
        sp_psup_op_end(op);
        return;
    }
    sp_psup_t *s = op->s;
    if (err == 0 && u->v.n_platforms < SP_PMSG_VIEWER_PLATFORMS_MAX) {
        sp_viewer_count_t *c = &u->v.platforms[u->v.n_platforms++];
        snprintf(c->platform, sizeof(c->platform), "%s", op->platform);
        c->count = !live || viewers < 0 ? 0 : viewers > SP_PMSG_COUNT_MAX ? SP_PMSG_COUNT_MAX
                                                                         : viewers;
    } else if (err != 0) {
        sp_ulog(SP_LOG_DEBUG, "platforms", u->user_id, "viewers unavailable",
                "platform=%s err=%s", op->platform, sp_err_name(err));
        if (err == SP_EAUTH) sp_psup_auth_failed(s, op->user_id, op->gen, op->platform);
    }
    sp_psup_op_end(op);
    if (--u->v_pending == 0) viewers_done(s, u);
}

void sp_psup_viewers_tick(sp_psup_t *s, sp_psup_user_t *u)
{
    if (u->v_pending > 0) return; /* the previous sample is still out */
    sp_psup_mon_t *targets[SP_PLATFORM_MAX];
    size_t n = 0;
    for (size_t i = 0; i < u->n_mons; i++) {
        sp_psup_mon_t *mon = &u->mons[i];
        if (mon->acct && mon->acct->platform && mon->acct->platform->viewers &&
            (mon->state == SP_PSUP_MON_RUNNING || mon->state == SP_PSUP_MON_WAIT))
            targets[n++] = mon;
    }
    if (n == 0) return;
    memset(&u->v, 0, sizeof(u->v));
    u->v_ts = sp_wall_ms();
    u->v_pending = (int)n;
    for (size_t i = 0; i < n; i++) {
        sp_psup_mon_t *mon = targets[i];
        sp_psup_op_t *op = sp_psup_op_new(s, SP_PSUP_OP_VIEWERS, u->user_id, u->gen);
        snprintf(op->platform, sizeof(op->platform), "%s", mon->platform);
        op->acct = mon->acct;
        sp_platform_account_ref(op->acct);
        op->acct->platform->viewers(&s->env, op->acct, on_viewers, op);
    }
}

void sp_psup_viewers_final(sp_psup_t *s, const char *stream_id)
{
    if (s->store == NULL) return;
    /* queued behind the stream's samples: the per-tick totals' maximum and rounded mean */
    sp_store_enqueue(s->store,
                     "UPDATE streams SET peak_viewers = COALESCE((SELECT MAX(t) FROM (SELECT "
                     "SUM(viewers) AS t FROM viewer_samples WHERE stream_id = $1 GROUP BY ts) "
                     "q1), 0), avg_viewers = COALESCE((SELECT CAST(ROUND(AVG(t)) AS BIGINT) "
                     "FROM (SELECT SUM(viewers) AS t FROM viewer_samples WHERE stream_id = $1 "
                     "GROUP BY ts) q2), 0) WHERE id = $1",
                     json_pack("[s]", stream_id), NULL, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* chat                                                                                       */

typedef struct {
    char platform[SP_PMSG_PLATFORM_CAP];
    bool include; /* part of the answer */
    json_t *res;  /* {platform, sent, reason?, message_id?} */
} batch_slot_t;

struct sp_psup_batch_s {
    int refs;
    bool answered;
    bool implicit; /* no platform named: not-connected ones are left out */
    sp_psup_chat_cb cb;
    void *ud;
    char *text;
    char *reply_to;
    char user_id[SP_PSUP_USER_CAP];
    batch_slot_t slots[SP_PLATFORM_MAX];
    size_t n;
    int pending;
};

void sp_psup_batch_unref(sp_psup_batch_t *b)
{
    if (--b->refs > 0) return;
    for (size_t i = 0; i < b->n; i++) json_decref(b->slots[i].res);
    sp_free(b->text);
    sp_free(b->reply_to);
    sp_free(b);
}

void sp_psup_batch_cancel(sp_psup_batch_t *b)
{
    if (b->answered) return;
    b->answered = true;
    b->cb(SP_ECANCELED, NULL, b->ud);
}

static void batch_answer(sp_psup_batch_t *b)
{
    if (b->answered) return;
    b->answered = true;
    json_t *arr = json_array();
    for (size_t i = 0; i < b->n; i++)
        if (b->slots[i].include && b->slots[i].res)
            json_array_append(arr, b->slots[i].res);
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        b->cb(SP_ENOTFOUND, NULL, b->ud);
        return;
    }
    json_t *out = json_pack("{s:o}", "results", arr);
    b->cb(0, out, b->ud);
    json_decref(out);
}

static void slot_result(sp_psup_batch_t *b, size_t i, bool sent, const char *reason,
                        const char *message_id)
{
    batch_slot_t *sl = &b->slots[i];
    json_decref(sl->res);
    sl->res = json_pack("{s:s, s:b}", "platform", sl->platform, "sent", sent);
    if (reason && reason[0]) json_object_set_new(sl->res, "reason", json_string(reason));
    if (message_id && message_id[0])
        json_object_set_new(sl->res, "message_id", json_string(message_id));
}

static void slot_done(sp_psup_batch_t *b)
{
    if (--b->pending == 0) batch_answer(b);
}

static const char *reason_of(int err)
{
    switch (err) {
    case SP_EAUTH: return "needs_reauth";
    case SP_EFORBIDDEN: return "forbidden";
    case SP_ERATELIMIT: return "rate_limited";
    case SP_EOPEN: return "platform_unavailable";
    case SP_EUPSTREAM: return "platform_error";
    case SP_EINVAL: return "invalid_message";
    case SP_ETOOBIG: return "too_long";
    case SP_EUTF8: return "invalid_utf8";
    case SP_ETIMEDOUT: return "timeout";
    case SP_ECANCELED: return "canceled";
    default: return "error";
    }
}

static void on_sent(int err, const sp_platform_chat_result_t *r, void *ud)
{
    sp_psup_op_t *op = ud;
    sp_psup_batch_t *b = op->batch;
    if (err != 0)
        slot_result(b, op->slot, false, reason_of(err), NULL);
    else if (r == NULL)
        slot_result(b, op->slot, false, "error", NULL);
    else
        slot_result(b, op->slot, r->sent, r->sent ? NULL : (r->reason[0] ? r->reason : "not_sent"),
                    r->message_id);
    if (op->s)
        sp_ulog(SP_LOG_INFO, "platforms", op->user_id, "chat sent", "platform=%s sent=%d err=%s",
                op->platform, err == 0 && r && r->sent, err ? sp_err_name(err) : "none");
    b->refs++; /* slot_done may answer; the op's share goes with the op */
    sp_psup_op_end(op);
    slot_done(b);
    sp_psup_batch_unref(b);
}

/* Sends on a loaded account (referenced by the caller, handed to the op). */
static void send_on(sp_psup_t *s, sp_psup_batch_t *b, size_t i, sp_platform_account_t *a)
{
    const sp_platform_t *p = a->platform;
    if (p == NULL || p->send_chat == NULL) {
        sp_platform_account_unref(a);
        slot_result(b, i, false, "not_supported", NULL);
        slot_done(b);
        return;
    }
    sp_psup_op_t *op = sp_psup_op_new(s, SP_PSUP_OP_CHAT_SEND, b->user_id, 0);
    snprintf(op->platform, sizeof(op->platform), "%s", b->slots[i].platform);
    op->acct = a;
    op->batch = b;
    op->slot = i;
    b->refs++;
    p->send_chat(&s->env, a, b->text, b->reply_to, on_sent, op);
}

static void on_chat_account(int err, sp_platform_account_t *a, void *ud)
{
    sp_psup_op_t *op = ud;
    sp_psup_batch_t *b = op->batch;
    sp_psup_t *s = op->s;
    size_t i = op->slot;
    b->refs++;
    sp_psup_op_end(op);
    if (s == NULL || b->answered) {
        if (a) sp_platform_account_unref(a);
    } else if (err != 0 || a == NULL || a->disconnected) {
        if (a) sp_platform_account_unref(a);
        bool absent = err == SP_ENOTFOUND || err == 0;
        slot_result(b, i, false, absent ? "not_connected" : reason_of(err), NULL);
        if (absent && b->implicit) b->slots[i].include = false;
        slot_done(b);
    } else {
        send_on(s, b, i, a);
    }
    sp_psup_batch_unref(b);
}

static void batch_run(sp_psup_t *s, sp_psup_batch_t *b)
{
    sp_psup_user_t *u = sp_map_gets(s->users, b->user_id);
    b->pending = (int)b->n + 1; /* +1: answered only after every slot was issued */
    for (size_t i = 0; i < b->n; i++) {
        b->slots[i].include = true;
        sp_psup_mon_t *mon = sp_psup_find_mon(u, b->slots[i].platform);
        if (mon && mon->acct && mon->state != SP_PSUP_MON_REAUTH) {
            sp_platform_account_ref(mon->acct);
            send_on(s, b, i, mon->acct);
            continue;
        }
        sp_psup_op_t *op = sp_psup_op_new(s, SP_PSUP_OP_CHAT_ACCOUNT, b->user_id, 0);
        snprintf(op->platform, sizeof(op->platform), "%s", b->slots[i].platform);
        op->batch = b;
        op->slot = i;
        b->refs++;
        s->source(s->source_ud, b->user_id, b->slots[i].platform, on_chat_account, op);
    }
    slot_done(b);
}

static bool batch_add(sp_psup_batch_t *b, const char *platform)
{
    if (!platform || !platform[0] || strlen(platform) >= SP_PMSG_PLATFORM_CAP) return false;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->slots[i].platform, platform) == 0) return true;
    if (b->n >= SP_PLATFORM_MAX) return false;
    snprintf(b->slots[b->n++].platform, SP_PMSG_PLATFORM_CAP, "%s", platform);
    return true;
}

static void on_reply_lookup(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)changes;
    sp_psup_op_t *op = ud;
    sp_psup_batch_t *b = op->batch;
    sp_psup_t *s = op->s;
    b->refs++;
    sp_psup_op_end(op);
    if (s != NULL && !b->answered) {
        const char *p = err == 0 ? sp_json_str(json_array_get(rows, 0), "platform") : NULL;
        if (err != 0) {
            b->answered = true;
            b->cb(err, NULL, b->ud);
        } else if (p == NULL || !batch_add(b, p)) {
            b->answered = true;
            b->cb(SP_ENOTFOUND, NULL, b->ud);
        } else {
            batch_run(s, b);
        }
    }
    sp_psup_batch_unref(b);
}

void sp_psup_send_chat(sp_psup_t *s, const char *user_id, const char *text,
                       const char *const *platforms, size_t n, const char *reply_to,
                       sp_psup_chat_cb cb, void *ud)
{
    if (!user_id || !user_id[0] || strlen(user_id) >= SP_PSUP_USER_CAP || !text || !text[0] ||
        (reply_to && (!reply_to[0] || strlen(reply_to) >= SP_PMSG_ID_CAP))) {
        cb(SP_EINVAL, NULL, ud);
        return;
    }
    sp_psup_batch_t *b = sp_calloc(1, sizeof(*b));
    b->refs = 1;
    b->cb = cb;
    b->ud = ud;
    b->text = sp_strdup(text);
    b->reply_to = reply_to ? sp_strdup(reply_to) : NULL;
    snprintf(b->user_id, sizeof(b->user_id), "%s", user_id);
    sp_psup_user_t *u = sp_map_gets(s->users, user_id);
    if (reply_to) {
        const char *p = sp_psup_seen_chat_platform(u, reply_to);
        if (p[0]) {
            batch_add(b, p);
            batch_run(s, b);
        } else if (s->store) {
            sp_psup_op_t *op = sp_psup_op_new(s, SP_PSUP_OP_REPLY_LOOKUP, user_id, 0);
            op->batch = b;
            b->refs++;
            sp_store_query(s->store,
                           "SELECT platform FROM events WHERE user_id = $1 AND type = "
                           "'chat_message' AND platform_event_id = $2 LIMIT 1",
                           json_pack("[s, s]", user_id, reply_to), on_reply_lookup, op);
        } else {
            b->answered = true;
            cb(SP_ENOTFOUND, NULL, ud);
        }
    } else if (n > 0) {
        for (size_t i = 0; i < n; i++)
            if (!batch_add(b, platforms[i])) {
                b->answered = true;
                cb(SP_EINVAL, NULL, ud);
                break;
            }
        if (!b->answered) batch_run(s, b);
    } else {
        /* every platform of the running stream, else every connected one */
        for (size_t i = 0; u && i < u->n_mons; i++)
            if (u->mons[i].acct) batch_add(b, u->mons[i].platform);
        if (b->n == 0) {
            const sp_platform_t *const *all = sp_platform_all();
            for (size_t i = 0; all && all[i]; i++) batch_add(b, all[i]->name);
            b->implicit = true;
        }
        batch_run(s, b);
    }
    sp_psup_batch_unref(b);
}
