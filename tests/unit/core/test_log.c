/* Unit tests: log redaction with canary secrets, and the logfmt writer. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sp_log.h"

#define CANARY "CANARY-s3cr3t-7f9a2b"

static void redacts(const char *in)
{
    char out[1024];
    sp_redact(in, strlen(in), out, sizeof(out));
    cr_assert_null(strstr(out, CANARY), "leaked: in=[%s] out=[%s]", in, out);
    cr_assert_not_null(strstr(out, "[REDACTED]"), "no marker: in=[%s] out=[%s]", in, out);
}

Test(redact, canary_never_survives_any_form)
{
    redacts("password=" CANARY);
    redacts("msg=\"x\" password=\"" CANARY "\" other=1");
    redacts("{\"password\":\"" CANARY "\",\"email\":\"a@b.c\"}");
    redacts("{\"stream_key\": \"" CANARY "\"}");
    redacts("access_token=" CANARY "&refresh_token=" CANARY);
    redacts("url=/socket?token=" CANARY "&x=1");
    redacts("Authorization: Bearer " CANARY);
    redacts("authorization=\"Basic " CANARY "\"");
    redacts("Cookie: sp_session=" CANARY "; sp_csrf=" CANARY);
    redacts("dest=rtmp://live.twitch.tv/app/" CANARY);
    redacts("dest=rtmps://a.rtmps.youtube.com:443/live2/" CANARY " next=1");
    redacts("client_secret=" CANARY);
    redacts("TOKEN_SIGNING_SECRET=" CANARY);
    redacts("cf-webhook-auth: " CANARY);
}

Test(redact, keeps_harmless_fields)
{
    char out[256];
    const char *in = "method=GET path=\"/api/me\" status=200 bytes=12";
    sp_redact(in, strlen(in), out, sizeof(out));
    cr_assert_str_eq(out, in);
}

Test(redact, descriptive_keys_are_not_redacted)
{
    char out[256];
    const char *in =
        "session_name=sp_session keyframe_interval=2.0 token_expires_at=123 key_count=3";
    sp_redact(in, strlen(in), out, sizeof(out));
    cr_assert_str_eq(out, in);
}

Test(redact, registered_secret_values_are_hidden_anywhere)
{
    sp_log_add_secret("registered-" CANARY);
    char out[256];
    const char *in = "something happened value registered-" CANARY " in text";
    sp_redact(in, strlen(in), out, sizeof(out));
    cr_assert_null(strstr(out, CANARY));
}

Test(log, writes_logfmt_with_escaping_and_redaction)
{
    char path[] = "/tmp/sp_log_test_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(sp_log_open(SP_LOG_DEBUG, path), 0);
    sp_log_write(SP_LOG_INFO, "test", "user-1", "hello\nworld", "password=%s n=%d", CANARY, 7);
    sp_debug("test", "dbg", "");
    sp_log_close();
    FILE *f = fopen(path, "r");
    char line[2048] = "";
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_not_null(strstr(line, "level=info module=test user=user-1 msg=\"hello\\nworld\""),
                       "%s", line);
    cr_assert_not_null(strstr(line, "n=7"));
    cr_assert_null(strstr(line, CANARY));
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_assert_not_null(strstr(line, "level=debug"));
    fclose(f);
    unlink(path);
}
