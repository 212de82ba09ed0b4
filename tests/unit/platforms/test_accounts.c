/*
 * sp_accounts: connected accounts against a real SQLite store (temp DATA_DIR), real sealing,
 * and the fake Twitch (tests/fakes/twitch.mjs, spawned from C) for the token endpoint and
 * revoke.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store_common.h"
#include "fake_twitch.h"
#include "auth/sp_seal.h"
#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"
#include "net/sp_curlm.h"
#include "platforms/sp_accounts.h"
#include "platforms/sp_platform.h"
#include "platforms/sp_platform_int.h"

#define USER_A "11111111-1111-4111-8111-111111111111"
#define USER_B "22222222-2222-4222-8222-222222222222"
#define TW_USER FAKE_TW_USER

/* ---- fake Twitch control (fake_twitch.h), parsed ------------------------------------------ */

static json_t *control(fake_tw_t *f, const char *name, const char *args)
{
    char *out = NULL;
    long st = args ? fake_tw_call(f, name, args, &out) : fake_tw_get(f, name, &out);
    cr_assert_eq(st, 200, "control %s: %ld", name, st);
    json_t *j = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    cr_assert(j, "control %s: not JSON", name);
    return j;
}

static long fake_counter(fake_tw_t *f, const char *name)
{
    json_t *c = control(f, "counters", NULL);
    long n = (long)json_integer_value(json_object_get(c, name));
    json_decref(c);
    return n;
}

/* ---- fixture -------------------------------------------------------------------------------- */

typedef struct {
    int n;
    char user[64], platform[32];
    sp_platform_status_t st;
    char error[256];
} status_log_t;

static tenv_t E;
static fake_tw_t TW;
static sp_curlm_t *HTTP;
static sp_platform_env_t PENV;
static sp_accounts_t *ACC;
static status_log_t STATUS;

static void on_status(void *ud, const char *user_id, const char *platform,
                      sp_platform_status_t st, const char *error)
{
    status_log_t *s = ud;
    s->n++;
    snprintf(s->user, sizeof(s->user), "%s", user_id);
    snprintf(s->platform, sizeof(s->platform), "%s", platform);
    s->st = st;
    snprintf(s->error, sizeof(s->error), "%s", error ? error : "");
}

static void add_user(const char *id, const char *email)
{
    tres_t r = tq(&E, "INSERT INTO users (id, email, password_hash, created_at, updated_at) "
                      "VALUES ($1, $2, 'x', 0, 0)",
                  json_pack("[s, s]", id, email));
    cr_assert_eq(r.err, 0);
    tres_free(&r);
}

static void setup_with(bool pg)
{
    tenv_setup(&E, pg); /* pg: skipped unless SP_TEST_PG_URL is set */
    char err[256];
    cr_assert_eq(tenv_open(&E, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sp_seal_init(&E.cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(fake_tw_start(&TW), 0, "the fake Twitch (node tests/fakes/twitch.mjs) starts");
    E.cfg.twitch_client_id = FAKE_TW_CLIENT_ID;
    E.cfg.twitch_client_secret = FAKE_TW_CLIENT_SECRET;
    E.cfg.twitch_auth_url = TW.auth;
    E.cfg.twitch_api_url = TW.api;
    HTTP = sp_curlm_new(&E.loop);
    cr_assert(HTTP);
    PENV = (sp_platform_env_t){ .loop = &E.loop, .cfg = &E.cfg, .http = HTTP };
    memset(&STATUS, 0, sizeof(STATUS));
    ACC = sp_accounts_new(&PENV, E.s, on_status, &STATUS);
    cr_assert(ACC);
    add_user(USER_A, "a@example.com");
    add_user(USER_B, "b@example.com");
}

static void teardown(void)
{
    sp_platform_cancel_all();
    sp_accounts_free(ACC);
    ACC = NULL;
    sp_curlm_free(HTTP);
    HTTP = NULL;
    tenv_teardown(&E);
    cr_expect_eq(sp_platform_calls_pending(), 0, "a platform call never ended");
    sp_seal_shutdown();
    fake_tw_stop(&TW);
}

static void setup_sqlite(void)
{
    setup_with(false);
}

static void setup_pg(void)
{
    setup_with(true);
}

TestSuite(accounts, .init = setup_sqlite, .fini = teardown, .timeout = 60);
TestSuite(accounts_pg, .init = setup_pg, .fini = teardown, .timeout = 60);

/* ---- synchronous wrappers ------------------------------------------------------------------- */

typedef struct {
    int done, err;
    sp_platform_account_t *a;
    json_t *list;
    char tok[SP_OAUTH_MAX_TOKEN];
} res_t;

static void on_done(int err, void *ud)
{
    res_t *r = ud;
    r->done++;
    r->err = err;
}

static void on_get(int err, sp_platform_account_t *a, void *ud)
{
    res_t *r = ud;
    r->done++;
    r->err = err;
    r->a = a;
}

static void on_list(int err, json_t *list, void *ud)
{
    res_t *r = ud;
    r->done++;
    r->err = err;
    r->list = json_incref(list);
}

static void on_tok(int err, const char *tok, void *ud)
{
    res_t *r = ud;
    r->done++;
    r->err = err;
    snprintf(r->tok, sizeof(r->tok), "%s", tok ? tok : "");
}

/* A grant minted by the fake for its default user (ttl seconds), as the connect flow has it. */
typedef struct {
    sp_oauth_token_t tok;
    sp_platform_identity_t who;
} grant_t;

static void grant_mint(grant_t *g, long ttl)
{
    char args[256];
    snprintf(args, sizeof(args),
             "[{\"userId\":\"" TW_USER "\",\"scopes\":[\"user:read:chat\",\"user:write:chat\"],"
             "\"ttl\":%ld}]", ttl);
    json_t *j = control(&TW, "issueToken", args);
    json_t *res = json_object_get(j, "result");
    memset(g, 0, sizeof(*g));
    g->tok.access_token = sp_strdup(sp_json_str(res, "access_token"));
    g->tok.refresh_token = sp_strdup(sp_json_str(res, "refresh_token"));
    g->tok.expires_in_s = ttl;
    snprintf(g->tok.scopes, sizeof(g->tok.scopes), "user:read:chat user:write:chat");
    json_decref(j);
    snprintf(g->who.id, sizeof(g->who.id), TW_USER);
    snprintf(g->who.login, sizeof(g->who.login), "twitchdev");
    snprintf(g->who.display_name, sizeof(g->who.display_name), "TwitchDev");
}

static void connect_sync(const char *user, grant_t *g)
{
    res_t r = { 0 };
    sp_accounts_connect(ACC, user, sp_platform_find("twitch"), &g->tok, &g->who, on_done, &r);
    cr_assert_eq(r.done, 0, "never synchronous");
    twait(&E, &r.done);
    cr_assert_eq(r.err, 0, "connect: %s", sp_err_name(r.err));
}

static sp_platform_account_t *get_sync(const char *user, int want_err)
{
    res_t r = { 0 };
    sp_accounts_get(ACC, user, "twitch", on_get, &r);
    cr_assert_eq(r.done, 0, "never synchronous");
    twait(&E, &r.done);
    cr_assert_eq(r.err, want_err, "get: %s", sp_err_name(r.err));
    return r.a;
}

static json_t *list_sync(const char *user)
{
    res_t r = { 0 };
    sp_accounts_list(ACC, user, on_list, &r);
    cr_assert_eq(r.done, 0, "never synchronous");
    twait(&E, &r.done);
    cr_assert_eq(r.err, 0);
    return r.list;
}

static void token_sync(sp_platform_account_t *a, const char *failed, res_t *r)
{
    memset(r, 0, sizeof(*r));
    cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), failed, on_tok, r), 0);
    twait(&E, &r->done);
}

static char *unseal_col(const char *user, const char *sealed)
{
    sp_buf_t b;
    sp_buf_init(&b, 8192);
    cr_assert_eq(sp_unseal(user, "oauth:twitch", sealed, &b), 0);
    char *s = sp_strndup(b.p, b.len);
    sp_buf_cleanup(&b);
    return s;
}

/* The account row's columns, read through the store. */
static json_t *account_row(const char *user)
{
    tres_t r = tq(&E, "SELECT * FROM streaming_account WHERE user_id = $1 AND platform = 'twitch'",
                  json_pack("[s]", user));
    cr_assert_eq(r.err, 0);
    json_t *row = json_incref(json_array_get(r.rows, 0));
    tres_free(&r);
    return row;
}

static void reload(void)
{
    sp_accounts_free(ACC);
    ACC = sp_accounts_new(&PENV, E.s, on_status, &STATUS);
    cr_assert(ACC);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    sp_buf_t b;
    sp_buf_init(&b, 0);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cr_assert_eq(sp_buf_append(&b, chunk, n), 0);
    fclose(f);
    bool found = b.len && memmem(b.p, b.len, needle, strlen(needle)) != NULL;
    sp_buf_cleanup(&b);
    return found;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void t_connect_stores_sealed_tokens_and_one_destination(void)
{
    grant_t g;
    grant_mint(&g, 3600);
    int64_t before = sp_wall_ms();
    connect_sync(USER_A, &g);
    cr_assert_eq(STATUS.n, 1);
    cr_assert_eq(STATUS.st, SP_PSTATUS_CONNECTED);

    json_t *row = account_row(USER_A);
    cr_assert(row);
    const char *sa = sp_json_str(row, "access_token"), *sr = sp_json_str(row, "refresh_token");
    cr_assert(sa && sr);
    cr_assert(strstr(sa, g.tok.access_token) == NULL && strstr(sr, g.tok.refresh_token) == NULL);
    char *a = unseal_col(USER_A, sa), *rt = unseal_col(USER_A, sr);
    cr_assert_str_eq(a, g.tok.access_token);
    cr_assert_str_eq(rt, g.tok.refresh_token);
    sp_free(a);
    sp_free(rt);
    /* sealed for this user only */
    sp_buf_t b;
    sp_buf_init(&b, 8192);
    cr_assert_eq(sp_unseal(USER_B, "oauth:twitch", sa, &b), SP_ECRYPTO);
    sp_buf_cleanup(&b);
    int64_t exp = json_integer_value(json_object_get(row, "access_token_expires_at"));
    cr_assert(exp >= before + 3600 * 1000 && exp <= sp_wall_ms() + 3600 * 1000, "%ld", (long)exp);
    json_t *extra = json_loads(sp_json_str(row, "extra_data"), 0, NULL);
    cr_assert(extra);
    cr_assert_str_eq(sp_json_str(extra, "id"), TW_USER);
    cr_assert_str_eq(sp_json_str(extra, "login"), "twitchdev");
    cr_assert_str_eq(sp_json_str(extra, "display_name"), "TwitchDev");
    cr_assert_str_eq(sp_json_str(extra, "status"), "ok");
    cr_assert_eq(json_array_size(json_object_get(extra, "scopes")), 2);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(extra, "scopes"), 1)),
                     "user:write:chat");
    json_decref(extra);
    json_decref(row);

    tres_t d = tq(&E, "SELECT * FROM destinations WHERE user_id = $1", json_pack("[s]", USER_A));
    cr_assert_eq(d.err, 0);
    cr_assert_eq(json_array_size(d.rows), 1);
    json_t *dr = json_array_get(d.rows, 0);
    cr_assert_str_eq(sp_json_str(dr, "platform"), "twitch");
    cr_assert_str_eq(sp_json_str(dr, "name"), "Twitch (twitchdev)");
    cr_assert_str_eq(sp_json_str(dr, "url"), "platform:twitch");
    cr_assert(json_is_null(json_object_get(dr, "stream_key_sealed")));
    cr_assert_eq(json_integer_value(json_object_get(dr, "enabled")), 1);
    char dest_id[64];
    snprintf(dest_id, sizeof(dest_id), "%s", sp_json_str(dr, "id"));
    tres_free(&d);

    /* a reconnect replaces the grant and keeps the one destination (same id) */
    grant_t g2;
    grant_mint(&g2, 3600);
    connect_sync(USER_A, &g2);
    d = tq(&E, "SELECT * FROM destinations WHERE user_id = $1", json_pack("[s]", USER_A));
    cr_assert_eq(json_array_size(d.rows), 1);
    cr_assert_str_eq(sp_json_str(json_array_get(d.rows, 0), "id"), dest_id);
    tres_free(&d);
    row = account_row(USER_A);
    a = unseal_col(USER_A, sp_json_str(row, "access_token"));
    cr_assert_str_eq(a, g2.tok.access_token);
    sp_free(a);
    json_decref(row);

    /* the database files never hold a token in clear (SQLite: the db and its WAL; PG: the
     * columns, checked above) */
    if (!E.pg) {
        char path[400];
        const char *sfx[] = { "", "-wal" };
        bool rows_seen = false;
        for (size_t i = 0; i < 2; i++) {
            snprintf(path, sizeof(path), "%s/streampai.db%s", E.dir, sfx[i]);
            grant_t *gs[] = { &g, &g2 };
            for (size_t j = 0; j < 2; j++) {
                cr_assert(!file_contains(path, gs[j]->tok.access_token), "%s: a token", path);
                cr_assert(!file_contains(path, gs[j]->tok.refresh_token), "%s: a token", path);
            }
            /* the check reads the right files: the rows are there, in the db or its WAL */
            rows_seen = rows_seen || file_contains(path, "Twitch (twitchdev)");
        }
        cr_assert(rows_seen);
    }
    sp_oauth_token_clear(&g.tok);
    sp_oauth_token_clear(&g2.tok);
}

static void t_list_shape_and_never_a_token(void)
{
    grant_t g;
    grant_mint(&g, 3600);
    connect_sync(USER_A, &g);
    json_t *list = list_sync(USER_A);
    cr_assert(json_is_array(list));
    size_t nplat = 0;
    while (sp_platform_all()[nplat])
        nplat++;
    cr_assert_eq(json_array_size(list), nplat, "one entry per registered platform");
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "platform"),
                     sp_platform_all()[0]->name, "in registry order");
    json_t *tw = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) {
        if (strcmp(sp_json_str(v, "platform"), "twitch") == 0)
            tw = v;
    }
    cr_assert(tw);
    cr_assert_str_eq(sp_json_str(tw, "display_name"), "Twitch");
    cr_assert(json_is_true(json_object_get(tw, "configured")));
    cr_assert(json_is_true(json_object_get(tw, "connected")));
    cr_assert_str_eq(sp_json_str(tw, "status"), "ok");
    json_t *acct = json_object_get(tw, "account");
    cr_assert_str_eq(sp_json_str(acct, "id"), TW_USER);
    cr_assert_str_eq(sp_json_str(acct, "login"), "twitchdev");
    cr_assert_str_eq(sp_json_str(acct, "display_name"), "TwitchDev");
    cr_assert_eq(json_object_size(acct), 3);
    cr_assert_eq(json_array_size(json_object_get(tw, "scopes")), 2);
    cr_assert(json_integer_value(json_object_get(tw, "expires_at")) > sp_wall_ms());
    cr_assert_eq(json_object_size(tw), 8);

    char *text = json_dumps(list, 0);
    cr_assert(strstr(text, g.tok.access_token) == NULL);
    cr_assert(strstr(text, g.tok.refresh_token) == NULL);
    cr_assert(strstr(text, "token\"") == NULL, "no token field: %s", text);
    free(text);
    json_decref(list);

    /* degraded comes from the supervisor, in memory; another user sees nothing of A's */
    sp_accounts_set_degraded(ACC, USER_A, "twitch", true);
    list = list_sync(USER_A);
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "status"), "degraded");
    json_decref(list);
    sp_accounts_set_degraded(ACC, USER_A, "twitch", false);
    list = list_sync(USER_A);
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "status"), "ok");
    json_decref(list);
    list = list_sync(USER_B);
    json_t *b = json_array_get(list, 0);
    cr_assert(json_is_false(json_object_get(b, "connected")));
    cr_assert(json_is_null(json_object_get(b, "status")));
    cr_assert(json_is_null(json_object_get(b, "account")));
    cr_assert(json_is_null(json_object_get(b, "expires_at")));
    cr_assert_eq(json_array_size(json_object_get(b, "scopes")), 0);
    cr_assert_eq(json_object_size(b), 8);
    json_decref(list);

    /* configured is the platform's own answer (no client secret: not configured) */
    E.cfg.twitch_client_secret = "";
    list = list_sync(USER_A);
    cr_assert(json_is_false(json_object_get(json_array_get(list, 0), "configured")));
    cr_assert(json_is_true(json_object_get(json_array_get(list, 0), "connected")));
    json_decref(list);
    sp_oauth_token_clear(&g.tok);
}

static void t_get_loads_unseals_and_caches(void)
{
    get_sync(USER_A, SP_ENOTFOUND);
    res_t r = { 0 };
    sp_accounts_get(ACC, USER_A, "nosuchplatform", on_get, &r);
    cr_assert_eq(r.done, 0);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_ENOTFOUND);

    grant_t g;
    grant_mint(&g, 3600);
    connect_sync(USER_A, &g);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    cr_assert(a);
    cr_assert_str_eq(a->user_id, USER_A);
    cr_assert_eq(a->platform, sp_platform_find("twitch"));
    cr_assert_str_eq(a->who.id, TW_USER);
    cr_assert_str_eq(a->who.login, "twitchdev");
    cr_assert_str_eq(a->who.display_name, "TwitchDev");
    cr_assert_str_eq(a->scopes, "user:read:chat user:write:chat");
    cr_assert(!a->disconnected);
    cr_assert(a->refs >= 2, "the cache's and ours");
    res_t t;
    token_sync(a, NULL, &t);
    cr_assert_eq(t.err, 0);
    cr_assert_str_eq(t.tok, g.tok.access_token);
    cr_assert(sp_token_expires_at(a->token) > sp_wall_ms() + 3500 * 1000);

    /* cached: the same object, no query */
    sp_store_stats_t s0, s1;
    sp_store_stats(E.s, &s0);
    sp_platform_account_t *b = get_sync(USER_A, 0);
    sp_store_stats(E.s, &s1);
    cr_assert_eq(a, b);
    cr_assert_eq(s1.queries, s0.queries);
    sp_platform_account_unref(b);
    sp_platform_account_unref(a);
    sp_oauth_token_clear(&g.tok);
}

/* What the database holds right now (committed), read on a connection of our own: a callback
 * cannot wait for the store. */
static void db_tokens_now(const char *user, char *access, size_t acap, char *refresh,
                          size_t rcap)
{
    if (E.pg) {
        PGconn *c = PQconnectdb(E.url);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        const char *vals[1] = { user };
        PGresult *r = PQexecParams(c, "SELECT access_token, refresh_token FROM "
                                      "streaming_account WHERE user_id = $1",
                                   1, NULL, vals, NULL, NULL, 0);
        cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
        cr_assert_eq(PQntuples(r), 1);
        snprintf(access, acap, "%s", PQgetvalue(r, 0, 0));
        snprintf(refresh, rcap, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
        PQfinish(c);
        return;
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/streampai.db", E.dir);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT access_token, refresh_token FROM "
                                        "streaming_account WHERE user_id = ?1", -1, &st, NULL),
                 SQLITE_OK);
    sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    snprintf(access, acap, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(refresh, rcap, "%s", (const char *)sqlite3_column_text(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* The first waiter checks what is on disk when it gets the refreshed token. */
typedef struct {
    int done, err;
    char tok[SP_OAUTH_MAX_TOKEN];
    char disk_access[SP_OAUTH_MAX_TOKEN], disk_refresh[SP_OAUTH_MAX_TOKEN];
} disk_check_t;

static void on_tok_check_disk(int err, const char *tok, void *ud)
{
    disk_check_t *c = ud;
    c->done++;
    c->err = err;
    snprintf(c->tok, sizeof(c->tok), "%s", tok ? tok : "");
    char sealed_a[SP_OAUTH_MAX_TOKEN * 2], sealed_r[SP_OAUTH_MAX_TOKEN * 2];
    db_tokens_now(USER_A, sealed_a, sizeof(sealed_a), sealed_r, sizeof(sealed_r));
    char *a = unseal_col(USER_A, sealed_a);
    char *r = unseal_col(USER_A, sealed_r);
    snprintf(c->disk_access, sizeof(c->disk_access), "%s", a);
    snprintf(c->disk_refresh, sizeof(c->disk_refresh), "%s", r);
    sp_free(a);
    sp_free(r);
}

static void t_refresh_rotation_is_persisted_before_waiters_get_the_token(void)
{
    grant_t g;
    grant_mint(&g, 60); /* inside the 5 min refresh-ahead window: the first get refreshes */
    connect_sync(USER_A, &g);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    long refreshes0 = fake_counter(&TW, "grant_refresh_token");
    disk_check_t c[5];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), NULL, on_tok_check_disk, &c[i]), 0);
    cr_assert(sp_token_refreshing(a->token));
    twait(&E, &c[4].done);
    cr_assert_eq(fake_counter(&TW, "grant_refresh_token"), refreshes0 + 1, "one refresh");
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(c[i].done, 1);
        cr_assert_eq(c[i].err, 0);
        cr_assert_str_neq(c[i].tok, g.tok.access_token, "a new access token");
        cr_assert_str_eq(c[i].tok, c[i].disk_access, "persisted before the waiter got it");
        cr_assert_str_neq(c[i].disk_refresh, g.tok.refresh_token, "the rotated refresh token");
    }
    cr_assert(sp_token_expires_at(a->token) > sp_wall_ms() + 3600 * 1000);
    char rotated[SP_OAUTH_MAX_TOKEN];
    snprintf(rotated, sizeof(rotated), "%s", c[0].disk_refresh);
    sp_platform_account_unref(a);

    /* after a reload the persisted (rotated) refresh token is the one that works: the fake
     * refuses the old one */
    reload();
    a = get_sync(USER_A, 0);
    res_t t;
    token_sync(a, c[0].tok, &t); /* a 401 with the current token: refresh once */
    cr_assert_eq(t.err, 0, "%s", sp_err_name(t.err));
    cr_assert_str_neq(t.tok, c[0].tok);
    cr_assert_eq(fake_counter(&TW, "grant_refresh_token"), refreshes0 + 2);
    json_t *row = account_row(USER_A);
    char *r2 = unseal_col(USER_A, sp_json_str(row, "refresh_token"));
    cr_assert_str_neq(r2, rotated);
    sp_free(r2);
    json_decref(row);
    sp_platform_account_unref(a);
    sp_oauth_token_clear(&g.tok);
}

static void t_invalid_grant_marks_needs_reauth_persisted_until_reconnect(void)
{
    grant_t g;
    grant_mint(&g, 3600);
    connect_sync(USER_A, &g);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    json_decref(control(&TW, "failNextRefresh", "[1]"));
    STATUS.n = 0;
    res_t t;
    token_sync(a, g.tok.access_token, &t); /* the provider said 401: refresh -> 400 */
    cr_assert_eq(t.err, SP_EAUTH);
    cr_assert(sp_token_needs_reauth(a->token));
    cr_assert_eq(STATUS.n, 1);
    cr_assert_eq(STATUS.st, SP_PSTATUS_NEEDS_REAUTH);
    cr_assert_str_eq(STATUS.user, USER_A);
    cr_assert_str_eq(STATUS.platform, "twitch");
    cr_assert(strstr(STATUS.error, g.tok.access_token) == NULL);
    json_t *row = account_row(USER_A);
    json_t *extra = json_loads(sp_json_str(row, "extra_data"), 0, NULL);
    cr_assert_str_eq(sp_json_str(extra, "status"), "needs_reauth");
    cr_assert_str_eq(sp_json_str(extra, "login"), "twitchdev", "the rest is kept");
    json_decref(extra);
    json_decref(row);
    json_t *list = list_sync(USER_A);
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "status"), "needs_reauth");
    json_decref(list);
    sp_platform_account_unref(a);

    /* survives a reload: SP_EAUTH at once, no refresh tried */
    reload();
    long refreshes = fake_counter(&TW, "grant_refresh_token");
    a = get_sync(USER_A, 0);
    cr_assert(sp_token_needs_reauth(a->token));
    memset(&t, 0, sizeof(t));
    cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), NULL, on_tok, &t), 0);
    cr_assert_eq(t.done, 1, "answered at once");
    cr_assert_eq(t.err, SP_EAUTH);
    list = list_sync(USER_A);
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "status"), "needs_reauth");
    json_decref(list);

    /* a reconnect clears it, in place for the holder of the cached account */
    grant_t g2;
    grant_mint(&g2, 3600);
    STATUS.n = 0;
    connect_sync(USER_A, &g2);
    cr_assert_eq(STATUS.n, 1);
    cr_assert_eq(STATUS.st, SP_PSTATUS_CONNECTED);
    cr_assert(!sp_token_needs_reauth(a->token));
    token_sync(a, NULL, &t);
    cr_assert_eq(t.err, 0);
    cr_assert_str_eq(t.tok, g2.tok.access_token);
    list = list_sync(USER_A);
    cr_assert_str_eq(sp_json_str(json_array_get(list, 0), "status"), "ok");
    json_decref(list);
    cr_assert_eq(fake_counter(&TW, "grant_refresh_token"), refreshes);
    sp_platform_account_unref(a);
    reload();
    a = get_sync(USER_A, 0);
    cr_assert(!sp_token_needs_reauth(a->token));
    token_sync(a, NULL, &t);
    cr_assert_eq(t.err, 0);
    sp_platform_account_unref(a);
    sp_oauth_token_clear(&g.tok);
    sp_oauth_token_clear(&g2.tok);
}

static void t_disconnect_revokes_and_removes_row_and_destination(void)
{
    res_t r = { 0 };
    sp_accounts_disconnect(ACC, USER_A, "twitch", on_done, &r);
    cr_assert_eq(r.done, 0);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_ENOTFOUND, "not connected");

    grant_t g;
    grant_mint(&g, 3600);
    connect_sync(USER_A, &g);
    grant_t gb;
    grant_mint(&gb, 3600);
    connect_sync(USER_B, &gb);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    STATUS.n = 0;
    memset(&r, 0, sizeof(r));
    sp_accounts_disconnect(ACC, USER_A, "twitch", on_done, &r);
    cr_assert_eq(r.done, 0);
    twait(&E, &r.done);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(fake_counter(&TW, "revoked"), 1, "the provider saw the revoke");
    json_t *calls = control(&TW, "calls", NULL);
    bool seen = false;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        const char *body = sp_json_str(c, "body");
        if (strcmp(sp_json_str(c, "path"), "/oauth2/revoke") == 0 && body &&
            strstr(body, g.tok.access_token))
            seen = true;
    }
    json_decref(calls);
    cr_assert(seen, "the access token was revoked");
    cr_assert_eq(STATUS.n, 1);
    cr_assert_eq(STATUS.st, SP_PSTATUS_STOPPED);
    cr_assert(a->disconnected, "the holder sees it");
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM streaming_account WHERE user_id = '" USER_A
                            "'"), 0);
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM destinations WHERE user_id = '" USER_A "'"),
                 0);
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM streaming_account"), 1, "B's is kept");
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM destinations"), 1);
    get_sync(USER_A, SP_ENOTFOUND);
    json_t *list = list_sync(USER_A);
    cr_assert(json_is_false(json_object_get(json_array_get(list, 0), "connected")));
    json_decref(list);
    sp_platform_account_unref(a);

    memset(&r, 0, sizeof(r));
    sp_accounts_disconnect(ACC, USER_A, "twitch", on_done, &r);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_ENOTFOUND);

    /* a failing revoke does not block the disconnect */
    json_decref(control(&TW, "injectFault",
                                "[{\"kind\":\"5xx\",\"pathIncludes\":\"/oauth2/revoke\"}]"));
    memset(&r, 0, sizeof(r));
    sp_accounts_disconnect(ACC, USER_B, "twitch", on_done, &r);
    twait(&E, &r.done);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM streaming_account"), 0);
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM destinations"), 0);
    sp_oauth_token_clear(&g.tok);
    sp_oauth_token_clear(&gb.tok);
}

static void t_twenty_concurrent_gets_share_one_load(void)
{
    grant_t g;
    grant_mint(&g, 3600);
    connect_sync(USER_A, &g);
    reload();
    sp_store_stats_t s0, s1;
    sp_store_stats(E.s, &s0);
    res_t r[20];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 20; i++)
        sp_accounts_get(ACC, USER_A, "twitch", on_get, &r[i]);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(r[i].done, 0, "never synchronous");
    for (int i = 0; i < 20; i++)
        twait(&E, &r[i].done);
    sp_store_stats(E.s, &s1);
    cr_assert_eq(s1.queries - s0.queries, 1, "one load for 20 gets");
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(r[i].err, 0);
        cr_assert_eq(r[i].a, r[0].a, "one cached object");
    }
    cr_assert_eq(r[0].a->refs, 21);
    for (int i = 0; i < 20; i++)
        sp_platform_account_unref(r[i].a);
    sp_oauth_token_clear(&g.tok);
}

static void t_free_cancels_pending_work(void)
{
    grant_t g;
    grant_mint(&g, 60);
    connect_sync(USER_A, &g);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    json_decref(control(&TW, "setDelay", "[300]"));
    res_t t = { 0 };
    cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), NULL, on_tok, &t), 0);
    cr_assert(sp_token_refreshing(a->token));
    res_t r1 = { 0 }, r2 = { 0 }, r3 = { 0 }, r4 = { 0 }, r5 = { 0 };
    sp_accounts_get(ACC, USER_B, "twitch", on_get, &r1);
    sp_accounts_get(ACC, USER_A, "twitch", on_get, &r2); /* cached: deferred answer */
    sp_accounts_list(ACC, USER_A, on_list, &r3);
    grant_t g2;
    grant_mint(&g2, 3600);
    sp_accounts_connect(ACC, USER_B, sp_platform_find("twitch"), &g2.tok, &g2.who, on_done,
                        &r4);
    sp_accounts_disconnect(ACC, USER_A, "twitch", on_done, &r5);
    sp_accounts_free(ACC);
    ACC = NULL;
    res_t *all[] = { &t, &r1, &r2, &r3, &r4, &r5 };
    for (size_t i = 0; i < SP_ARRAY_LEN(all); i++) {
        cr_assert_eq(all[i]->done, 1, "answered (%zu)", i);
        cr_assert_eq(all[i]->err, SP_ECANCELED, "canceled (%zu): %s", i,
                     sp_err_name(all[i]->err));
    }
    cr_assert_null(r1.a);
    cr_assert_null(r2.a);
    cr_assert_null(r3.list);
    /* the account outlives its accounts object while referenced; later gets fail cleanly */
    res_t t2 = { 0 };
    cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), NULL, on_tok, &t2), 0);
    cr_assert_eq(t2.done, 1);
    cr_assert_eq(t2.err, SP_EAUTH);
    /* let the store and HTTP answers come back to their canceled ops */
    uint64_t until = sp_mono_ms() + 1500;
    while (sp_mono_ms() < until && sp_curlm_pending(HTTP) > 0)
        uv_run(&E.loop, UV_RUN_ONCE);
    cr_assert_eq(sp_curlm_pending(HTTP), 0);
    sp_platform_account_unref(a);
    cr_assert_eq(r4.done, 1, "no second answer");
    sp_oauth_token_clear(&g.tok);
    sp_oauth_token_clear(&g2.tok);
}

static void t_bad_arguments_answer_later_with_einval(void)
{
    res_t r = { 0 };
    sp_accounts_get(ACC, "", "twitch", on_get, &r);
    cr_assert_eq(r.done, 0);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_EINVAL);
    grant_t g;
    grant_mint(&g, 3600);
    g.who.id[0] = '\0';
    memset(&r, 0, sizeof(r));
    sp_accounts_connect(ACC, USER_A, sp_platform_find("twitch"), &g.tok, &g.who, on_done, &r);
    cr_assert_eq(r.done, 0);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_EINVAL);
    cr_assert_eq(tcount(&E, "SELECT COUNT(*) FROM streaming_account"), 0);
    char longuser[100];
    memset(longuser, 'u', sizeof(longuser) - 1);
    longuser[sizeof(longuser) - 1] = '\0';
    memset(&r, 0, sizeof(r));
    sp_accounts_list(ACC, longuser, on_list, &r);
    twait(&E, &r.done);
    cr_assert_eq(r.err, SP_EINVAL);
    sp_oauth_token_clear(&g.tok);
}

static void t_reconnect_during_a_refresh_wins(void)
{
    grant_t g;
    grant_mint(&g, 60); /* the first get refreshes */
    connect_sync(USER_A, &g);
    sp_platform_account_t *a = get_sync(USER_A, 0);
    json_decref(control(&TW, "setDelay", "[1500]"));
    long refreshes0 = fake_counter(&TW, "grant_refresh_token");
    res_t t = { 0 };
    cr_assert_eq(sp_token_get(a->token, sp_wall_ms(), NULL, on_tok, &t), 0);
    cr_assert(sp_token_refreshing(a->token));
    grant_t g2;
    grant_mint(&g2, 3600); /* minted before the delay matters: control calls are not delayed */
    connect_sync(USER_A, &g2);
    cr_assert_eq(t.done, 0, "the refresh is still in flight");
    twait(&E, &t.done);
    cr_assert_eq(fake_counter(&TW, "grant_refresh_token"), refreshes0 + 1);
    cr_assert_eq(t.err, 0);
    cr_assert_str_eq(t.tok, g2.tok.access_token, "the reconnect's grant, not the refreshed one");
    json_t *row = account_row(USER_A);
    char *ra = unseal_col(USER_A, sp_json_str(row, "access_token"));
    char *rr = unseal_col(USER_A, sp_json_str(row, "refresh_token"));
    cr_assert_str_eq(ra, g2.tok.access_token, "the late refresh did not overwrite the row");
    cr_assert_str_eq(rr, g2.tok.refresh_token);
    sp_free(ra);
    sp_free(rr);
    json_decref(row);
    json_decref(control(&TW, "setDelay", "[0]"));
    sp_platform_account_unref(a);
    sp_oauth_token_clear(&g.tok);
    sp_oauth_token_clear(&g2.tok);
}

/* Every test on SQLite (always) and on PostgreSQL (suite accounts_pg, when SP_TEST_PG_URL
 * names a server, as the store_pg suite does). */
#define BOTH(name)                                                                             \
    Test(accounts, name) { t_##name(); }                                                       \
    Test(accounts_pg, name) { t_##name(); }
BOTH(connect_stores_sealed_tokens_and_one_destination)
BOTH(list_shape_and_never_a_token)
BOTH(get_loads_unseals_and_caches)
BOTH(refresh_rotation_is_persisted_before_waiters_get_the_token)
BOTH(invalid_grant_marks_needs_reauth_persisted_until_reconnect)
BOTH(disconnect_revokes_and_removes_row_and_destination)
BOTH(twenty_concurrent_gets_share_one_load)
BOTH(free_cancels_pending_work)
BOTH(reconnect_during_a_refresh_wins)
BOTH(bad_arguments_answer_later_with_einval)
