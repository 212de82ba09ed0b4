/* webhook: Twitch EventSub webhook verification (see the header for the order of checks). */
#include "platforms/twitch/webhook.h"

#include <sodium.h>
#include <string.h>

#include "core/sp_text.h"
#include "core/sp_time.h"

#define SIG_PREFIX "sha256="
#define SIG_LEN (sizeof SIG_PREFIX - 1 + 2 * crypto_auth_hmacsha256_BYTES)

static int refuse(sp_twitch_wh_result_t *out, int status, const char *why)
{
    json_decref(out->event);
    out->event = NULL;
    out->kind = SP_TWITCH_WH_REFUSED;
    out->http_status = status;
    out->reason = why;
    return status;
}

static int accept_as(sp_twitch_wh_result_t *out, sp_twitch_wh_kind_t kind, int status)
{
    out->kind = kind;
    out->http_status = status;
    out->reason = "";
    return status;
}

/* Constant time in the content: the HMAC is always computed, the compare is sodium_memcmp
 * over the fixed length; only a length mismatch answers early (the length is public). */
static int signature_ok(const sp_twitch_wh_request_t *req, const char *secret)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char want[SIG_LEN + 1];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)req->message_id,
                                  strlen(req->message_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)req->timestamp,
                                  strlen(req->timestamp));
    if (req->body_len > 0)
        crypto_auth_hmacsha256_update(&st, req->body, req->body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(want, SIG_PREFIX, sizeof SIG_PREFIX - 1);
    sodium_bin2hex(want + sizeof SIG_PREFIX - 1, sizeof want - (sizeof SIG_PREFIX - 1), mac,
                   sizeof mac);
    sodium_memzero(&st, sizeof st);
    sodium_memzero(mac, sizeof mac);
    int ok = strlen(req->signature) == SIG_LEN &&
             sodium_memcmp(want, req->signature, SIG_LEN) == 0;
    sodium_memzero(want, sizeof want);
    return ok;
}

static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) return 0;
    return 1;
}

/* subscription.type and .status of the body; false if the shape is wrong. */
static bool read_subscription(json_t *root, sp_twitch_wh_result_t *out)
{
    json_t *sub = json_object_get(root, "subscription");
    bool has_type = false;
    return json_is_object(sub) &&
           sp_json_strcpy(sub, "type", out->sub_type, sizeof out->sub_type, 0, &has_type) &&
           has_type && out->sub_type[0] != '\0' &&
           sp_json_strcpy(sub, "status", out->sub_status, sizeof out->sub_status, 0, NULL);
}

int sp_twitch_wh_verify(const sp_twitch_wh_request_t *req, const char *secret, int64_t now_ms,
                        sp_twitch_wh_result_t *out)
{
    memset(out, 0, sizeof *out);
    if (req->body_len > SP_TWITCH_WH_MAX_BODY) return refuse(out, 413, "body_too_big");
    if (secret == NULL || secret[0] == '\0') return refuse(out, 403, "no_secret");
    if (req->message_id == NULL || req->timestamp == NULL || req->signature == NULL ||
        req->type == NULL || (req->body == NULL && req->body_len > 0))
        return refuse(out, 400, "missing_header");
    if (!signature_ok(req, secret)) return refuse(out, 403, "bad_signature");

    size_t idl = strlen(req->message_id);
    if (idl == 0 || idl >= sizeof out->message_id || !printable(req->message_id))
        return refuse(out, 400, "bad_message_id");
    memcpy(out->message_id, req->message_id, idl + 1);
    int64_t ts;
    if (sp_time_parse_rfc3339(req->timestamp, strlen(req->timestamp), &ts) != 0)
        return refuse(out, 403, "bad_timestamp");
    /* both within a plausible Unix ms range, so the differences cannot overflow */
    if (ts < 0 || ts > INT64_MAX / 4 || now_ms < 0 || now_ms > INT64_MAX / 4)
        return refuse(out, 403, "bad_timestamp");
    out->timestamp_ms = ts;
    if (now_ms - ts > SP_TWITCH_WH_MAX_AGE_MS) return refuse(out, 403, "stale");
    if (ts - now_ms > SP_TWITCH_WH_MAX_FUTURE_MS) return refuse(out, 403, "future");

    sp_twitch_wh_kind_t kind;
    if (strcmp(req->type, "webhook_callback_verification") == 0)
        kind = SP_TWITCH_WH_VERIFICATION;
    else if (strcmp(req->type, "notification") == 0)
        kind = SP_TWITCH_WH_NOTIFICATION;
    else if (strcmp(req->type, "revocation") == 0)
        kind = SP_TWITCH_WH_REVOCATION;
    else
        return refuse(out, 400, "unknown_type");

    if (req->body_len == 0) return refuse(out, 400, "bad_body");
    json_t *root = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES,
                              NULL);
    if (!json_is_object(root) || !read_subscription(root, out)) {
        json_decref(root);
        return refuse(out, 400, "bad_body");
    }
    int rc;
    if (kind == SP_TWITCH_WH_VERIFICATION) {
        bool has = false;
        if (!sp_json_strcpy(root, "challenge", out->challenge, sizeof out->challenge, 0, &has) ||
            !has || out->challenge[0] == '\0' || !printable(out->challenge))
            rc = refuse(out, 400, "bad_challenge");
        else
            rc = accept_as(out, kind, 200);
    } else if (kind == SP_TWITCH_WH_REVOCATION) {
        rc = accept_as(out, kind, 204);
    } else {
        json_t *ev = json_object_get(root, "event");
        if (!json_is_object(ev)) {
            rc = refuse(out, 400, "bad_body");
        } else {
            out->event = json_incref(ev);
            rc = accept_as(out, kind, 204);
        }
    }
    json_decref(root);
    return rc;
}

void sp_twitch_wh_result_free(sp_twitch_wh_result_t *out)
{
    json_decref(out->event);
    out->event = NULL;
}
