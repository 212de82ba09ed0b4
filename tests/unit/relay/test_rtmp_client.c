/*
 * Unit tests for sp_rtmp_client (the RTMP publish client) and sp_rtmp_rx (the
 * reader loop shared with ingest): the client talks to a scripted destination
 * built on the server side of sp_rtmp_rx, both ends pumped in memory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "relay/sp_amf0.h"
#include "relay/sp_rtmp_chunk.h"
#include "relay/sp_rtmp_client.h"
#include "relay/sp_rtmp_rx.h"

Test(rtmp_target, url_and_key_split)
{
    sp_rtmp_target_t t;
    const char *why = NULL;
    cr_assert_eq(sp_rtmp_target_parse("rtmp://Ingest.Example.com/live/sub", "K", &t, &why), 0);
    cr_assert_str_eq(t.host, "ingest.example.com");
    cr_assert_eq(t.port, 1935);
    cr_assert_not(t.tls);
    cr_assert_str_eq(t.app, "live/sub");
    cr_assert_str_eq(t.key, "K");
    cr_assert_str_eq(t.tcurl, "rtmp://ingest.example.com:1935/live/sub");
    sp_rtmp_target_cleanup(&t);

    cr_assert_eq(sp_rtmp_target_parse("rtmps://a.example.com/live/KEY1", NULL, &t, &why), 0);
    cr_assert(t.tls);
    cr_assert_eq(t.port, 443);
    cr_assert_str_eq(t.app, "live");
    cr_assert_str_eq(t.key, "KEY1");
    sp_rtmp_target_cleanup(&t);

    cr_assert_eq(sp_rtmp_target_parse("rtmp://[2606:4700::1]:1940/app//", "K", &t, &why), 0);
    cr_assert_str_eq(t.app, "app");
    cr_assert_str_eq(t.tcurl, "rtmp://[2606:4700::1]:1940/app");
    sp_rtmp_target_cleanup(&t);

    cr_assert_eq(sp_rtmp_target_parse("rtmp://host:80abc/live", "K", &t, &why), SP_EINVAL);
    cr_assert_str_eq(why, "port must be a number");
    sp_rtmp_target_cleanup(&t);
    cr_assert_eq(sp_rtmp_target_parse("rtmp://host/live", NULL, &t, &why), SP_EINVAL);
    cr_assert_str_eq(why, "no app and stream key in the path");
    sp_rtmp_target_cleanup(&t);
    cr_assert_eq(sp_rtmp_target_parse("rtmp://host?x/live/k", NULL, &t, &why), SP_EINVAL);
    sp_rtmp_target_cleanup(&t);
}

/* ---- a scripted destination ---- */

typedef struct {
    sp_buf_t to_srv, to_cli;     /* bytes in flight */
    sp_rtmp_rx_t *srv;
    char cmds[16][32];           /* commands the destination received */
    char strs[16][128];          /* their first string argument after null (key, ...) */
    size_t ncmds;
    char app[64], tcurl[128];
    bool refuse_publish;
    bool ping_sent;
    int stages[8];
    size_t nstages;
    char refused[256];
    bool closed;
    size_t pongs;
} net_t;

static net_t g;

static void srv_send(void *ud, const void *p, size_t len)
{
    (void)ud;
    sp_buf_append(&g.to_cli, p, len);
}

static void srv_amf(sp_buf_t *amf, uint32_t msid)
{
    sp_rtmp_write_msg(&g.to_cli, 128, 3, SP_RTMP_MSG_CMD_AMF0, 0, msid, (uint8_t *)amf->p,
                      (uint32_t)amf->len);
    sp_buf_reset(amf);
}

static void put_status(sp_buf_t *b, const char *level, const char *code, const char *desc)
{
    sp_amf0_put_cstr(b, "onStatus");
    sp_amf0_put_number(b, 0);
    sp_amf0_put_null(b);
    sp_amf0_put_object_begin(b);
    sp_amf0_put_key(b, "level");
    sp_amf0_put_cstr(b, level);
    sp_amf0_put_key(b, "code");
    sp_amf0_put_cstr(b, code);
    sp_amf0_put_key(b, "description");
    sp_amf0_put_cstr(b, desc);
    sp_amf0_put_object_end(b);
}

static int srv_msg(void *ud, sp_rtmp_msg_t *m)
{
    (void)ud;
    if (m->type == SP_RTMP_MSG_USER_CONTROL && m->payload->len >= 2 && m->payload->data[1] == 7)
        g.pongs++;
    if (m->type != SP_RTMP_MSG_CMD_AMF0)
        return 0;
    sp_amf0_val_t **v = NULL;
    size_t n = 0;
    cr_assert_eq(sp_amf0_decode_all(m->payload->data, m->payload->len, NULL, &v, &n, 16), 0);
    sp_str_t name = { 0 }, s = { 0 };
    double txn = 0;
    sp_amf0_as_str(v[0], &name);
    sp_amf0_as_num(v[1], &txn);
    cr_assert_lt(g.ncmds, 16);
    snprintf(g.cmds[g.ncmds], sizeof(g.cmds[0]), "%.*s", (int)name.len, name.p);
    if (n >= 4 && sp_amf0_as_str(v[3], &s))
        snprintf(g.strs[g.ncmds], sizeof(g.strs[0]), "%.*s", (int)s.len, s.p);
    g.ncmds++;
    sp_buf_t b;
    sp_buf_init(&b, 0);
    if (sp_str_eq_cstr(name, "connect")) {
        sp_str_t app = { 0 }, tc = { 0 };
        sp_amf0_as_str(sp_amf0_get(v[2], "app"), &app);
        sp_amf0_as_str(sp_amf0_get(v[2], "tcUrl"), &tc);
        snprintf(g.app, sizeof(g.app), "%.*s", (int)app.len, app.p);
        snprintf(g.tcurl, sizeof(g.tcurl), "%.*s", (int)tc.len, tc.p);
        /* a window the client must acknowledge, and a ping it must answer */
        sp_rtmp_write_u32_ctrl(&g.to_cli, SP_RTMP_MSG_WINDOW_ACK, 100);
        sp_rtmp_write_user_ctrl(&g.to_cli, 6, 12345);
        g.ping_sent = true;
        sp_amf0_put_cstr(&b, "_result");
        sp_amf0_put_number(&b, txn);
        sp_amf0_put_null(&b);
        srv_amf(&b, 0);
    } else if (sp_str_eq_cstr(name, "createStream")) {
        sp_amf0_put_cstr(&b, "_result");
        sp_amf0_put_number(&b, txn);
        sp_amf0_put_null(&b);
        sp_amf0_put_number(&b, 7);
        srv_amf(&b, 0);
    } else if (sp_str_eq_cstr(name, "publish")) {
        if (g.refuse_publish)
            put_status(&b, "error", "NetStream.Publish.BadName", "bad key");
        else
            put_status(&b, "status", "NetStream.Publish.Start", "go");
        srv_amf(&b, 7);
    }
    sp_buf_cleanup(&b);
    sp_amf0_free_all(v, n);
    return 0;
}

static bool srv_alive(void *ud)
{
    (void)ud;
    return true;
}

static void cli_send(void *ud, const void *p, size_t len)
{
    (void)ud;
    sp_buf_append(&g.to_srv, p, len);
}

static void cli_stage(void *ud, sp_rtmp_client_stage_t st)
{
    (void)ud;
    g.stages[g.nstages++] = (int)st;
}

static void cli_refused(void *ud, const char *why)
{
    (void)ud;
    snprintf(g.refused, sizeof(g.refused), "%s", why);
    g.closed = true;
}

static bool cli_alive(void *ud)
{
    (void)ud;
    return !g.closed;
}

static const sp_rtmp_client_cbs_t cli_cbs = { .send = cli_send, .on_stage = cli_stage,
                                              .on_refused = cli_refused, .alive = cli_alive };

static void net_init(void)
{
    memset(&g, 0, sizeof(g));
    sp_buf_init(&g.to_srv, 0);
    sp_buf_init(&g.to_cli, 0);
    static const sp_rtmp_rx_cbs_t scbs = { .send = srv_send, .on_msg = srv_msg,
                                           .alive = srv_alive };
    g.srv = sp_rtmp_rx_create(SP_RTMP_MAX_MSG_DEFAULT, SP_RTMP_MAX_CSID_DEFAULT, &scbs, NULL);
    sp_rtmp_rx_start(g.srv, false);
}

static void net_free(void)
{
    sp_rtmp_rx_free(g.srv);
    sp_buf_cleanup(&g.to_srv);
    sp_buf_cleanup(&g.to_cli);
}

/* Moves bytes both ways until nothing is in flight. */
static void pump(sp_rtmp_client_t *c)
{
    for (int i = 0; i < 50 && (g.to_srv.len || g.to_cli.len); i++) {
        if (g.to_srv.len) {
            sp_buf_t b = g.to_srv;
            sp_buf_init(&g.to_srv, 0);
            cr_assert_eq(sp_rtmp_rx_feed(g.srv, b.p, b.len), 0);
            sp_buf_cleanup(&b);
        }
        if (g.to_cli.len && !g.closed) {
            sp_buf_t b = g.to_cli;
            sp_buf_init(&g.to_cli, 0);
            cr_assert_eq(sp_rtmp_client_input(c, b.p, b.len), 0);
            sp_buf_cleanup(&b);
        } else {
            sp_buf_reset(&g.to_cli);
        }
    }
}

Test(rtmp_client, publish_sequence_against_a_destination)
{
    net_init();
    sp_rtmp_target_t t;
    const char *why;
    cr_assert_eq(sp_rtmp_target_parse("rtmp://dest.example.com/app", "SECRETKEY", &t, &why), 0);
    sp_rtmp_client_t *c = sp_rtmp_client_create(&t, &cli_cbs, NULL);
    cr_assert_eq(sp_rtmp_client_input(c, "x", 1), SP_EPROTO, "bytes before C0+C1");
    sp_rtmp_client_free(c);
    c = sp_rtmp_client_create(&t, &cli_cbs, NULL);
    sp_rtmp_client_start(c);
    cr_assert_eq(g.to_srv.len, 1 + 1536u, "C0+C1");
    pump(c);
    cr_assert(sp_rtmp_rx_handshake_done(g.srv));
    cr_assert_eq(sp_rtmp_client_stage(c), SP_RTMP_CLIENT_PUBLISHING, "%s", g.refused);
    int want[] = { SP_RTMP_CLIENT_HANDSHAKE, SP_RTMP_CLIENT_CONNECT, SP_RTMP_CLIENT_CREATE,
                   SP_RTMP_CLIENT_PUBLISH, SP_RTMP_CLIENT_PUBLISHING };
    cr_assert_eq(g.nstages, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(g.stages[i], want[i], "stage %zu", i);
    cr_assert_eq(sp_rtmp_client_stream_id(c), 7);
    const char *cmds[] = { "connect", "releaseStream", "FCPublish", "createStream", "publish" };
    cr_assert_eq(g.ncmds, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(g.cmds[i], cmds[i]);
    cr_assert_str_eq(g.strs[1], "SECRETKEY");
    cr_assert_str_eq(g.strs[4], "SECRETKEY");
    cr_assert_str_eq(g.app, "app");
    cr_assert_str_eq(g.tcurl, "rtmp://dest.example.com:1935/app");
    cr_assert(g.ping_sent);
    cr_assert_eq(g.pongs, 1, "the shared reader answered the ping");

    sp_rtmp_client_unpublish(c);
    pump(c);
    cr_assert_eq(g.ncmds, 7);
    cr_assert_str_eq(g.cmds[5], "FCUnpublish");
    cr_assert_str_eq(g.strs[5], "SECRETKEY");
    cr_assert_str_eq(g.cmds[6], "deleteStream");
    cr_assert_str_eq(sp_rtmp_client_stage_name(SP_RTMP_CLIENT_CREATE), "createStream");
    sp_rtmp_client_free(c);
    sp_rtmp_target_cleanup(&t);
    net_free();
}

Test(rtmp_client, refusal_is_reported_and_nothing_more_is_sent)
{
    net_init();
    g.refuse_publish = true;
    sp_rtmp_target_t t;
    const char *why;
    cr_assert_eq(sp_rtmp_target_parse("rtmp://dest.example.com/app/KEY", NULL, &t, &why), 0);
    sp_rtmp_client_t *c = sp_rtmp_client_create(&t, &cli_cbs, NULL);
    sp_rtmp_client_start(c);
    pump(c);
    cr_assert_str_eq(g.refused, "destination refused: NetStream.Publish.BadName bad key");
    cr_assert_eq(sp_rtmp_client_stage(c), SP_RTMP_CLIENT_PUBLISH);
    cr_assert_eq(g.ncmds, 5);
    sp_rtmp_client_unpublish(c); /* closed: alive is false, nothing goes out */
    cr_assert_eq(g.to_srv.len, 0u);
    sp_rtmp_client_free(c);
    sp_rtmp_target_cleanup(&t);
    net_free();
}

Test(rtmp_client, tag_headers_use_the_media_chunk_streams)
{
    uint8_t hdr[64];
    uint16_t hl[8];
    cr_assert_geq(sizeof(hdr), sp_rtmp_client_hdr_bound(9000));
    size_t n = sp_rtmp_client_tag_headers(hdr, hl, 9, 40, 7, 9000);
    cr_assert_eq(n, 3, "9000 bytes in 4096-byte chunks");
    cr_assert_eq(hdr[0] & 0x3f, 6, "video on csid 6");
    cr_assert_eq(hdr[0] >> 6, 0, "fmt 0 first");
    cr_assert_eq(hdr[hl[0]] >> 6, 3, "fmt 3 continuation");
    n = sp_rtmp_client_tag_headers(hdr, hl, 8, 40, 7, 10);
    cr_assert_eq(n, 1);
    cr_assert_eq(hdr[0] & 0x3f, 4, "audio on csid 4");
    sp_rtmp_client_tag_headers(hdr, hl, 18, 0, 7, 10);
    cr_assert_eq(hdr[0] & 0x3f, 5, "data on csid 5");
}
