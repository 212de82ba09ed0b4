/* platforms/twitch/webhook: signature, timestamp window, challenge, notification, revocation.
 * Signatures are computed here with OpenSSL (a second implementation of the same HMAC). */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_time.h"
#include "platforms/twitch/webhook.h"

#define SECRET "s3cRe7-webhook-secret"
#define MSG_ID "e76c6bd4-55c9-4987-8304-da1588d8988b"
#define TS "2019-11-16T10:11:12.634234626Z"

static const char CHALLENGE_BODY[] =
    "{\"challenge\":\"pogchamp-kappa-360noscope-vohiyo\",\"subscription\":{\"id\":"
    "\"f1c2a387-161a-49f9-a165-0f21d7a4e1c4\",\"status\":"
    "\"webhook_callback_verification_pending\",\"type\":\"channel.follow\",\"version\":\"2\","
    "\"cost\":1,\"condition\":{\"broadcaster_user_id\":\"12826\",\"moderator_user_id\":"
    "\"12826\"},\"transport\":{\"method\":\"webhook\",\"callback\":"
    "\"https://example.com/webhooks/callback\"},"
    "\"created_at\":\"2019-11-16T10:11:12.634234626Z\"}}";

static const char NOTIF_BODY[] =
    "{\"subscription\":{\"id\":\"f1c2a387-161a-49f9-a165-0f21d7a4e1c4\",\"status\":\"enabled\","
    "\"type\":\"channel.follow\",\"version\":\"2\",\"cost\":1,\"condition\":"
    "{\"broadcaster_user_id\":\"12826\"},\"transport\":{\"method\":\"webhook\",\"callback\":"
    "\"https://example.com/webhooks/callback\"},\"created_at\":\"2019-11-16T10:11:12.634234626Z\"},"
    "\"event\":{\"user_id\":\"1337\",\"user_login\":\"awesome_user\",\"user_name\":"
    "\"Awesome_User\",\"broadcaster_user_id\":\"12826\",\"broadcaster_user_login\":\"twitch\","
    "\"broadcaster_user_name\":\"Twitch\",\"followed_at\":\"2020-07-15T18:16:11.17106713Z\"}}";

static const char REVOKE_BODY[] =
    "{\"subscription\":{\"id\":\"f1c2a387-161a-49f9-a165-0f21d7a4e1c4\",\"status\":"
    "\"authorization_revoked\",\"type\":\"channel.follow\",\"version\":\"2\",\"cost\":1,"
    "\"condition\":{\"broadcaster_user_id\":\"12826\"},\"transport\":{\"method\":\"webhook\","
    "\"callback\":\"https://example.com/webhooks/callback\"},"
    "\"created_at\":\"2019-11-16T10:11:12.634234626Z\"}}";

static int64_t ts_ms(const char *ts)
{
    int64_t ms = 0;
    cr_assert_eq(sp_time_parse_rfc3339(ts, strlen(ts), &ms), 0);
    return ms;
}

/* "sha256=" + hex HMAC-SHA256(secret, id + ts + body), with OpenSSL. */
static void sign(char out[72], const char *secret, const char *id, const char *ts,
                 const char *body, size_t blen)
{
    size_t il = strlen(id), tl = strlen(ts);
    unsigned char *m = malloc(il + tl + blen + 1);
    memcpy(m, id, il);
    memcpy(m + il, ts, tl);
    memcpy(m + il + tl, body, blen);
    unsigned char mac[32];
    unsigned int ml = 0;
    cr_assert_not_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), m, il + tl + blen, mac,
                            &ml));
    cr_assert_eq(ml, 32);
    free(m);
    int p = snprintf(out, 72, "sha256=");
    for (int i = 0; i < 32; i++)
        p += snprintf(out + p, 72 - (size_t)p, "%02x", mac[i]);
}

static int verify(const char *type, const char *ts, const char *sig, const char *body,
                  int64_t now, sp_twitch_wh_result_t *out)
{
    sp_twitch_wh_request_t req = { .message_id = MSG_ID, .timestamp = ts, .signature = sig,
                                   .type = type, .body = (const uint8_t *)body,
                                   .body_len = body ? strlen(body) : 0 };
    return sp_twitch_wh_verify(&req, SECRET, now, out);
}

static int signed_verify(const char *type, const char *ts, const char *body, int64_t now,
                         sp_twitch_wh_result_t *out)
{
    char sig[72];
    sign(sig, SECRET, MSG_ID, ts, body, strlen(body));
    return verify(type, ts, sig, body, now, out);
}

Test(twitch_webhook, challenge_answered)
{
    sp_twitch_wh_result_t r;
    cr_assert_eq(signed_verify("webhook_callback_verification", TS, CHALLENGE_BODY,
                               ts_ms(TS) + 1000, &r), 200);
    cr_assert_eq(r.kind, SP_TWITCH_WH_VERIFICATION);
    cr_assert_str_eq(r.challenge, "pogchamp-kappa-360noscope-vohiyo");
    cr_assert_str_eq(r.sub_type, "channel.follow");
    cr_assert_str_eq(r.message_id, MSG_ID);
    cr_assert_eq(r.timestamp_ms, ts_ms(TS));
    cr_assert_null(r.event);
    sp_twitch_wh_result_free(&r);
}

Test(twitch_webhook, notification_and_revocation)
{
    sp_twitch_wh_result_t r;
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, ts_ms(TS), &r), 204);
    cr_assert_eq(r.kind, SP_TWITCH_WH_NOTIFICATION);
    cr_assert_str_eq(r.sub_type, "channel.follow");
    cr_assert_str_eq(r.sub_status, "enabled");
    cr_assert_str_eq(json_string_value(json_object_get(r.event, "user_login")), "awesome_user");
    sp_twitch_wh_result_free(&r);
    cr_assert_null(r.event);

    cr_assert_eq(signed_verify("revocation", TS, REVOKE_BODY, ts_ms(TS), &r), 204);
    cr_assert_eq(r.kind, SP_TWITCH_WH_REVOCATION);
    cr_assert_str_eq(r.sub_status, "authorization_revoked");
    cr_assert_str_eq(r.reason, "");
    sp_twitch_wh_result_free(&r);
}

Test(twitch_webhook, bad_signatures_refused)
{
    sp_twitch_wh_result_t r;
    int64_t now = ts_ms(TS);
    char sig[72];
    sign(sig, SECRET, MSG_ID, TS, NOTIF_BODY, strlen(NOTIF_BODY));

    char bad[80];
    snprintf(bad, sizeof bad, "%s", sig);
    bad[20] = bad[20] == 'a' ? 'b' : 'a'; /* one digit off */
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    cr_assert_str_eq(r.reason, "bad_signature");
    cr_assert_eq(r.kind, SP_TWITCH_WH_REFUSED);
    cr_assert_null(r.event);

    snprintf(bad, sizeof bad, "%.*s", 70, sig); /* truncated */
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    snprintf(bad, sizeof bad, "%sa", sig); /* one more */
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    snprintf(bad, sizeof bad, "sha1=%s", sig + 7); /* wrong prefix */
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    snprintf(bad, sizeof bad, "%s", sig + 7); /* no prefix */
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    snprintf(bad, sizeof bad, "SHA256=%s", sig + 7);
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    cr_assert_eq(verify("notification", TS, "", NOTIF_BODY, now, &r), 403);

    /* signed with another secret, or over another body, id or timestamp */
    sign(bad, "another-secret-value", MSG_ID, TS, NOTIF_BODY, strlen(NOTIF_BODY));
    cr_assert_eq(verify("notification", TS, bad, NOTIF_BODY, now, &r), 403);
    cr_assert_eq(verify("notification", TS, sig, REVOKE_BODY, now, &r), 403);
    cr_assert_eq(verify("notification", "2019-11-16T10:11:13.634234626Z", sig, NOTIF_BODY, now,
                        &r), 403);
    sp_twitch_wh_request_t req = { .message_id = "other-id", .timestamp = TS, .signature = sig,
                                   .type = "notification", .body = (const uint8_t *)NOTIF_BODY,
                                   .body_len = strlen(NOTIF_BODY) };
    cr_assert_eq(sp_twitch_wh_verify(&req, SECRET, now, &r), 403);
    /* truncated body */
    req.message_id = MSG_ID;
    req.body_len -= 1;
    cr_assert_eq(sp_twitch_wh_verify(&req, SECRET, now, &r), 403);
    cr_assert_str_eq(r.reason, "bad_signature");
}

Test(twitch_webhook, timestamp_window)
{
    sp_twitch_wh_result_t r;
    int64_t t = ts_ms(TS);
    /* replayed: more than 10 minutes old */
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, t + SP_TWITCH_WH_MAX_AGE_MS + 1,
                               &r), 403);
    cr_assert_str_eq(r.reason, "stale");
    cr_assert_null(r.event);
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, t + SP_TWITCH_WH_MAX_AGE_MS, &r),
                 204);
    sp_twitch_wh_result_free(&r);
    /* from the future */
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY,
                               t - SP_TWITCH_WH_MAX_FUTURE_MS - 1, &r), 403);
    cr_assert_str_eq(r.reason, "future");
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, t - 60000, &r), 204);
    sp_twitch_wh_result_free(&r);
    /* other RFC 3339 spellings */
    cr_assert_eq(signed_verify("notification", "2019-11-16T10:11:12Z", NOTIF_BODY, t, &r), 204);
    sp_twitch_wh_result_free(&r);
    cr_assert_eq(signed_verify("notification", "2019-11-16T12:11:12.5+02:00", NOTIF_BODY, t, &r),
                 204);
    cr_assert_eq(r.timestamp_ms, ts_ms("2019-11-16T10:11:12.5Z"));
    sp_twitch_wh_result_free(&r);
    /* unparseable or absurd, even when correctly signed */
    const char *bad[] = { "yesterday", "2019-11-16 10:11:12Z", "2019-13-16T10:11:12Z",
                          "2019-11-16T10:11:12", "0000-01-01T00:00:00Z", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(signed_verify("notification", bad[i], NOTIF_BODY, t, &r), 403, "%s", bad[i]);
        cr_assert_str_eq(r.reason, "bad_timestamp", "%s", bad[i]);
    }
    /* a negative or absurd clock is refused, not computed with */
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, -1, &r), 403);
    cr_assert_eq(signed_verify("notification", TS, NOTIF_BODY, INT64_MAX, &r), 403);
}

Test(twitch_webhook, malformed_requests)
{
    sp_twitch_wh_result_t r;
    int64_t t = ts_ms(TS);
    char sig[72];
    sign(sig, SECRET, MSG_ID, TS, NOTIF_BODY, strlen(NOTIF_BODY));
    sp_twitch_wh_request_t req = { .message_id = MSG_ID, .timestamp = TS, .signature = sig,
                                   .type = "notification", .body = (const uint8_t *)NOTIF_BODY,
                                   .body_len = strlen(NOTIF_BODY) };
    cr_assert_eq(sp_twitch_wh_verify(&req, "", t, &r), 403);
    cr_assert_str_eq(r.reason, "no_secret");
    cr_assert_eq(sp_twitch_wh_verify(&req, NULL, t, &r), 403);
    sp_twitch_wh_request_t q = req;
    q.signature = NULL;
    cr_assert_eq(sp_twitch_wh_verify(&q, SECRET, t, &r), 400);
    cr_assert_str_eq(r.reason, "missing_header");
    q = req;
    q.message_id = NULL;
    cr_assert_eq(sp_twitch_wh_verify(&q, SECRET, t, &r), 400);
    q = req;
    q.timestamp = NULL;
    cr_assert_eq(sp_twitch_wh_verify(&q, SECRET, t, &r), 400);
    q = req;
    q.type = NULL;
    cr_assert_eq(sp_twitch_wh_verify(&q, SECRET, t, &r), 400);
    q = req;
    q.body_len = SP_TWITCH_WH_MAX_BODY + 1;
    cr_assert_eq(sp_twitch_wh_verify(&q, SECRET, t, &r), 413);
    cr_assert_str_eq(r.reason, "body_too_big");

    cr_assert_eq(signed_verify("channel.update", TS, NOTIF_BODY, t, &r), 400);
    cr_assert_str_eq(r.reason, "unknown_type");
    const char *bodies[] = { "not json", "[]", "{}", "{\"subscription\":{\"type\":7}}",
                             "{\"subscription\":{\"type\":\"channel.follow\"}}" };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        cr_assert_eq(signed_verify("notification", TS, bodies[i], t, &r), 400, "%s", bodies[i]);
        cr_assert_str_eq(r.reason, "bad_body");
        cr_assert_null(r.event);
    }
    /* a signed empty body */
    cr_assert_eq(signed_verify("notification", TS, "", t, &r), 400);
    cr_assert_eq(signed_verify("webhook_callback_verification", TS,
                               "{\"subscription\":{\"type\":\"channel.follow\"}}", t, &r), 400);
    cr_assert_str_eq(r.reason, "bad_challenge");
    cr_assert_eq(signed_verify("webhook_callback_verification", TS,
                               "{\"challenge\":\"a\\nb\",\"subscription\":{\"type\":\"x\"}}", t,
                               &r), 400);
    cr_assert_str_eq(r.reason, "bad_challenge");
}
