/*
 * sp_cf_parse: the Cloudflare Stream client's pure parsers (declared in sp_cloudflare.h): the
 * API envelope, a live input and an output, in both the object and the schema form. No I/O,
 * no state: unit-tested in tests/unit/media/test_cloudflare.c and fuzzed by fuzz_cf_envelope.
 */
#include "media/sp_cloudflare.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"

static void cf_copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static bool id_ok(const char *s)
{
    return s && sp_id_ok(s, strlen(s));
}

/* Schema-form status strings (docs/internals/media-client.md) mapped onto the object form's states.
 */
static const char *state_from_enum(const char *s)
{
    if (!strcmp(s, "connected") || !strcmp(s, "reconnected") ||
        !strcmp(s, "new_configuration_accepted"))
        return "connected";
    if (!strcmp(s, "reconnecting") || !strcmp(s, "client_disconnect") ||
        !strcmp(s, "ttl_exceeded") || !strcmp(s, "disconnected"))
        return "disconnected";
    if (!strcmp(s, "failed_to_connect") || !strcmp(s, "failed_to_reconnect") ||
        !strcmp(s, "errored"))
        return "errored";
    return s;
}

int sp_cloudflare_parse_input(const json_t *result, sp_cf_input_t *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(result))
        return SP_EPROTO;
    if (!sp_json_strcpy(result, "uid", out->uid, sizeof out->uid, SP_JSON_REQUIRED, NULL) ||
        !id_ok(out->uid))
        return SP_EPROTO;
    json_t *rtmps = json_object_get(result, "rtmps");
    if (json_is_object(rtmps)) {
        if (!sp_json_strcpy(rtmps, "url", out->rtmps_url, sizeof out->rtmps_url, 0, NULL) ||
            !sp_json_strcpy(rtmps, "streamKey", out->stream_key, sizeof out->stream_key, 0, NULL))
            return SP_EPROTO;
    }
    json_t *en = json_object_get(result, "enabled");
    out->enabled = en ? !json_is_false(en) : true; /* missing = true (older API) */
    json_t *health = json_object_get(result, "health");
    out->health = json_is_object(health) ? health : NULL;
    json_t *recording = json_object_get(result, "recording");
    out->recording = json_is_object(recording) ? recording : NULL;
    json_t *st = json_object_get(result, "status");
    if (!st || json_is_null(st)) {
        cf_copy(out->state, sizeof out->state, "disconnected");
        out->ever_connected = false;
    } else if (json_is_string(st)) {
        char tmp[64];
        if (json_string_length(st) >= sizeof tmp)
            return SP_EPROTO;
        cf_copy(tmp, sizeof tmp, json_string_value(st));
        cf_copy(out->state, sizeof out->state, state_from_enum(tmp));
        out->ever_connected = true;
    } else if (json_is_object(st)) {
        json_t *cur = json_object_get(st, "current");
        char tmp[64];
        if (!json_is_object(cur) ||
            !sp_json_strcpy(cur, "state", tmp, sizeof tmp, SP_JSON_REQUIRED, NULL))
            return SP_EPROTO;
        cf_copy(out->state, sizeof out->state, state_from_enum(tmp));
        if (!sp_json_strcpy(cur, "statusEnteredAt", out->status_entered_at,
                      sizeof out->status_entered_at, 0, NULL))
            out->status_entered_at[0] = '\0';
        out->ever_connected = true;
    } else {
        return SP_EPROTO;
    }
    return 0;
}

int sp_cloudflare_parse_output(const json_t *obj, sp_cf_output_t *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return SP_EPROTO;
    if (!sp_json_strcpy(obj, "uid", out->uid, sizeof out->uid, SP_JSON_REQUIRED, NULL) ||
        !id_ok(out->uid))
        return SP_EPROTO;
    if (!sp_json_strcpy(obj, "url", out->url, sizeof out->url, 0, NULL) ||
        !sp_json_strcpy(obj, "streamKey", out->stream_key, sizeof out->stream_key, 0, NULL))
        return SP_EPROTO;
    json_t *en = json_object_get(obj, "enabled");
    out->enabled = en ? !json_is_false(en) : true;
    /* optional health (built-in relay): a malformed field is ignored, never an error */
    out->bytes = -1;
    out->reconnects = -1;
    json_t *st = json_object_get(obj, "status");
    if (json_is_string(st)) {
        const char *v = json_string_value(st);
        static const char *const known[] = { "idle", "connecting", "forwarding", "error" };
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(v, known[i]) == 0) {
                snprintf(out->status, sizeof out->status, "%s", v);
                out->has_health = true;
            }
    }
    json_t *le = json_object_get(obj, "last_error");
    if (out->has_health && json_is_string(le)) {
        /* truncated to the buffer; control characters replaced (shown in the UI and logs) */
        size_t n = json_string_length(le);
        if (n >= sizeof out->last_error) {
            n = sizeof out->last_error - 1;
            const unsigned char *v = (const unsigned char *)json_string_value(le);
            while (n > 0 && (v[n] & 0xC0) == 0x80) n--; /* cut on a UTF-8 boundary */
        }
        memcpy(out->last_error, json_string_value(le), n);
        out->last_error[n] = '\0';
        for (char *c = out->last_error; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    }
    json_t *b = json_object_get(obj, "bytes");
    if (out->has_health && json_is_integer(b) && json_integer_value(b) >= 0)
        out->bytes = (int64_t)json_integer_value(b);
    json_t *rc = json_object_get(obj, "reconnects");
    if (out->has_health && json_is_integer(rc) && json_integer_value(rc) >= 0)
        out->reconnects = (int64_t)json_integer_value(rc);
    return 0;
}

int sp_cloudflare_parse_envelope(const char *body, size_t len, long status, bool empty_ok,
                                 sp_cf_envelope_t *out)
{
    json_error_t jerr;
    memset(out, 0, sizeof *out);
    bool ok2xx = status >= 200 && status < 300;
    json_t *root = len > 0 ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!root && ok2xx) {
        if (len == 0 && empty_ok)
            return 0;
        cf_copy(out->cf_message, sizeof out->cf_message, "malformed JSON in Cloudflare response");
        return out->err = SP_EPROTO;
    }
    json_t *errs = root ? json_object_get(root, "errors") : NULL;
    if (json_is_array(errs) && json_array_size(errs) > 0) {
        json_t *e0 = json_array_get(errs, 0);
        json_t *jc = json_object_get(e0, "code");
        json_t *jm = json_object_get(e0, "message");
        if (json_is_integer(jc) && json_integer_value(jc) > 0 &&
            json_integer_value(jc) < 100000000)
            out->cf_code = (int)json_integer_value(jc);
        if (json_is_string(jm))
            cf_copy(out->cf_message, sizeof out->cf_message, json_string_value(jm));
    }
    if (ok2xx && json_is_object(root) && json_is_true(json_object_get(root, "success"))) {
        out->root = root;
        out->result = json_object_get(root, "result");
        out->cf_code = 0;
        out->cf_message[0] = '\0';
        return 0;
    }
    if (ok2xx && !json_is_object(root)) {
        json_decref(root);
        cf_copy(out->cf_message, sizeof out->cf_message, "unexpected Cloudflare response");
        return out->err = SP_EPROTO;
    }
    json_decref(root);
    if (status == 404)
        out->err = SP_ENOTFOUND;
    else if (status == 401 || status == 403 || out->cf_code == 6003 || out->cf_code == 10000)
        out->err = SP_EAUTH;
    else
        out->err = SP_EUPSTREAM;
    if (!out->cf_message[0])
        snprintf(out->cf_message, sizeof out->cf_message, "Cloudflare answered HTTP %ld", status);
    return out->err;
}
