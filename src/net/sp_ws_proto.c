/*
 * sp_ws_proto: handshake validation, origins, UTF-8, the server frame encoder
 * and the wslay_event_context glue. See sp_ws_proto.h.
 */
#include "net/sp_ws_proto.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <wslay/wslay.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"

/* ---- origins --------------------------------------------------------------------- */

static bool ascii_prefix_ci(const char *s, size_t len, const char *pre)
{
    size_t n = strlen(pre);
    if (len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != pre[i])
            return false;
    return true;
}

int sp_ws_origin_normalize(const char *in, size_t len, char *out, size_t cap)
{
    static const struct {
        const char *scheme;
        const char *port;
    } schemes[] = { { "https", "443" }, { "http", "80" }, { "wss", "443" }, { "ws", "80" } };
    size_t i = 0, si;
    const char *scheme = NULL, *defport = NULL;

    while (len > 0 && (in[0] == ' ' || in[0] == '\t'))
        in++, len--;
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t'))
        len--;
    for (si = 0; si < sizeof(schemes) / sizeof(schemes[0]); si++) {
        size_t sl = strlen(schemes[si].scheme);
        if (ascii_prefix_ci(in, len, schemes[si].scheme) && len >= sl + 3 &&
            memcmp(in + sl, "://", 3) == 0) {
            scheme = schemes[si].scheme;
            defport = schemes[si].port;
            i = sl + 3;
            break;
        }
    }
    if (!scheme)
        return SP_EINVAL;
    /* authority: up to '/', '?', '#' */
    size_t a0 = i, a1 = i;
    while (a1 < len && in[a1] != '/' && in[a1] != '?' && in[a1] != '#')
        a1++;
    if (a1 == a0)
        return SP_EINVAL;
    /* host[:port]; reject userinfo and odd bytes */
    size_t colon = a1;
    bool bracket = false;
    for (size_t k = a0; k < a1; k++) {
        unsigned char c = (unsigned char)in[k];
        if (c == '[')
            bracket = true;
        else if (c == ']')
            bracket = false;
        else if (c == ':' && !bracket)
            colon = k;
        else if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || (bracket && c == ':')))
            return SP_EINVAL;
    }
    size_t hlen = colon - a0;
    if (hlen == 0)
        return SP_EINVAL;
    const char *port = NULL;
    size_t plen = 0;
    if (colon < a1) {
        port = in + colon + 1;
        plen = a1 - colon - 1;
        if (plen == 0 || plen > 5)
            return SP_EINVAL;
        for (size_t k = 0; k < plen; k++)
            if (!isdigit((unsigned char)port[k]))
                return SP_EINVAL;
        if (plen == strlen(defport) && memcmp(port, defport, plen) == 0)
            port = NULL;
    }
    /* ws/wss origins compare as http/https (browsers send http(s) origins) */
    const char *s = strcmp(scheme, "wss") == 0  ? "https"
                    : strcmp(scheme, "ws") == 0 ? "http"
                                                : scheme;
    size_t need = strlen(s) + 3 + hlen + (port ? plen + 1 : 0);
    if (need + 1 > cap)
        return SP_EINVAL;
    size_t o = 0;
    memcpy(out, s, strlen(s));
    o += strlen(s);
    memcpy(out + o, "://", 3);
    o += 3;
    for (size_t k = 0; k < hlen; k++)
        out[o++] = (char)tolower((unsigned char)in[a0 + k]);
    if (port) {
        out[o++] = ':';
        memcpy(out + o, port, plen);
        o += plen;
    }
    out[o] = '\0';
    return 0;
}

static int origins_add(sp_ws_origins_t *o, const char *p, size_t len)
{
    char tmp[SP_WS_ORIGIN_MAX];
    int rc = sp_ws_origin_normalize(p, len, tmp, sizeof(tmp));
    if (rc)
        return rc;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i], tmp) == 0)
            return 0;
    if (o->n >= SP_WS_MAX_ORIGINS)
        return SP_ETOOBIG;
    memcpy(o->v[o->n++], tmp, strlen(tmp) + 1);
    return 0;
}

int sp_ws_origins_init(sp_ws_origins_t *o, const char *public_url, const char *extra)
{
    int rc;
    memset(o, 0, sizeof(*o));
    if (public_url && *public_url && (rc = origins_add(o, public_url, strlen(public_url))) != 0)
        return rc;
    if (!extra)
        return 0;
    const char *p = extra;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool blank = true;
        for (size_t k = 0; k < n; k++)
            if (p[k] != ' ' && p[k] != '\t')
                blank = false;
        if (!blank && (rc = origins_add(o, p, n)) != 0)
            return rc;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

bool sp_ws_origin_allowed(const sp_ws_origins_t *o, const char *origin)
{
    char tmp[SP_WS_ORIGIN_MAX];
    if (!origin || sp_ws_origin_normalize(origin, strlen(origin), tmp, sizeof(tmp)) != 0)
        return false;
    /* an Origin header is exactly scheme://host[:port]: a path means a forgery or a bug */
    const char *after = strstr(origin, "://");
    if (!after || strchr(after + 3, '/'))
        return false;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->v[i], tmp) == 0)
            return true;
    return false;
}

/* ---- handshake ------------------------------------------------------------------- */

bool sp_ws_header_has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    if (!value)
        return false;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

bool sp_ws_key_valid(const char *key)
{
    unsigned char bin[18];
    size_t blen = 0;
    if (!key || strlen(key) != 24)
        return false;
    if (sodium_base642bin(bin, sizeof(bin), key, 24, NULL, &blen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    return blen == 16;
}

int sp_ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) && EVP_DigestUpdate(c, key, strlen(key)) &&
        EVP_DigestUpdate(c, guid, sizeof(guid) - 1) && EVP_DigestFinal_ex(c, md, &mdlen))
        ok = mdlen == SHA_DIGEST_LENGTH;
    EVP_MD_CTX_free(c);
    if (!ok)
        return SP_ECRYPTO;
    if (EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH) != 28)
        return SP_ECRYPTO;
    out[28] = '\0';
    return 0;
}

static int hs_fail(sp_ws_hs_result_t *res, int status, const char *reason)
{
    res->status = status;
    res->reason = reason;
    return status;
}

int sp_ws_handshake_check(const sp_ws_hs_req_t *req, const sp_ws_origins_t *origins,
                          sp_ws_hs_result_t *res)
{
    memset(res, 0, sizeof(*res));
    if (!req->method || strcmp(req->method, "GET") != 0)
        return hs_fail(res, 400, "method");
    if (!sp_ws_header_has_token(req->upgrade, "websocket"))
        return hs_fail(res, 400, "upgrade");
    if (!sp_ws_header_has_token(req->connection, "upgrade"))
        return hs_fail(res, 400, "connection");
    if (!req->version) {
        res->send_version = true;
        return hs_fail(res, 400, "version");
    }
    if (strcmp(req->version, "13") != 0) {
        res->send_version = true;
        return hs_fail(res, 426, "version");
    }
    if (!sp_ws_key_valid(req->key))
        return hs_fail(res, 400, "bad_key");
    if (origins && req->origin && !sp_ws_origin_allowed(origins, req->origin))
        return hs_fail(res, 403, "origin");
    if (sp_ws_accept_key(req->key, res->accept) != 0)
        return hs_fail(res, 500, "crypto");
    res->status = 101;
    res->reason = "ok";
    return 101;
}

/* ---- UTF-8 ----------------------------------------------------------------------- */

bool sp_ws_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

/* ---- frame encoder --------------------------------------------------------------- */

size_t sp_ws_frame_header(uint8_t out[10], int opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

sp_rbuf_t *sp_ws_frame_encode(int opcode, const void *payload, size_t len)
{
    uint8_t h[10];
    size_t hl = sp_ws_frame_header(h, opcode, len);
    sp_rbuf_t *r = sp_rbuf_new(NULL, hl + len);
    memcpy(r->data, h, hl);
    if (len)
        memcpy(r->data + hl, payload, len);
    return r;
}

/* ---- wslay glue ------------------------------------------------------------------ */

/*
 * The wslay context (about 8.8 KiB with its frame buffers) exists only while
 * input is being processed or a frame/message/close is in progress: after each
 * feed that ends exactly on a message boundary it is freed, so an idle socket
 * costs no wslay memory. The boundary is known from wslay's own frame
 * start/end callbacks plus byte accounting (a partially received header shows
 * up as fed bytes not yet covered by a started frame). State that must
 * outlive the context (close codes, counters) lives here.
 */
struct sp_ws_proto_s {
    wslay_event_context_ptr ctx; /* NULL while idle */
    sp_ws_proto_cbs_t cbs;
    void *ud;
    size_t max_message;
    const uint8_t *in; /* the chunk being fed */
    size_t in_len;
    sp_buf_t out; /* control frames of one wslay_event_send() */
    uint64_t messages;
    uint64_t fed;       /* bytes given to wslay since the context was created */
    uint64_t accounted; /* header + payload bytes of frames wslay has started */
    bool in_frame;      /* between frame start and end callbacks */
    bool in_message;    /* a fragmented data message is open */
    uint16_t sent_code;
    uint16_t peer_code;
    bool close_sent, close_received;
    bool dead; /* fatal error: no more input */
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    sp_ws_proto_t *p = ud;
    (void)flags;
    if (p->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < p->in_len ? len : p->in_len;
    memcpy(buf, p->in, n);
    p->in += n;
    p->in_len -= n;
    p->fed += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    sp_ws_proto_t *p = ud;
    (void)flags;
    /* control frames only (<= 131 bytes each); the cap just bounds a runaway */
    if (sp_buf_append(&p->out, data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void frame_start_cb(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *arg, void *ud)
{
    sp_ws_proto_t *p = ud;
    uint64_t n = arg->payload_length;
    (void)ctx;
    p->in_frame = true;
    /* client frames are masked (4 bytes); unmasked ones are a protocol error anyway */
    p->accounted += 2 + 4 + (n >= 126 ? (n > 0xFFFF ? 8 : 2) : 0) + n;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        p->in_message = !arg->fin;
    else if (arg->opcode == WSLAY_CONTINUATION_FRAME && arg->fin)
        p->in_message = false;
}

static void frame_end_cb(wslay_event_context_ptr ctx, void *ud)
{
    sp_ws_proto_t *p = ud;
    (void)ctx;
    p->in_frame = false;
}

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud)
{
    sp_ws_proto_t *p = ud;
    (void)ctx;
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return; /* ping/pong/close are handled by wslay */
    if (p->close_sent || p->sent_code)
        return;
    if (arg->opcode == WSLAY_TEXT_FRAME && !sp_ws_utf8_valid(arg->msg, arg->msg_length)) {
        sp_ws_proto_close(p, SP_WS_CLOSE_BAD_DATA, "invalid utf-8");
        return;
    }
    p->messages++;
    if (p->cbs.on_message)
        p->cbs.on_message(p->ud, arg->opcode, arg->msg, arg->msg_length);
}

static int ensure_ctx(sp_ws_proto_t *p)
{
    static const struct wslay_event_callbacks wcb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_frame_recv_start_callback = frame_start_cb,
        .on_frame_recv_end_callback = frame_end_cb,
        .on_msg_recv_callback = on_msg_cb,
    };
    if (p->ctx)
        return 0;
    if (wslay_event_context_server_init(&p->ctx, &wcb, p) != 0) {
        p->ctx = NULL;
        p->dead = true;
        return SP_ENOMEM;
    }
    wslay_event_config_set_max_recv_msg_length(p->ctx, p->max_message);
    p->fed = p->accounted = 0;
    p->in_frame = p->in_message = false;
    return 0;
}

static void sync_state(sp_ws_proto_t *p)
{
    if (!p->ctx)
        return;
    if (!p->close_sent && wslay_event_get_close_sent(p->ctx)) {
        uint16_t c = wslay_event_get_status_code_sent(p->ctx);
        p->close_sent = true;
        if (!p->sent_code)
            p->sent_code = c && c != WSLAY_CODE_NO_STATUS_RCVD ? c : SP_WS_CLOSE_NORMAL;
    }
    if (!p->close_received && wslay_event_get_close_received(p->ctx)) {
        p->close_received = true;
        p->peer_code = wslay_event_get_status_code_received(p->ctx);
    }
}

static void flush(sp_ws_proto_t *p)
{
    if (p->ctx && !p->dead && wslay_event_want_write(p->ctx) && wslay_event_send(p->ctx) != 0)
        p->dead = true;
    if (p->out.len) {
        if (p->cbs.on_output)
            p->cbs.on_output(p->ud, (const uint8_t *)p->out.p, p->out.len);
        sp_buf_reset(&p->out);
    }
    sync_state(p);
}

/* Frees the wslay context when nothing is in progress. */
static void maybe_release(sp_ws_proto_t *p)
{
    if (!p->ctx || p->dead || p->in_frame || p->in_message || p->fed != p->accounted ||
        p->close_sent || p->close_received || p->sent_code || wslay_event_want_write(p->ctx))
        return;
    wslay_event_context_free(p->ctx);
    p->ctx = NULL;
}

sp_ws_proto_t *sp_ws_proto_new(size_t max_message, const sp_ws_proto_cbs_t *cbs, void *ud)
{
    sp_ws_proto_t *p = sp_calloc(1, sizeof(*p));
    p->max_message = max_message ? max_message : 65536;
    p->cbs = *cbs;
    p->ud = ud;
    sp_buf_init(&p->out, 64 * 1024);
    return p;
}

void sp_ws_proto_free(sp_ws_proto_t *p)
{
    if (!p)
        return;
    if (p->ctx)
        wslay_event_context_free(p->ctx);
    sp_buf_cleanup(&p->out);
    sp_free(p);
}

static bool want_read(const sp_ws_proto_t *p)
{
    return !p->dead && !p->close_received && (!p->ctx || wslay_event_want_read(p->ctx));
}

int sp_ws_proto_feed(sp_ws_proto_t *p, const uint8_t *data, size_t len)
{
    if (!want_read(p))
        return SP_ECLOSED;
    if (len == 0)
        return 0;
    if (ensure_ctx(p) != 0)
        return SP_ECLOSED;
    p->in = data;
    p->in_len = len;
    while (!p->dead && p->in_len > 0 && wslay_event_want_read(p->ctx)) {
        if (wslay_event_recv(p->ctx) != 0)
            p->dead = true;
    }
    p->in = NULL;
    p->in_len = 0;
    flush(p);
    bool more = want_read(p);
    maybe_release(p);
    return more ? 0 : SP_ECLOSED;
}

void sp_ws_proto_close(sp_ws_proto_t *p, uint16_t code, const char *reason)
{
    if (p->close_sent || p->sent_code || p->dead)
        return;
    if (ensure_ctx(p) != 0)
        return;
    if (wslay_event_queue_close(p->ctx, code, (const uint8_t *)reason,
                                reason ? strlen(reason) : 0) == 0)
        p->sent_code = code;
    /* inside on_message wslay is mid-recv: the frame goes out at the end of feed() */
    if (!p->in)
        flush(p);
}

void sp_ws_proto_ping(sp_ws_proto_t *p)
{
    /* a server frame of our own (no wslay state needed): FIN|PING, empty payload */
    static const uint8_t ping[2] = { 0x89, 0x00 };
    if (p->close_sent || p->sent_code || p->dead)
        return;
    if (p->cbs.on_output)
        p->cbs.on_output(p->ud, ping, sizeof(ping));
}

bool sp_ws_proto_close_sent(const sp_ws_proto_t *p)
{
    return p->close_sent;
}

bool sp_ws_proto_close_received(const sp_ws_proto_t *p)
{
    return p->close_received;
}

uint16_t sp_ws_proto_peer_code(const sp_ws_proto_t *p)
{
    return p->peer_code;
}

uint16_t sp_ws_proto_sent_code(const sp_ws_proto_t *p)
{
    return p->sent_code;
}

uint64_t sp_ws_proto_messages(const sp_ws_proto_t *p)
{
    return p->messages;
}

bool sp_ws_proto_has_ctx(const sp_ws_proto_t *p)
{
    return p->ctx != NULL;
}
