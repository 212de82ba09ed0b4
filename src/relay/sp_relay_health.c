/*
 * sp_relay_health: the input health of a live input, measured from the FLV tags
 * the relay already parses (docs/relay.md "Input health"): per-track bitrates
 * over a 5 s window, frame rate (from the frames' timestamps), keyframe
 * interval, picture size from the AVC
 * sequence header (SPS) when metadata lacks it, AAC sample rate and channels,
 * uptime and frames whose timestamp went back.
 */
#include "relay/sp_relay_int.h"

#include <string.h>

#include "relay/sp_codec_cfg.h"
#include "relay/sp_flv.h"

#define HEALTH_WINDOW_MS 5000
#define FLV_CODEC_AVC 7
#define FLV_CODEC_AAC 10

static void video_seq(sp_input_stats_t *s, uint32_t codec, const uint8_t *p, size_t len)
{
    sp_h264_sps_t sps;
    if (codec != FLV_CODEC_AVC && codec != SP_FOURCC('a', 'v', 'c', '1'))
        return;
    /* legacy: frame/codec byte, AVCPacketType, 3 bytes composition time;
       Enhanced RTMP: header byte + FourCC. The record follows either way. */
    if (len <= 5 || sp_h264_avcc_parse(p + 5, len - 5, &sps) != 0)
        return;
    s->sps_width = sps.width;
    s->sps_height = sps.height;
    s->sps_fps = sps.fps;
    s->profile = sps.profile_idc;
    s->level = sps.level_idc;
}

static void audio_info(sp_input_stats_t *s, uint8_t flags, uint32_t codec, const uint8_t *p,
                       size_t len)
{
    if (codec == FLV_CODEC_AAC) {
        sp_aac_asc_t a;
        if ((flags & SP_TAG_SEQ) && len > 2 && sp_aac_asc_parse(p + 2, len - 2, &a) == 0) {
            s->sample_rate = a.sample_rate;
            s->channels = a.channels;
        }
        return;
    }
    if (len < 1 || (p[0] >> 4) == 9) /* Enhanced RTMP audio: no legacy rate bits */
        return;
    static const int rates[4] = { 5512, 11025, 22050, 44100 };
    s->sample_rate = rates[(p[0] >> 2) & 3];
    s->channels = (p[0] & 1) ? 2 : 1;
}

void sp_relay_health_media(sp_relay_input_t *in, uint8_t type, uint32_t ts, uint8_t flags,
                           uint32_t codec, const uint8_t *p, size_t len)
{
    sp_input_stats_t *s = &in->st;
    if (type == SP_FLV_TAG_VIDEO) {
        s->hw_vbytes += len;
        if (flags & SP_TAG_SEQ)
            video_seq(s, codec, p, len);
        if (flags & SP_TAG_FRAME) {
            if (s->hw_vframes++ == 0)
                s->hw_first_vts = ts;
            if (s->video_frames > 1 && ts < s->last_vts)
                s->late_frames++;
            s->last_vts = ts;
        }
    } else if (type == SP_FLV_TAG_AUDIO) {
        s->hw_abytes += len;
        if ((flags & SP_TAG_SEQ) || s->sample_rate == 0)
            audio_info(s, flags, codec, p, len);
        if (flags & SP_TAG_FRAME) {
            if (s->audio_frames > 1 && ts < s->last_ats)
                s->late_frames++;
            s->last_ats = ts;
        }
    }
}

void sp_relay_health_tick(sp_relay_input_t *in, uint64_t now_ms)
{
    sp_input_stats_t *s = &in->st;
    if (s->hw_start_ms == 0) {
        s->hw_start_ms = now_ms;
        return;
    }
    uint64_t dt = now_ms - s->hw_start_ms;
    if (dt < HEALTH_WINDOW_MS)
        return;
    s->video_kbps = (double)s->hw_vbytes * 8.0 / (double)dt;
    s->audio_kbps = (double)s->hw_abytes * 8.0 / (double)dt;
    /* the frame rate the encoder sends: frames over their timestamp span (a busy machine
       delivering late must not read as a lower frame rate); by arrival if no span */
    uint32_t span = s->last_vts - s->hw_first_vts;
    if (s->hw_vframes >= 2 && span > 0 && span < 60000)
        s->hw_fps = (double)(s->hw_vframes - 1) * 1000.0 / (double)span;
    else
        s->hw_fps = (double)s->hw_vframes * 1000.0 / (double)dt;
    s->have_window = true;
    s->hw_vbytes = s->hw_abytes = s->hw_vframes = 0;
    s->hw_start_ms = now_ms;
}

static json_t *num_or_null(double v, bool known)
{
    return known ? json_real((double)(int64_t)(v * 10.0 + 0.5) / 10.0) : json_null();
}

static json_t *int_or_null(int64_t v)
{
    return v > 0 ? json_integer(v) : json_null();
}

json_t *sp_relay_health_json(const sp_relay_input_t *in, uint64_t now_mono_ms)
{
    if (!in->publisher)
        return json_null();
    const sp_input_stats_t *s = &in->st;
    bool video = s->vcodec[0] != '\0';
    bool audio = s->acodec[0] != '\0';
    /* size: the SPS first (what the decoder will show), metadata otherwise */
    int w = s->sps_width ? s->sps_width : s->width;
    int h = s->sps_height ? s->sps_height : s->height;
    double fps = s->have_window && s->hw_fps > 0 ? s->hw_fps
                 : s->meta_fps > 0               ? s->meta_fps
                                                 : s->sps_fps;
    json_t *v = json_null(), *a = json_null();
    if (video) {
        v = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "codec", s->vcodec, "width",
                      int_or_null(w), "height", int_or_null(h), "fps", num_or_null(fps, fps > 0),
                      "bitrateKbps", num_or_null(s->video_kbps, s->have_window),
                      "keyframeIntervalMs",
                      s->keyframes > 1 ? json_integer(s->key_interval_ms) : json_null());
        if (s->profile)
            json_object_set_new(v, "profile", json_integer(s->profile));
        if (s->level)
            json_object_set_new(v, "level", json_integer(s->level));
    }
    if (audio)
        a = json_pack("{s:s, s:o, s:o, s:o}", "codec", s->acodec, "sampleRate",
                      int_or_null(s->sample_rate), "channels", int_or_null(s->channels),
                      "bitrateKbps", num_or_null(s->audio_kbps, s->have_window));
    uint64_t up = s->connected_at_ms && now_mono_ms > s->connected_at_ms
                      ? now_mono_ms - s->connected_at_ms
                      : 0;
    return json_pack("{s:o, s:o, s:o, s:I, s:I, s:n, s:I}", "video", v, "audio", a,
                     "bitrateKbps",
                     num_or_null(s->video_kbps + s->audio_kbps, s->have_window), "uptimeMs",
                     (json_int_t)up, "lateFrames", (json_int_t)s->late_frames, "droppedFrames",
                     "windowMs", (json_int_t)HEALTH_WINDOW_MS);
}
