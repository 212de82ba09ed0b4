/*
 * sp_relay_media: the media path of a live input. Publisher messages become
 * refcounted tags; sequence headers, metadata and the GOP since the last
 * keyframe are cached so a new or reconnecting output starts on a keyframe at
 * once; every tag is handed to each forwarding output by reference.
 */
#include "relay/sp_relay_int.h"
#include "relay/sp_rtmp_push.h"

#include <string.h>

#include "core/sp_alloc.h"
#include "relay/sp_amf0.h"
#include "relay/sp_flv.h"
#include "relay/sp_slate.h"
#include "core/sp_log.h"
#include "core/sp_time.h"

/* ---- tags and queues ---- */

void sp_tag_clear(sp_relay_tag_t *t)
{
    sp_rbuf_unref(t->data);
    memset(t, 0, sizeof(*t));
}

/* dst = src, taking a new reference */
static void tag_set(sp_relay_tag_t *dst, const sp_relay_tag_t *src)
{
    sp_relay_tag_t tmp = *src;
    if (tmp.data)
        sp_rbuf_ref(tmp.data);
    sp_tag_clear(dst);
    *dst = tmp;
}

void sp_tagq_init(sp_tagq_t *q)
{
    memset(q, 0, sizeof(*q));
}

void sp_tagq_clear(sp_tagq_t *q)
{
    sp_relay_tag_t t;
    while (sp_tagq_pop(q, &t))
        sp_tag_clear(&t);
    q->head = 0;
}

void sp_tagq_cleanup(sp_tagq_t *q)
{
    sp_tagq_clear(q);
    sp_free(q->v);
    memset(q, 0, sizeof(*q));
}

void sp_tagq_push(sp_tagq_t *q, const sp_relay_tag_t *t)
{
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 64;
        sp_relay_tag_t *nv = sp_malloc(ncap * sizeof(*nv));
        for (size_t i = 0; i < q->n; i++)
            nv[i] = q->v[(q->head + i) % q->cap];
        sp_free(q->v);
        q->v = nv;
        q->cap = ncap;
        q->head = 0;
    }
    sp_relay_tag_t *slot = &q->v[(q->head + q->n) % q->cap];
    *slot = *t;
    sp_rbuf_ref(slot->data);
    q->n++;
    q->bytes += t->data->len;
}

bool sp_tagq_pop(sp_tagq_t *q, sp_relay_tag_t *out)
{
    if (q->n == 0)
        return false;
    *out = q->v[q->head];
    q->head = (q->head + 1) % q->cap;
    q->n--;
    q->bytes -= out->data->len;
    return true;
}

sp_relay_tag_t *sp_tagq_at(sp_tagq_t *q, size_t i)
{
    return i < q->n ? &q->v[(q->head + i) % q->cap] : NULL;
}

/* ---- live input ---- */

#define SLATE_KEY_WAIT_MS 10000

static void reset_media(sp_relay_input_t *in)
{
    sp_tag_clear(&in->meta_tag);
    sp_tag_clear(&in->vseq);
    sp_tag_clear(&in->aseq);
    sp_tagq_cleanup(&in->gop);
    in->gop_valid = false;
    in->has_video = false;
    memset(&in->st, 0, sizeof(in->st));
}

void sp_relay_input_live(sp_relay_input_t *in, sp_ingest_conn_t *pub)
{
    reset_media(in);
    in->publisher = pub;
    in->state = 1;
    snprintf(in->reason, sizeof(in->reason), "connected");
    in->state_since_ms = sp_wall_ms();
    in->st.connected_at_ms = sp_mono_ms();
    sp_info("relay", "input connected", "input=%s", in->uid);
    if (in->slate) /* outputs on the slate splice back at its first keyframe: wait 10 s at most */
        in->slate_until_ms = sp_mono_ms() + SLATE_KEY_WAIT_MS;
    sp_relay_webhook(in->relay, in, "live_input.connected", NULL, NULL);
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->enabled)
            sp_push_start(o);
}

/* ---- disconnect protection ---- */

static uint64_t grace_ms(const sp_relay_t *r)
{
    return r->cfg && r->cfg->stream_disconnect_timeout > 0
               ? (uint64_t)r->cfg->stream_disconnect_timeout : 300000;
}

/* The input leaves the slate: outputs still on it stop (why), the tick is released. */
static void slate_end(sp_relay_input_t *in, const char *why)
{
    if (!in->slate)
        return;
    in->slate = NULL;
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->slate.on) {
            memset(&o->slate, 0, sizeof(o->slate));
            if (why)
                sp_push_stop(o, why);
        }
    sp_relay_tick_unref(in->relay);
}

/*
 * The publisher left (client_disconnect) with protection on: outputs that are
 * forwarding go on the slate nearest to the input's size and frame rate, for at
 * most the grace window. Returns whether any output did.
 */
static bool slate_begin(sp_relay_input_t *in, const char *reason)
{
    sp_relay_t *r = in->relay;
    if (!in->protect || !in->enabled || r->stopping || strcmp(reason, "client_disconnect") != 0)
        return false;
    /* the slates are H.264: an audio-only input or another codec (E-RTMP HEVC, AV1...) would
     * see its destinations switch codec, which they may refuse */
    if (!in->slate && (!in->has_video || strcmp(in->st.vcodec, "h264") != 0))
        return false;
    const sp_slate_t *clip = in->slate ? in->slate
                             : sp_slate_pick(r->slates, in->st.width, in->st.height,
                                             in->st.meta_fps > 0 ? in->st.meta_fps : in->st.fps);
    if (!clip)
        return false;
    uint64_t now = sp_mono_ms();
    size_t n = 0;
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->enabled && sp_push_slate_begin(o, clip, now))
            n++;
    if (n == 0)
        return false;
    if (!in->slate) {
        in->slate = clip;
        in->slate_since_ms = now;
        in->slates++;
        sp_relay_tick_ref(r);
    }
    in->slate_until_ms = now + grace_ms(r);
    sp_info("relay", "input on the slate", "input=%s outputs=%zu slate=%dx%d@%.0f grace_ms=%llu",
            in->uid, n, clip->width, clip->height, clip->fps,
            (unsigned long long)grace_ms(r));
    return true;
}

/* The media tick of an input on the slate: due slate tags to its outputs; the grace window. */
static void slate_tick(sp_relay_input_t *in, uint64_t now, uint32_t lead)
{
    if (!in->publisher && now >= in->slate_until_ms) {
        sp_info("relay", "slate over: grace window ended", "input=%s", in->uid);
        slate_end(in, "input disconnected (grace window over)");
        return;
    }
    if (in->publisher && now >= in->slate_until_ms) {
        /* the encoder is back but sent no keyframe in time: reconnect those outputs, they
         * start on its next keyframe as any new output does */
        sp_warn("relay", "no keyframe from the encoder after the slate: outputs restarted",
                "input=%s", in->uid);
        slate_end(in, "no keyframe from the encoder");
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            if (o->enabled && !o->conn)
                sp_push_start(o);
        return;
    }
    size_t on = 0;
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->slate.on && o->conn) {
            sp_push_slate_tick(o, now, lead);
            on++;
        }
    if (on == 0 && in->publisher)
        slate_end(in, NULL); /* every output is back on the publisher */
}

static void input_gone(sp_relay_input_t *in, const char *reason, bool may_slate);

void sp_relay_input_gone(sp_relay_input_t *in, const char *reason)
{
    input_gone(in, reason, true);
}

void sp_relay_input_unpublished(sp_relay_input_t *in)
{
    input_gone(in, "client_disconnect", false);
}

static void input_gone(sp_relay_input_t *in, const char *reason, bool may_slate)
{
    if (!in->publisher) {
        if (strcmp(reason, "client_disconnect") != 0)
            slate_end(in, "input disconnected"); /* deleted or stopping while on the slate */
        return;
    }
    in->publisher = NULL;
    in->state = 2;
    snprintf(in->reason, sizeof(in->reason), "%s", reason);
    in->state_since_ms = sp_wall_ms();
    sp_info("relay", "input disconnected", "input=%s reason=%s bytes_in=%llu", in->uid, reason,
            (unsigned long long)in->st.bytes_in);
    if (may_slate && slate_begin(in, reason)) {
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            if (!o->slate.on)
                sp_push_stop(o, "input disconnected");
    } else {
        slate_end(in, NULL);
        for (sp_relay_output_t *o = in->outputs; o; o = o->next)
            sp_push_stop(o, "input disconnected");
    }
    sp_relay_preview_close_all(in);
    reset_media(in);
    sp_relay_webhook(in->relay, in, "live_input.disconnected", NULL, NULL);
}

void sp_relay_input_errored(sp_relay_input_t *in, const char *code, const char *message)
{
    if (!in->publisher)
        return;
    in->publisher = NULL;
    in->state = 3;
    snprintf(in->reason, sizeof(in->reason), "%s", code);
    in->state_since_ms = sp_wall_ms();
    sp_warn("relay", "input errored", "input=%s code=%s detail=\"%s\" bytes_in=%llu", in->uid, code,
            message, (unsigned long long)in->st.bytes_in);
    slate_end(in, NULL);
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        sp_push_stop(o, "input errored");
    sp_relay_preview_close_all(in);
    sp_relay_webhook(in->relay, in, "live_input.errored", code, message);
    reset_media(in);
}

void sp_relay_input_metadata(sp_relay_input_t *in, const uint8_t *p, size_t len)
{
    /* Keep "@setDataFrame" + the given "onMetaData" {...} ready for outputs. */
    sp_buf_t b;
    sp_buf_init(&b, 0);
    sp_amf0_put_cstr(&b, "@setDataFrame");
    sp_buf_append(&b, p, len);
    sp_relay_tag_t t = { .type = SP_FLV_TAG_DATA, .ts = 0 };
    t.data = sp_rbuf_new(b.p, b.len);
    sp_buf_cleanup(&b);
    sp_tag_clear(&in->meta_tag);
    in->meta_tag = t;

    /* stats: width, height, framerate */
    sp_amf0_val_t **v = NULL;
    size_t n = 0;
    if (sp_amf0_decode_all(p, len, NULL, &v, &n, 4) == 0 && n >= 2) {
        double d;
        if (sp_amf0_as_num(sp_amf0_get(v[1], "width"), &d) && d > 0 && d < 100000)
            in->st.width = (int)d;
        if (sp_amf0_as_num(sp_amf0_get(v[1], "height"), &d) && d > 0 && d < 100000)
            in->st.height = (int)d;
        if (sp_amf0_as_num(sp_amf0_get(v[1], "framerate"), &d) && d > 0 && d < 1000)
            in->st.meta_fps = d;
    }
    sp_amf0_free_all(v, n);
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->conn)
            sp_push_feed(o, &in->meta_tag);
    sp_relay_preview_feed(in, &in->meta_tag);
}

void sp_relay_input_stats_tick(sp_relay_input_t *in, uint64_t now_ms)
{
    sp_input_stats_t *s = &in->st;
    sp_relay_health_tick(in, now_ms);
    if (s->win_start_ms == 0) {
        s->win_start_ms = now_ms;
        return;
    }
    uint64_t dt = now_ms - s->win_start_ms;
    if (dt < 2000)
        return;
    s->bitrate_kbps = (double)s->win_bytes * 8.0 / (double)dt;
    s->fps = (double)s->win_frames * 1000.0 / (double)dt;
    s->win_bytes = s->win_frames = 0;
    s->win_start_ms = now_ms;
}

/* Codec names change rarely: compare before copying (this runs for every message). */
static void set_codec(char *dst, size_t cap, const char *name)
{
    if (strncmp(dst, name, cap) != 0)
        snprintf(dst, cap, "%s", name);
}

void sp_relay_input_media(sp_relay_input_t *in, uint8_t type, uint32_t ts, sp_rbuf_t *payload)
{
    sp_flv_info_t info;
    sp_relay_tag_t t = { .type = type, .ts = ts, .data = payload };
    in->st.bytes_in += payload->len;
    in->st.win_bytes += payload->len;
    in->relay->bytes_in += payload->len;
    if (sp_flv_classify(type, payload->data, payload->len, &info) != 0) {
        sp_rbuf_unref(payload);
        return; /* empty media message: nothing to forward */
    }
    if (info.seq_header)
        t.flags |= SP_TAG_SEQ;
    if (info.is_frame)
        t.flags |= SP_TAG_FRAME;
    if (info.keyframe && type == SP_FLV_TAG_VIDEO)
        t.flags |= SP_TAG_KEY;
    sp_relay_health_media(in, type, ts, t.flags, info.codec, payload->data, payload->len);

    if (type == SP_FLV_TAG_VIDEO) {
        set_codec(in->st.vcodec, sizeof(in->st.vcodec), sp_flv_codec_name(type, info.codec));
        if (info.seq_header) {
            tag_set(&in->vseq, &t);
            in->has_video = true;
        }
        if (info.is_frame) {
            in->has_video = true;
            in->st.video_frames++;
            in->st.win_frames++;
        }
        if (t.flags & SP_TAG_KEY) {
            if (in->st.keyframes > 0)
                in->st.key_interval_ms = ts - in->st.last_key_ts;
            in->st.keyframes++;
            in->st.last_key_ts = ts;
            sp_tagq_clear(&in->gop);
            in->gop_valid = true;
        }
    } else if (type == SP_FLV_TAG_AUDIO) {
        set_codec(in->st.acodec, sizeof(in->st.acodec), sp_flv_codec_name(type, info.codec));
        if (info.seq_header)
            tag_set(&in->aseq, &t);
        if (info.is_frame)
            in->st.audio_frames++;
    }
    in->st.last_ts = ts;
    if (!in->st.have_ts) {
        in->st.first_ts = ts;
        in->st.have_ts = true;
    }
    /* GOP cache: frames since the last keyframe (audio-only inputs: none) */
    if (in->gop_valid && (t.flags & SP_TAG_FRAME)) {
        if (in->gop.bytes + payload->len > SP_RELAY_GOP_MAX_BYTES ||
            in->gop.n >= SP_RELAY_GOP_MAX_TAGS) {
            sp_tagq_clear(&in->gop);
            in->gop_valid = false; /* wait for the next keyframe */
        } else {
            sp_tagq_push(&in->gop, &t);
        }
    }
    for (sp_relay_output_t *o = in->outputs; o; o = o->next)
        if (o->conn)
            sp_push_feed(o, &t);
    sp_relay_preview_feed(in, &t);
    sp_rbuf_unref(payload);
}

/* ---- the media tick ---- */

void sp_relay_grid_start(uv_timer_t *t, uv_timer_cb cb, uint64_t period_ms)
{
    uv_timer_start(t, cb, period_ms - uv_now(t->loop) % period_ms, 0);
}

static uint32_t tick_ms(const sp_relay_t *r)
{
    return r->tick_ms ? r->tick_ms : SP_RELAY_TICK_MS_DEFAULT;
}

static void on_tick(uv_timer_t *t)
{
    sp_relay_t *r = t->data;
    sp_relay_grid_start(t, on_tick, tick_ms(r));
    sp_rtmp_server_drain(r);
    uint64_t now = sp_mono_ms();
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        if (in->slate)
            slate_tick(in, now, tick_ms(r));
    for (sp_relay_input_t *in = r->inputs; in; in = in->next)
        if (in->publisher || in->slate)
            for (sp_relay_output_t *o = in->outputs; o; o = o->next)
                if (o->q.n)
                    sp_push_flush(o);
}

static void free_timer(uv_handle_t *h)
{
    sp_free(h);
}

void sp_relay_tick_ref(sp_relay_t *r)
{
    if (r->tick_refs++ > 0 || r->stopping || !r->loop)
        return;
    if (!r->flush_timer) {
        r->flush_timer = sp_malloc(sizeof(*r->flush_timer));
        uv_timer_init(r->loop, r->flush_timer);
        r->flush_timer->data = r;
    }
    /* on the grid of the 1 s housekeeping timers: when the tick divides 1000 ms (the default
     * does) they expire in the same wakeup */
    sp_relay_grid_start(r->flush_timer, on_tick, tick_ms(r));
}

void sp_relay_tick_unref(sp_relay_t *r)
{
    if (r->tick_refs == 0)
        return;
    if (--r->tick_refs == 0 && r->flush_timer)
        uv_timer_stop(r->flush_timer);
}

void sp_relay_flush_stop(sp_relay_t *r)
{
    if (r->flush_timer) {
        uv_close((uv_handle_t *)r->flush_timer, free_timer);
        r->flush_timer = NULL;
    }
    r->tick_refs = 0;
}
