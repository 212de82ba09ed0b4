/* sp_cf_webhook: payload parsing and cf-webhook-auth check. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/sp_cf_webhook.h"
#include "core/sp_time.h"
#include "core/sp_err.h"

static int parse(const char *s, sp_cf_webhook_event_t *e)
{
    return sp_cf_webhook_parse((const uint8_t *)s, strlen(s), e);
}

Test(cf_webhook, disconnected_payload_from_docs)
{
    const char *p =
        "{\"name\":\"Live Webhook Test\",\"text\":\"Notification type: Stream Live Input\\nInput "
        "ID: eb222fcca08eeb1ae84c981ebe8aeeb6\\nEvent type: live_input.disconnected\",\"data\":{"
        "\"notification_name\":\"Stream Live "
        "Input\",\"input_id\":\"eb222fcca08eeb1ae84c981ebe8aeeb6\","
        "\"event_type\":\"live_input.disconnected\",\"updated_at\":\"2022-01-13T11:43:41."
        "855717910Z\"},"
        "\"ts\":1642074233}";
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse(p, &e), 0);
    cr_assert_eq(e.type, SP_CF_EVT_DISCONNECTED);
    cr_assert_str_eq(e.input_id, "eb222fcca08eeb1ae84c981ebe8aeeb6");
    cr_assert_eq(e.ts, 1642074233);
    cr_assert_eq(e.updated_ms, 1642074221855LL);
    cr_assert_str_eq(sp_cf_event_type_name(e.type), "disconnected");
}

Test(cf_webhook, connected_and_errored)
{
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.connected\"}}",
                       &e), 0);
    cr_assert_eq(e.type, SP_CF_EVT_CONNECTED);
    cr_assert_eq(e.updated_ms, 0);
    cr_assert_eq(
        parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.errored\","
              "\"updated_at\":\"2024-07-09T18:07:51.077371662Z\",\"live_input_errored\":{"
              "\"error\":{\"code\":\"ERR_GOP_OUT_OF_RANGE\",\"message\":\"Input GOP size\"},"
              "\"video_codec\":\"\",\"audio_codec\":\"\"}},\"ts\":1720548474}",
              &e),
        0);
    cr_assert_eq(e.type, SP_CF_EVT_ERRORED);
    cr_assert_str_eq(e.error_code, "ERR_GOP_OUT_OF_RANGE");
    cr_assert_str_eq(e.error_message, "Input GOP size");
    cr_assert_eq(e.updated_ms, 1720548471077LL);
}

Test(cf_webhook, test_message_and_unknown_events_are_other)
{
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse("{\"text\":\"Hello World! This is a test message\"}", &e), 0);
    cr_assert_eq(e.type, SP_CF_EVT_OTHER);
    cr_assert_eq(
        parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.future\"}}", &e), 0);
    cr_assert_eq(e.type, SP_CF_EVT_OTHER);
}

Test(cf_webhook, malformed_refused)
{
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse("", &e), SP_EPROTO);
    cr_assert_eq(parse("{", &e), SP_EPROTO);
    cr_assert_eq(parse("[]", &e), SP_EPROTO);
    cr_assert_eq(parse("{\"data\":5}", &e), SP_EPROTO);
    cr_assert_eq(parse("{\"data\":{\"event_type\":\"live_input.connected\"}}", &e), SP_EPROTO,
                 "no input id");
    cr_assert_eq(
        parse("{\"data\":{\"input_id\":\"a/../b\",\"event_type\":\"live_input.connected\"}}", &e),
        SP_EPROTO);
    cr_assert_eq(parse("{\"data\":{\"input_id\":7,\"event_type\":\"live_input.connected\"}}", &e),
                 SP_EPROTO);
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"a\",\"input_id\":\"b\","
                       "\"event_type\":\"live_input.connected\"}}", &e), SP_EPROTO,
                 "duplicate keys refused");
    char id[100];
    memset(id, 'a', 80);
    id[80] = '\0';
    char buf[300];
    snprintf(buf, sizeof buf,
             "{\"data\":{\"input_id\":\"%s\",\"event_type\":\"live_input.connected\"}}", id);
    cr_assert_eq(parse(buf, &e), SP_EPROTO, "over-long id");
    size_t big = SP_CF_WEBHOOK_MAX_BODY + 1;
    uint8_t *b = malloc(big);
    memset(b, ' ', big);
    cr_assert_eq(sp_cf_webhook_parse(b, big, &e), SP_ETOOBIG);
    free(b);
}

Test(cf_webhook, time_parse)
{
    int64_t ms;
    cr_assert_eq(sp_time_parse_rfc3339("1970-01-01T00:00:00Z", 20, &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(sp_time_parse_rfc3339("2025-11-24T18:12:11.658Z", 24, &ms), 0);
    cr_assert_eq(ms, 1764007931658LL);
    const char *o = "2025-11-24T20:12:11.658+02:00";
    cr_assert_eq(sp_time_parse_rfc3339(o, strlen(o), &ms), 0);
    cr_assert_eq(ms, 1764007931658LL);
    cr_assert_eq(sp_time_parse_rfc3339("2025-13-24T18:12:11Z", 20, &ms), SP_EINVAL);
    cr_assert_eq(sp_time_parse_rfc3339("2025-11-24 18:12:11Z", 20, &ms), SP_EINVAL);
    cr_assert_eq(sp_time_parse_rfc3339("2025-11-24T18:12:11.Z", 21, &ms), SP_EINVAL);
    cr_assert_eq(sp_time_parse_rfc3339("2025-11-24T18:12:11Zx", 21, &ms), SP_EINVAL);
}

Test(cf_webhook, auth)
{
    const char *secret = "s3cr3t-webhook-value";
    cr_assert(sp_cf_webhook_auth_ok(secret, strlen(secret), secret));
    cr_assert(sp_cf_webhook_auth_ok(" s3cr3t-webhook-value\t", 22, secret), "OWS ignored");
    cr_assert(!sp_cf_webhook_auth_ok("s3cr3t-webhook-valuE", 20, secret));
    cr_assert(!sp_cf_webhook_auth_ok("s3cr3t-webhook-valu", 19, secret));
    cr_assert(!sp_cf_webhook_auth_ok("s3cr3t-webhook-value1", 21, secret));
    cr_assert(!sp_cf_webhook_auth_ok("", 0, secret));
    cr_assert(!sp_cf_webhook_auth_ok(NULL, 0, secret));
    cr_assert(!sp_cf_webhook_auth_ok("", 0, ""), "no secret configured: refuse");
    cr_assert(!sp_cf_webhook_auth_ok("x", 1, NULL));
    /* embedded NUL in the header does not truncate the comparison */
    cr_assert(!sp_cf_webhook_auth_ok("s3cr3t-webhook-value\0x", 22, secret));
}

Test(cf_webhook, auth_compares_every_byte)
{
    /* Behaviour, not a grep of the source: a header that differs from the secret in any single
     * byte, at any position, is refused, as are headers that only share a prefix. (Timing is
     * not measured here; the comparison is sodium_memcmp, see src/media/sp_cf_webhook.c.) */
    const char *secret = "s3cr3t-webhook-value-0123456789";
    size_t n = strlen(secret);
    char h[64];
    for (size_t i = 0; i < n; i++) {
        memcpy(h, secret, n + 1);
        h[i] ^= 0x01;
        cr_assert(!sp_cf_webhook_auth_ok(h, n, secret), "byte %zu differs: refused", i);
    }
    for (size_t len = 0; len < n; len++)
        cr_assert(!sp_cf_webhook_auth_ok(secret, len, secret), "a %zu-byte prefix: refused", len);
    cr_assert(sp_cf_webhook_auth_ok(secret, n, secret));
}

Test(cf_webhook, classify_duplicates_and_stale)
{
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.connected\","
                       "\"updated_at\":\"2025-11-24T18:12:11.658Z\"},\"ts\":1764007932}", &e), 0);
    int64_t t = 1764007931658LL;
    cr_assert_eq(sp_cf_webhook_event_ms(&e), t);
    cr_assert_eq(sp_cf_webhook_classify(&e, 0, SP_CF_EVT_OTHER), SP_CF_WEBHOOK_APPLY);
    cr_assert_eq(sp_cf_webhook_classify(&e, t - 1, SP_CF_EVT_DISCONNECTED), SP_CF_WEBHOOK_APPLY);
    cr_assert_eq(sp_cf_webhook_classify(&e, t, SP_CF_EVT_CONNECTED), SP_CF_WEBHOOK_DUPLICATE);
    cr_assert_eq(sp_cf_webhook_classify(&e, t + 1, SP_CF_EVT_DISCONNECTED), SP_CF_WEBHOOK_STALE,
                 "an old connected must not undo a newer disconnected");
    /* no updated_at: ts in seconds is used */
    cr_assert_eq(
        parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.disconnected\"},"
              "\"ts\":1764007900}",
              &e),
        0);
    cr_assert_eq(sp_cf_webhook_event_ms(&e), 1764007900000LL);
    cr_assert_eq(sp_cf_webhook_classify(&e, t, SP_CF_EVT_CONNECTED), SP_CF_WEBHOOK_STALE);
    /* no time at all */
    cr_assert_eq(
        parse("{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.disconnected\"}}", &e),
        0);
    cr_assert_eq(sp_cf_webhook_classify(&e, t, SP_CF_EVT_DISCONNECTED), SP_CF_WEBHOOK_DUPLICATE);
    cr_assert_eq(sp_cf_webhook_classify(&e, t, SP_CF_EVT_CONNECTED), SP_CF_WEBHOOK_APPLY);
}

Test(cf_webhook, receive_order)
{
    const char *secret = "whsec-abcdef-123";
    const char *ok = "{\"data\":{\"input_id\":\"abc\",\"event_type\":\"live_input.connected\"}}";
    sp_cf_webhook_event_t e;
    cr_assert_eq(sp_cf_webhook_receive(secret, strlen(secret), (const uint8_t *)ok, strlen(ok),
                                       secret, &e), 200);
    cr_assert_eq(e.type, SP_CF_EVT_CONNECTED);
    /* wrong secret: 401 even with a malformed or huge body (auth first, nothing parsed) */
    cr_assert_eq(sp_cf_webhook_receive("nope", 4, (const uint8_t *)"{", 1, secret, &e), 401);
    cr_assert_eq(e.type, SP_CF_EVT_OTHER);
    cr_assert_eq(sp_cf_webhook_receive(NULL, 0, (const uint8_t *)ok, strlen(ok), secret, &e), 401);
    cr_assert_eq(sp_cf_webhook_receive(secret, strlen(secret), (const uint8_t *)"{", 1, secret, &e),
                 400);
    static uint8_t big[SP_CF_WEBHOOK_MAX_BODY + 10];
    cr_assert_eq(sp_cf_webhook_receive(secret, strlen(secret), big, sizeof big, secret, &e), 413);
    cr_assert_eq(sp_cf_webhook_receive(secret, strlen(secret), (const uint8_t *)ok, strlen(ok), "",
                                       &e), 401, "no secret configured");
}

/* issue 12 finding 4: a signed webhook with ts = INT64_MAX overflowed ts * 1000 downstream */
Test(cf_webhook, out_of_range_ts_is_ignored)
{
    static const char *tss[] = {"9223372036854775807", "9223372036854775", "253402300800",
                                "-9223372036854775808", "-1", "0"};
    char body[512];
    for (size_t i = 0; i < sizeof tss / sizeof tss[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"data\":{\"input_id\":\"abc123\",\"event_type\":"
                 "\"live_input.connected\"},\"ts\":%s}",
                 tss[i]);
        sp_cf_webhook_event_t e;
        cr_assert_eq(sp_cf_webhook_parse((const uint8_t *)body, strlen(body), &e), 0, "%s", body);
        cr_assert_eq(e.ts, 0, "ts %s kept as %lld", tss[i], (long long)e.ts);
        cr_assert_eq(sp_cf_webhook_event_ms(&e), 0);
    }
    /* the largest accepted ts converts without overflow */
    snprintf(body, sizeof body,
             "{\"data\":{\"input_id\":\"abc123\",\"event_type\":\"live_input.connected\"},"
             "\"ts\":%lld}",
             (long long)SP_TIME_MAX_S);
    sp_cf_webhook_event_t e;
    cr_assert_eq(sp_cf_webhook_parse((const uint8_t *)body, strlen(body), &e), 0);
    cr_assert_eq(sp_cf_webhook_event_ms(&e), SP_TIME_MAX_S * 1000);
}

/* the built-in relay's recording webhooks (issue 13, recordings in the event log) */
Test(cf_webhook, recording_events)
{
    sp_cf_webhook_event_t e;
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"abc123\",\"event_type\":"
                       "\"live_input.recording_started\",\"recording\":{\"bytes\":0}}}",
                       &e),
                 0);
    cr_assert_eq(e.type, SP_CF_EVT_REC_STARTED);
    cr_assert_str_eq(e.input_id, "abc123");
    cr_assert_eq(e.rec_bytes, 0);
    cr_assert_eq(e.rec_duration_ms, -1);
    cr_assert_str_eq(sp_cf_event_type_name(e.type), "recording_started");
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"abc123\",\"event_type\":"
                       "\"live_input.recording_ended\",\"recording\":{\"bytes\":12582912,"
                       "\"duration_ms\":300000,\"error\":\"recording stopped: disk full\"}}}",
                       &e),
                 0);
    cr_assert_eq(e.type, SP_CF_EVT_REC_ENDED);
    cr_assert_eq(e.rec_bytes, 12582912);
    cr_assert_eq(e.rec_duration_ms, 300000);
    cr_assert_str_eq(e.rec_error, "recording stopped: disk full");
    /* malformed fields read as absent */
    cr_assert_eq(parse("{\"data\":{\"input_id\":\"abc123\",\"event_type\":"
                       "\"live_input.recording_ended\",\"recording\":{\"bytes\":-5,"
                       "\"duration_ms\":\"x\",\"error\":7}}}",
                       &e),
                 0);
    cr_assert_eq(e.rec_bytes, -1);
    cr_assert_eq(e.rec_duration_ms, -1);
    cr_assert_str_eq(e.rec_error, "");
}
