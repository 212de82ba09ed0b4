/* sp_redis_msg: Redis bus envelope + REDIS_URL parsing (pure). See sp_redis_msg.h. */
#include "bus/sp_redis_msg.h"

#include <stdlib.h>
#include <string.h>

#include "core/sp_err.h"
#include "core/sp_text.h"
#include "bus/sp_pubsub.h"

/* reads a decimal without leading zero (0 itself allowed), up to max; advances *i */
static int read_dec(const uint8_t *p, size_t len, size_t *i, uint64_t max, uint64_t *out)
{
    size_t s = *i;
    uint64_t v = 0;
    while (*i < len && p[*i] >= '0' && p[*i] <= '9') {
        unsigned d = (unsigned)(p[*i] - '0');
        if (v > (max - d) / 10)
            return SP_EINVAL;
        v = v * 10 + d;
        (*i)++;
    }
    size_t n = *i - s;
    if (n == 0 || (n > 1 && p[s] == '0'))
        return SP_EINVAL;
    *out = v;
    return 0;
}

static int expect_space(const uint8_t *p, size_t len, size_t *i)
{
    if (*i >= len || p[*i] != ' ')
        return SP_EINVAL;
    (*i)++;
    return 0;
}

int sp_redis_msg_parse_tail(const uint8_t *p, size_t len, sp_redis_msg_t *out)
{
    size_t i = 0;
    sp_topic_info_t ti;
    out->seq = 0;
    if (!p || len > SP_REDIS_MSG_MAX)
        return p ? SP_ETOOBIG : SP_EINVAL;
    if (len < SP_REDIS_NODE_LEN + 1)
        return SP_EINVAL;
    for (; i < SP_REDIS_NODE_LEN; i++) {
        uint8_t c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return SP_EINVAL;
    }
    out->node.p = (const char *)p;
    out->node.len = SP_REDIS_NODE_LEN;
    if (expect_space(p, len, &i) || read_dec(p, len, &i, UINT64_MAX, &out->msg_id) ||
        expect_space(p, len, &i))
        return SP_EINVAL;
    size_t ts = i;
    while (i < len && p[i] != ' ')
        i++;
    out->topic.p = (const char *)p + ts;
    out->topic.len = i - ts;
    if (sp_pubsub_topic_parse(out->topic.p, out->topic.len, &ti) != 0)
        return SP_EINVAL;
    if (expect_space(p, len, &i))
        return SP_EINVAL;
    out->body.p = (const char *)p + i;
    out->body.len = len - i;
    if (out->body.len < 2 || out->body.p[0] != '{' || out->body.p[out->body.len - 1] != '}')
        return SP_EINVAL;
    return 0;
}

int sp_redis_msg_parse(const uint8_t *p, size_t len, sp_redis_msg_t *out)
{
    size_t i = 4;
    uint64_t seq;
    memset(out, 0, sizeof(*out));
    if (!p)
        return SP_EINVAL;
    if (len > SP_REDIS_MSG_MAX)
        return SP_ETOOBIG;
    if (len < 4 || memcmp(p, "SP1 ", 4) != 0)
        return SP_EINVAL;
    if (read_dec(p, len, &i, SP_REDIS_SEQ_MAX, &seq) || seq == 0 || expect_space(p, len, &i))
        return SP_EINVAL;
    int rc = sp_redis_msg_parse_tail(p + i, len - i, out);
    if (rc)
        return rc;
    out->seq = seq;
    return 0;
}

int sp_redis_msg_body_decode(sp_str_t body, json_t **root, const char **event, json_t **payload)
{
    *root = NULL;
    *event = NULL;
    *payload = NULL;
    if (!body.p || body.len == 0 || body.len > SP_REDIS_MSG_MAX)
        return SP_EINVAL;
    json_t *o = json_loadb(body.p, body.len, JSON_REJECT_DUPLICATES, NULL);
    const char *ev = o ? json_string_value(json_object_get(o, "event")) : NULL;
    if (!json_is_object(o) || !ev || !*ev || strlen(ev) > 128) {
        json_decref(o);
        return SP_EINVAL;
    }
    json_t *pl = json_object_get(o, "payload");
    if (!pl) {
        json_object_set_new(o, "payload", json_null());
        pl = json_object_get(o, "payload");
    }
    *root = o;
    *event = ev;
    *payload = pl;
    return 0;
}

char *sp_redis_msg_encode_tail(const char *node, uint64_t msg_id, const char *topic,
                               const char *event, json_t *payload, size_t *len)
{
    sp_topic_info_t ti;
    if (!node || strlen(node) != SP_REDIS_NODE_LEN || !topic || !event || !*event ||
        strlen(event) > 128 || sp_pubsub_topic_parse(topic, strlen(topic), &ti) != 0)
        return NULL;
    for (size_t i = 0; i < SP_REDIS_NODE_LEN; i++)
        if (!((node[i] >= '0' && node[i] <= '9') || (node[i] >= 'a' && node[i] <= 'f')))
            return NULL;
    json_t *o = json_pack("{s:s,s:O}", "event", event, "payload", payload ? payload : json_null());
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body)
        return NULL;
    sp_buf_t b;
    sp_buf_init(&b, SP_REDIS_MSG_MAX - 32);
    int rc = sp_buf_appendf(&b, "%s %llu %s %s", node, (unsigned long long)msg_id, topic, body);
    free(body);
    if (rc != 0) {
        sp_buf_cleanup(&b);
        return NULL;
    }
    return sp_buf_detach(&b, len);
}

/* ---- REDIS_URL ---------------------------------------------------------------------- */

int sp_redis_url_parse(const char *url, sp_redis_url_t *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return SP_EINVAL;
    const char *p = url + 8;
    size_t n = strlen(p);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
            return SP_EINVAL;
    /* authority ends at the first '/', '?' or '#' */
    size_t alen = strcspn(p, "/?#");
    const char *rest = p + alen;
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (p[i] == '@')
            at = p + i; /* last '@' */
    const char *hp = p;
    if (at) {
        size_t ulen = (size_t)(at - p);
        const char *colon = memchr(p, ':', ulen);
        if (colon) {
            if (sp_pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user), SP_PCT_NO_NUL) < 0 ||
                sp_pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass, sizeof(out->pass),
                              SP_PCT_NO_NUL) < 0)
                return SP_EINVAL;
        } else if (sp_pct_decode(p, ulen, out->pass, sizeof(out->pass), SP_PCT_NO_NUL) < 0) {
            return SP_EINVAL; /* redis://password@host (redis-cli style) */
        }
        hp = at + 1;
    }
    size_t hlen = (size_t)(p + alen - hp);
    const char *port = NULL;
    size_t host_len;
    const char *host = hp;
    if (hlen && hp[0] == '[') {
        const char *rb = memchr(hp, ']', hlen);
        if (!rb)
            return SP_EINVAL;
        host = hp + 1;
        host_len = (size_t)(rb - hp - 1);
        if (rb + 1 < hp + hlen) {
            if (rb[1] != ':')
                return SP_EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hlen);
        host_len = colon ? (size_t)(colon - hp) : hlen;
        if (colon)
            port = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof(out->host))
        return SP_EINVAL;
    for (size_t i = 0; i < host_len; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == ':'))
            return SP_EINVAL;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (port) {
        size_t plen = (size_t)(p + alen - port), i = 0;
        uint64_t v;
        if (plen == 0 || read_dec((const uint8_t *)port, plen, &i, 65535, &v) || i != plen ||
            v == 0)
            return SP_EINVAL;
        out->port = (int)v;
    }
    if (*rest == '/') {
        rest++;
        size_t dl = strcspn(rest, "?#"), i = 0;
        uint64_t v;
        if (dl) {
            if (read_dec((const uint8_t *)rest, dl, &i, 100000, &v) || i != dl)
                return SP_EINVAL;
            out->db = (int)v;
        }
    }
    return 0;
}
