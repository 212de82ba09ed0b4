/*
 * libFuzzer target: POST /webhooks/cloudflare below HTTP, WITH valid auth, down into the
 * livestream domain. Each input is the request body; the cf-webhook-auth header is always the
 * right secret (Cloudflare sends the shared secret itself, it signs nothing), so every input
 * passes the receiver check (sp_cf_webhook_receive, as h_webhook does) and every payload it
 * accepts is applied by sp_livestream_webhook against a real SQLite store in which one user
 * owns the live input "fuzzinput0001" (the seeds name it). UBSan aborts on any overflow
 * (issue 12: a signed webhook with ts = INT64_MAX aborted the server).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/sp_config.h"
#include "livestream/sp_livestream.h"
#include "media/sp_cf_webhook.h"
#include "store/sp_store.h"

#define SECRET "fuzz-cf-webhook-secret-0001"
#define INPUT_UID "fuzzinput0001"

static uv_loop_t loop;
static sp_config_t cfg;
static sp_store_t *store;
static sp_livestream_t *live;
static char dir[64];

static const char *fuzz_env(const char *name, void *ud)
{
    (void)ud;
    static const char *const kv[][2] = {
        { "STREAMPAI_ENV", "test" },
        { "CLOUDFLARE_WEBHOOK_SECRET", SECRET },
        { "SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" },
        { "LOG_LEVEL", "error" },
    };
    if (strcmp(name, "DATA_DIR") == 0)
        return dir;
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (strcmp(name, kv[i][0]) == 0)
            return kv[i][1];
    return NULL;
}

static void on_query(int err, json_t *rows, int64_t changes, void *ud)
{
    (void)rows;
    (void)changes;
    if (err)
        abort();
    *(int *)ud = 1;
}

static void sql(const char *q, json_t *params)
{
    int done = 0;
    sp_store_query(store, q, params, on_query, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static void setup(void)
{
    char err[512];
    snprintf(dir, sizeof(dir), "/tmp/sp-fuzz-whcf-XXXXXX");
    if (!mkdtemp(dir) || uv_loop_init(&loop) != 0)
        abort();
    atexit(remove_dir);
    if (sp_config_load(&cfg, fuzz_env, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        abort();
    }
    if (sp_store_open(&loop, &cfg, &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "store: %s\n", err);
        abort();
    }
    sql("INSERT INTO users (id, email, password_hash, display_name, created_at, updated_at) "
        "VALUES ('00000000-0000-4000-8000-00000000f022', 'fuzz@example.com', 'x', 'F', 1, 1)",
        NULL);
    sql("INSERT INTO live_inputs (user_id, provider, input_uid, rtmp_url, stream_key_sealed, "
        "created_at) VALUES ('00000000-0000-4000-8000-00000000f022', 'cloudflare', '" INPUT_UID
        "', 'rtmps://live.example.com/live/', 'not-sealed', 1)",
        NULL);
    sp_livestream_opts_t o = { .loop = &loop, .cfg = &cfg, .store = store };
    if (sp_livestream_new(&o, &live) != 0)
        abort();
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void on_applied(sp_ls_result_t *res, void *ud)
{
    /* a verified payload is applied or answered with a reason, never an internal error */
    if (res->err != 0 && res->code == NULL)
        abort();
    *(int *)ud = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    sp_cf_webhook_event_t ev;
    int status = sp_cf_webhook_receive(SECRET, strlen(SECRET), data, size, SECRET, &ev);
    if (status == 401)
        abort(); /* the right secret is never refused */
    if (status != 200)
        return 0;
    if (ev.type != SP_CF_EVT_OTHER && ev.input_id[0] == '\0')
        abort();
    int64_t t = sp_cf_webhook_event_ms(&ev);
    if (t < 0)
        abort();
    int done = 0;
    sp_livestream_webhook(live, &ev, on_applied, &done);
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    return 0;
}
