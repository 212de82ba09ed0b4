/* sp_cf_webhook: Cloudflare live-input notification parsing and auth (see header). */
#include "media/sp_cf_webhook.h"
#include "core/sp_time.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

bool sp_cf_webhook_auth_ok(const char *header, size_t len, const char *secret)
{
    if (!secret || !*secret)
        return false; /* no secret configured: webhooks refused */
    size_t slen = strlen(secret);
    if (!header)
        len = 0;
    while (len > 0 && blank(header[0])) {
        header++;
        len--;
    }
    while (len > 0 && blank(header[len - 1]))
        len--;
    if (len != slen) {
        /* same work as a real comparison, result ignored: timing does not depend on content */
        volatile int sink = sodium_memcmp(secret, secret, slen);
        (void)sink;
        return false;
    }
    return sodium_memcmp(header, secret, slen) == 0;
}

int sp_cf_webhook_parse(const uint8_t *body, size_t len, sp_cf_webhook_event_t *out)
{
    memset(out, 0, sizeof *out);
    if (len > SP_CF_WEBHOOK_MAX_BODY)
        return SP_ETOOBIG;
    if (!body || len == 0)
        return SP_EPROTO;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = SP_EPROTO;
    if (!json_is_object(root))
        goto out;
    json_t *ts = json_object_get(root, "ts");
    /* ts is Unix seconds: outside [1, SP_TIME_MAX_S] it is ignored like an absent one, so no
     * conversion downstream can overflow (issue 12: ts = INT64_MAX aborted the server) */
    if (json_is_integer(ts) && json_integer_value(ts) > 0 &&
        json_integer_value(ts) <= SP_TIME_MAX_S)
        out->ts = (int64_t)json_integer_value(ts);
    json_t *data = json_object_get(root, "data");
    if (!data || json_is_null(data)) {
        out->type = SP_CF_EVT_OTHER; /* test message {"text": "Hello World! ..."} */
        rc = 0;
        goto out;
    }
    if (!json_is_object(data))
        goto out;
    char et[64];
    bool has_et = false;
    if (!sp_json_strcpy(data, "event_type", et, sizeof et, 0, &has_et))
        goto out;
    if (!has_et) {
        out->type = SP_CF_EVT_OTHER;
        rc = 0;
        goto out;
    }
    if (strcmp(et, "live_input.connected") == 0)
        out->type = SP_CF_EVT_CONNECTED;
    else if (strcmp(et, "live_input.disconnected") == 0)
        out->type = SP_CF_EVT_DISCONNECTED;
    else if (strcmp(et, "live_input.errored") == 0)
        out->type = SP_CF_EVT_ERRORED;
    else if (strcmp(et, "live_input.recording_started") == 0)
        out->type = SP_CF_EVT_REC_STARTED;
    else if (strcmp(et, "live_input.recording_ended") == 0)
        out->type = SP_CF_EVT_REC_ENDED;
    else {
        out->type = SP_CF_EVT_OTHER; /* a future event type: ignored */
        rc = 0;
        goto out;
    }
    bool has_id = false;
    if (!sp_json_strcpy(data, "input_id", out->input_id, sizeof out->input_id, 0, &has_id) ||
        !has_id || !sp_id_ok(out->input_id, strlen(out->input_id)))
        goto out;
    bool has_up = false;
    if (!sp_json_strcpy(data, "updated_at", out->updated_at, sizeof out->updated_at, 0, &has_up))
        goto out;
    if (has_up && sp_time_parse_rfc3339(out->updated_at, strlen(out->updated_at),
                                           &out->updated_ms) != 0)
        out->updated_ms = 0;
    if (out->type == SP_CF_EVT_ERRORED) {
        json_t *e = json_object_get(json_object_get(data, "live_input_errored"), "error");
        if (json_is_object(e)) {
            if (!sp_json_strcpy(e, "code", out->error_code, sizeof out->error_code, 0, NULL))
                out->error_code[0] = '\0';
            if (!sp_json_strcpy(e, "message", out->error_message, sizeof out->error_message, 0,
                                NULL))
                out->error_message[0] = '\0';
        }
    }
    out->rec_bytes = -1;
    out->rec_duration_ms = -1;
    json_t *rec = json_object_get(data, "recording");
    if (json_is_object(rec)) {
        /* a malformed field reads as absent */
        json_t *b = json_object_get(rec, "bytes"), *d = json_object_get(rec, "duration_ms");
        if (json_is_integer(b) && json_integer_value(b) >= 0)
            out->rec_bytes = (int64_t)json_integer_value(b);
        if (json_is_integer(d) && json_integer_value(d) >= 0)
            out->rec_duration_ms = (int64_t)json_integer_value(d);
        if (!sp_json_strcpy(rec, "error", out->rec_error, sizeof out->rec_error, 0, NULL))
            out->rec_error[0] = '\0';
    }
    rc = 0;
out:
    json_decref(root);
    if (rc != 0) {
        sp_cf_event_type_t t = SP_CF_EVT_OTHER;
        memset(out, 0, sizeof *out);
        out->type = t;
    }
    return rc;
}

const char *sp_cf_event_type_name(sp_cf_event_type_t t)
{
    switch (t) {
    case SP_CF_EVT_CONNECTED:
        return "connected";
    case SP_CF_EVT_DISCONNECTED:
        return "disconnected";
    case SP_CF_EVT_ERRORED:
        return "errored";
    case SP_CF_EVT_REC_STARTED:
        return "recording_started";
    case SP_CF_EVT_REC_ENDED:
        return "recording_ended";
    default:
        return "other";
    }
}

int64_t sp_cf_webhook_event_ms(const sp_cf_webhook_event_t *e)
{
    if (e->updated_ms > 0)
        return e->updated_ms;
    int64_t ms = 0;
    if (e->ts > 0 && sp_time_s_to_ms(e->ts, &ms) == 0)
        return ms;
    return 0;
}

sp_cf_webhook_verdict_t sp_cf_webhook_classify(const sp_cf_webhook_event_t *e, int64_t applied_ms,
                                               sp_cf_event_type_t applied_type)
{
    int64_t t = sp_cf_webhook_event_ms(e);
    if (t == 0)
        return e->type == applied_type ? SP_CF_WEBHOOK_DUPLICATE : SP_CF_WEBHOOK_APPLY;
    if (applied_ms == 0 || t > applied_ms)
        return SP_CF_WEBHOOK_APPLY;
    if (t == applied_ms)
        return e->type == applied_type ? SP_CF_WEBHOOK_DUPLICATE : SP_CF_WEBHOOK_APPLY;
    return SP_CF_WEBHOOK_STALE;
}

int sp_cf_webhook_receive(const char *auth_header, size_t auth_len, const uint8_t *body,
                          size_t len, const char *secret, sp_cf_webhook_event_t *out)
{
    memset(out, 0, sizeof *out);
    if (!sp_cf_webhook_auth_ok(auth_header, auth_len, secret))
        return 401;
    int rc = sp_cf_webhook_parse(body, len, out);
    if (rc == SP_ETOOBIG)
        return 413;
    if (rc != 0)
        return 400;
    return 200;
}
