/*
 * sp_presence: sessions per user, manager start on first join, delayed
 * cleanup on last leave (see the header).
 */
#include "livestream/sp_presence.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_map.h"
#include "core/sp_time.h"

typedef struct entry_s {
    sp_presence_t *p;
    char *user_id;
    uint64_t *sessions;
    size_t n_sessions;
    size_t cap_sessions;
    uv_timer_t timer;
    bool timer_init;
    bool cleanup_pending;
    int64_t absent_since; /* wall ms, 0 while present */
} entry_t;

struct sp_presence_s {
    uv_loop_t *loop;
    int64_t cleanup_timeout_ms;
    sp_presence_hooks_t hooks;
    void *ud;
    sp_map_t *users; /* user_id -> entry_t* */
    size_t total_sessions;
    size_t closing;  /* timers being closed */
    bool freeing;
};

static void maybe_free_self(sp_presence_t *p)
{
    if (p->freeing && p->closing == 0) {
        sp_map_free(p->users);
        sp_free(p);
    }
}

static void entry_free_mem(entry_t *e)
{
    sp_free(e->sessions);
    sp_free(e->user_id);
    sp_free(e);
}

static void on_timer_closed(uv_handle_t *h)
{
    entry_t *e = h->data;
    sp_presence_t *p = e->p;
    entry_free_mem(e);
    p->closing--;
    maybe_free_self(p);
}

static void entry_release(entry_t *e)
{
    if (e->timer_init) {
        e->p->closing++;
        uv_close((uv_handle_t *)&e->timer, on_timer_closed);
    } else {
        entry_free_mem(e);
    }
}

/* Removes the entry from the map and releases it. */
static void entry_drop(sp_presence_t *p, entry_t *e)
{
    sp_map_dels(p->users, e->user_id, NULL);
    entry_release(e);
}

sp_presence_t *sp_presence_new(uv_loop_t *loop, int64_t cleanup_timeout_ms,
                               const sp_presence_hooks_t *hooks, void *ud)
{
    sp_presence_t *p = sp_calloc(1, sizeof(*p));
    p->loop = loop;
    p->cleanup_timeout_ms = cleanup_timeout_ms < 0 ? 0 : cleanup_timeout_ms;
    p->hooks = *hooks;
    p->ud = ud;
    p->users = sp_map_new(NULL);
    return p;
}

void sp_presence_free(sp_presence_t *p)
{
    if (p == NULL) return;
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (sp_map_next(p->users, &it, &k, &kl, &v)) entry_release(v);
    /* entries are released; the map only holds dangling pointers now */
    sp_map_free(p->users);
    p->users = sp_map_new(NULL);
    p->freeing = true;
    maybe_free_self(p);
}

static void on_cleanup(uv_timer_t *t);

static void schedule_cleanup(sp_presence_t *p, entry_t *e)
{
    if (!e->timer_init) {
        uv_timer_init(p->loop, &e->timer);
        e->timer.data = e;
        e->timer_init = true;
    }
    e->cleanup_pending = true;
    uv_timer_start(&e->timer, on_cleanup, (uint64_t)p->cleanup_timeout_ms, 0);
}

static void cancel_cleanup(entry_t *e)
{
    if (e->timer_init) uv_timer_stop(&e->timer);
    e->cleanup_pending = false;
}

static void on_cleanup(uv_timer_t *t)
{
    entry_t *e = t->data;
    sp_presence_t *p = e->p;
    e->cleanup_pending = false;
    if (e->n_sessions > 0) return;
    if (p->hooks.can_stop && !p->hooks.can_stop(e->user_id, p->ud)) {
        sp_info("presence", "manager kept: stream active", "user=%s", e->user_id);
        return; /* kept until sp_presence_recheck */
    }
    sp_info("presence", "manager stopped after absence", "user=%s", e->user_id);
    if (p->hooks.stop) p->hooks.stop(e->user_id, p->ud);
    entry_drop(p, e);
}

int sp_presence_join(sp_presence_t *p, const char *user_id, uint64_t session_id)
{
    if (user_id == NULL || user_id[0] == '\0') return SP_EINVAL;
    entry_t *e = sp_map_gets(p->users, user_id);
    if (e == NULL) {
        int rc = p->hooks.start ? p->hooks.start(user_id, p->ud) : 0;
        if (rc != 0) {
            sp_warn("presence", "manager refused", "user=%s err=%s", user_id, sp_err_name(rc));
            return rc;
        }
        e = sp_calloc(1, sizeof(*e));
        e->p = p;
        e->user_id = sp_strdup(user_id);
        sp_map_sets(p->users, user_id, e);
        sp_info("presence", "user session started", "user=%s", user_id);
    }
    for (size_t i = 0; i < e->n_sessions; i++)
        if (e->sessions[i] == session_id) return 0;
    if (e->n_sessions == e->cap_sessions) {
        e->cap_sessions = e->cap_sessions ? e->cap_sessions * 2 : 4;
        e->sessions = sp_realloc(e->sessions, e->cap_sessions * sizeof(uint64_t));
    }
    e->sessions[e->n_sessions++] = session_id;
    p->total_sessions++;
    e->absent_since = 0;
    cancel_cleanup(e);
    return 0;
}

void sp_presence_leave(sp_presence_t *p, const char *user_id, uint64_t session_id)
{
    entry_t *e = user_id ? sp_map_gets(p->users, user_id) : NULL;
    if (e == NULL) return;
    for (size_t i = 0; i < e->n_sessions; i++) {
        if (e->sessions[i] != session_id) continue;
        e->sessions[i] = e->sessions[--e->n_sessions];
        p->total_sessions--;
        if (e->n_sessions == 0) {
            e->absent_since = sp_wall_ms();
            schedule_cleanup(p, e);
        }
        return;
    }
}

void sp_presence_adopt(sp_presence_t *p, const char *user_id)
{
    if (user_id == NULL || user_id[0] == '\0') return;
    entry_t *e = sp_map_gets(p->users, user_id);
    if (e != NULL) return;
    e = sp_calloc(1, sizeof(*e));
    e->p = p;
    e->user_id = sp_strdup(user_id);
    e->absent_since = sp_wall_ms();
    sp_map_sets(p->users, user_id, e);
    schedule_cleanup(p, e);
}

void sp_presence_recheck(sp_presence_t *p, const char *user_id)
{
    entry_t *e = user_id ? sp_map_gets(p->users, user_id) : NULL;
    if (e == NULL || e->n_sessions > 0 || e->cleanup_pending) return;
    schedule_cleanup(p, e);
}

size_t sp_presence_sessions(const sp_presence_t *p, const char *user_id)
{
    entry_t *e = user_id ? sp_map_gets(p->users, user_id) : NULL;
    return e ? e->n_sessions : 0;
}

bool sp_presence_managed(const sp_presence_t *p, const char *user_id)
{
    return user_id && sp_map_gets(p->users, user_id) != NULL;
}

bool sp_presence_cleanup_pending(const sp_presence_t *p, const char *user_id)
{
    entry_t *e = user_id ? sp_map_gets(p->users, user_id) : NULL;
    return e ? e->cleanup_pending : false;
}

size_t sp_presence_user_count(const sp_presence_t *p)
{
    return sp_map_count(p->users);
}

size_t sp_presence_session_count(const sp_presence_t *p)
{
    return p->total_sessions;
}

json_t *sp_presence_debug(const sp_presence_t *p)
{
    json_t *arr = json_array();
    size_t it = 0;
    const char *k;
    size_t kl;
    void *v;
    while (sp_map_next(p->users, &it, &k, &kl, &v)) {
        entry_t *e = v;
        json_array_append_new(arr, json_pack("{s:s, s:I, s:b, s:I}", "user_id", e->user_id,
                                             "sessions", (json_int_t)e->n_sessions,
                                             "cleanup_pending", e->cleanup_pending,
                                             "absent_since", (json_int_t)e->absent_since));
    }
    return arr;
}
