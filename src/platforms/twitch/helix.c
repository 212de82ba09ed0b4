/* helix: Twitch Helix request bodies and answers, pure. See helix.h. */
#include "platforms/twitch/helix.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"
#include "core/sp_time.h"

int sp_helix_status(int s)
{
    if (s >= 200 && s <= 299)
        return 0;
    if (s == 401)
        return SP_EAUTH;
    if (s == 403)
        return SP_EFORBIDDEN;
    if (s == 404)
        return SP_ENOTFOUND;
    if (s == 429)
        return SP_ERATELIMIT;
    if (s >= 500 && s <= 599)
        return SP_EUPSTREAM;
    return SP_EINVAL;
}

/* A header value that is a whole non-negative decimal integer (spaces around allowed). */
static bool header_int(const char *v, int64_t *out)
{
    if (!v)
        return false;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v < '0' || *v > '9')
        return false;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || *end || x < 0)
        return false;
    *out = x;
    return true;
}

int64_t sp_helix_wait_ms(int http_status, const char *remaining, const char *reset,
                         const char *retry_after, int64_t now_ms)
{
    int64_t rem = 1, rst = 0, ra = 0;
    bool has_rem = header_int(remaining, &rem);
    bool has_rst = header_int(reset, &rst) && rst < 32503680000LL; /* before year 3000 */
    bool has_ra = header_int(retry_after, &ra) && ra <= SP_HELIX_MAX_WAIT_MS / 1000;
    if (http_status != 429 && !(has_rem && rem == 0))
        return 0;
    int64_t wait = 1000;
    if (has_rst) {
        wait = rst * 1000 - now_ms;
        if (wait < 0)
            wait = 0;
    } else if (has_ra) {
        wait = ra * 1000;
    }
    if (http_status == 429 && wait == 0)
        wait = 1000; /* refused now: never retry at once */
    return wait > SP_HELIX_MAX_WAIT_MS ? SP_HELIX_MAX_WAIT_MS : wait;
}

/* The first element of "data" of a 2xx answer; *root owns it. */
static int first_data(int status, const char *body, size_t len, json_t **root, json_t **first)
{
    *root = NULL;
    *first = NULL;
    int st = sp_helix_status(status);
    if (st)
        return st;
    if (!body || len == 0 || len > SP_HELIX_MAX_BODY)
        return len > SP_HELIX_MAX_BODY ? SP_ETOOBIG : SP_EPROTO;
    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *data = json_object_get(*root, "data");
    if (!json_is_array(data))
        return SP_EPROTO;
    if (json_array_size(data) == 0)
        return SP_ENOTFOUND;
    *first = json_array_get(data, 0);
    return json_is_object(*first) ? 0 : SP_EPROTO;
}

static bool digits_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

int sp_helix_parse_user(int status, const char *body, size_t len, sp_helix_user_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root, *u;
    int rc = first_data(status, body, len, &root, &u);
    if (rc)
        goto done;
    rc = SP_EPROTO;
    if (!sp_json_strcpy(u, "id", out->id, sizeof(out->id), SP_JSON_REQUIRED, NULL) ||
        !digits_id(out->id) ||
        !sp_json_strcpy(u, "login", out->login, sizeof(out->login), SP_JSON_REQUIRED, NULL) ||
        !sp_id_ok(out->login, strlen(out->login)) ||
        !sp_json_strcpy(u, "display_name", out->display_name, sizeof(out->display_name), 0,
                        NULL) ||
        !sp_json_strcpy(u, "email", out->email, sizeof(out->email), 0, NULL))
        goto done;
    if (!out->display_name[0])
        memcpy(out->display_name, out->login, sizeof(out->login));
    rc = 0;
done:
    if (rc)
        memset(out, 0, sizeof(*out));
    json_decref(root);
    return rc;
}

int sp_helix_parse_stream(int status, const char *body, size_t len, sp_helix_stream_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root, *s;
    int rc = first_data(status, body, len, &root, &s);
    if (rc == SP_ENOTFOUND) {
        rc = 0; /* {"data":[]}: offline */
        goto done;
    }
    if (rc)
        goto done;
    rc = SP_EPROTO;
    char type[16];
    if (!sp_json_strcpy(s, "type", type, sizeof(type), 0, NULL) ||
        !sp_json_strcpy(s, "title", out->title, sizeof(out->title), 0, NULL) ||
        !sp_json_strcpy(s, "game_id", out->game_id, sizeof(out->game_id), 0, NULL) ||
        !sp_json_strcpy(s, "game_name", out->game_name, sizeof(out->game_name), 0, NULL))
        goto done;
    json_t *vc = json_object_get(s, "viewer_count");
    if (!json_is_integer(vc))
        goto done;
    json_int_t v = json_integer_value(vc);
    out->viewer_count = v < 0 ? 0 : (v > SP_HELIX_MAX_VIEWERS ? SP_HELIX_MAX_VIEWERS : v);
    const char *sa = sp_json_str(s, "started_at");
    if (sa && sp_time_parse_rfc3339(sa, strlen(sa), &out->started_at_ms) != 0)
        out->started_at_ms = 0;
    out->live = strcmp(type, "live") == 0;
    if (!out->live)
        out->viewer_count = 0;
    rc = 0;
done:
    if (rc)
        memset(out, 0, sizeof(*out));
    json_decref(root);
    return rc;
}

int sp_helix_parse_stream_key(int status, const char *body, size_t len, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    json_t *root, *k;
    int rc = first_data(status, body, len, &root, &k);
    if (rc == 0) {
        bool present = false;
        if (!sp_json_strcpy(k, "stream_key", out, cap, SP_JSON_REQUIRED, &present) ||
            !present || strpbrk(out, " /?#\r\n"))
            rc = SP_EPROTO;
    }
    if (rc && cap)
        out[0] = '\0';
    json_decref(root);
    return rc;
}

int sp_helix_parse_chat_sent(int status, const char *body, size_t len, sp_helix_chat_sent_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root, *m;
    int rc = first_data(status, body, len, &root, &m);
    if (rc)
        goto done;
    rc = SP_EPROTO;
    json_t *sent = json_object_get(m, "is_sent");
    if (!json_is_boolean(sent) ||
        !sp_json_strcpy(m, "message_id", out->message_id, sizeof(out->message_id), 0, NULL))
        goto done;
    out->is_sent = json_is_true(sent);
    json_t *drop = json_object_get(m, "drop_reason");
    if (json_is_object(drop) &&
        (!sp_json_strcpy(drop, "code", out->drop_code, sizeof(out->drop_code), 0, NULL) ||
         !sp_json_strcpy(drop, "message", out->drop_message, sizeof(out->drop_message), 0, NULL)))
        goto done;
    if (!out->is_sent && !out->drop_code[0])
        memcpy(out->drop_code, "not_sent", sizeof("not_sent"));
    rc = 0;
done:
    if (rc)
        memset(out, 0, sizeof(*out));
    json_decref(root);
    return rc;
}

/* Code points of valid UTF-8, or -1. */
static long utf8_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        int len = *p < 0x80          ? 1
                  : (*p >> 5) == 6   ? 2
                  : (*p >> 4) == 14  ? 3
                  : (*p >> 3) == 30  ? 4
                                     : 0;
        if (len == 0)
            return -1;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return -1;
        p += len;
        n++;
    }
    return n;
}

static int dump_into(json_t *o, sp_buf_t *out)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return SP_EUTF8; /* jansson refuses invalid UTF-8 */
    int rc = sp_buf_append_str(out, txt);
    free(txt);
    return rc;
}

int sp_helix_chat_body(const char *broadcaster_id, const char *sender_id, const char *message,
                       const char *reply_to, sp_buf_t *out)
{
    if (!broadcaster_id || !digits_id(broadcaster_id) || !sender_id || !digits_id(sender_id) ||
        !message || !*message || (reply_to && !sp_id_ok(reply_to, strlen(reply_to))))
        return SP_EINVAL;
    long n = utf8_chars(message);
    if (n < 0)
        return SP_EUTF8;
    if (n > SP_HELIX_MAX_CHAT)
        return SP_ETOOBIG;
    json_t *o = json_pack("{s:s,s:s,s:s}", "broadcaster_id", broadcaster_id, "sender_id",
                          sender_id, "message", message);
    if (!o)
        return SP_EUTF8;
    if (reply_to)
        json_object_set_new(o, "reply_parent_message_id", json_string(reply_to));
    return dump_into(o, out);
}

int sp_helix_channel_body(const char *title, const char *game_id, sp_buf_t *out)
{
    if ((!title && !game_id) || (title && !*title))
        return SP_EINVAL;
    if (game_id && *game_id && !digits_id(game_id))
        return SP_EINVAL;
    json_t *o = json_object();
    if (title) {
        long n = utf8_chars(title);
        if (n < 0) {
            json_decref(o);
            return SP_EUTF8;
        }
        if (n > SP_HELIX_MAX_TITLE) {
            json_decref(o);
            return SP_ETOOBIG;
        }
        json_t *t = json_string(title); /* NULL for invalid UTF-8 (overlong, surrogates) */
        if (!t) {
            json_decref(o);
            return SP_EUTF8;
        }
        json_object_set_new(o, "title", t);
    }
    if (game_id)
        json_object_set_new(o, "game_id", json_string(game_id));
    return dump_into(o, out);
}
