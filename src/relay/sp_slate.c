/*
 * sp_slate: "be right back" clips (see sp_slate.h). An FLV file is a 9-byte
 * header, then tags (type, 24-bit size, 24+8-bit timestamp, stream id, body,
 * 32-bit previous size). Each tag becomes one refcounted buffer, shared by
 * every output that loops the clip.
 */
#include "relay/sp_slate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "relay/sp_flv.h"

struct sp_slate_set_s {
    sp_slate_t clips[SP_SLATE_MAX];
    size_t n;
};

sp_slate_set_t *sp_slate_set_create(void)
{
    return sp_calloc(1, sizeof(sp_slate_set_t));
}

static void clip_clear(sp_slate_t *c)
{
    sp_tag_clear(&c->vseq);
    sp_tag_clear(&c->aseq);
    for (size_t i = 0; i < c->n; i++)
        sp_tag_clear(&c->tags[i]);
    sp_free(c->tags);
    memset(c, 0, sizeof(*c));
}

void sp_slate_set_free(sp_slate_set_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        clip_clear(&s->clips[i]);
    sp_free(s);
}

size_t sp_slate_set_count(const sp_slate_set_t *s)
{
    return s ? s->n : 0;
}

static uint32_t rd24(const uint8_t *p)
{
    return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | p[2];
}

/* Parses the tags of an FLV file into c (frames in file order, timestamps as in the file). */
static int parse_flv(sp_slate_t *c, const uint8_t *p, size_t len)
{
    if (len < 13 || memcmp(p, "FLV", 3) != 0)
        return SP_EPROTO;
    size_t off = ((size_t)p[5] << 24 | (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8]) + 4;
    size_t cap = 0;
    while (off < len) {
        if (len - off < 11)
            return SP_EPROTO;
        const uint8_t *h = p + off;
        uint8_t type = h[0] & 0x1f;
        uint32_t size = rd24(h + 1);
        uint32_t ts = rd24(h + 4) | ((uint32_t)h[7] << 24);
        if (len - off - 11 < (size_t)size + 4)
            return SP_EPROTO;
        const uint8_t *body = h + 11;
        off += 11 + (size_t)size + 4;
        if (type != SP_FLV_TAG_AUDIO && type != SP_FLV_TAG_VIDEO)
            continue; /* onMetaData of the file (duration, filesize): not for a live stream */
        sp_flv_info_t info;
        if (sp_flv_classify(type, body, size, &info) != 0)
            continue;
        sp_relay_tag_t t = { .type = type, .ts = ts };
        if (info.seq_header) {
            sp_relay_tag_t *dst = type == SP_FLV_TAG_VIDEO ? &c->vseq : &c->aseq;
            t.flags = SP_TAG_SEQ;
            t.ts = 0;
            sp_tag_clear(dst);
            t.data = sp_rbuf_new(body, size);
            *dst = t;
            continue;
        }
        if (!info.is_frame)
            continue;
        if (c->n >= 100000)
            return SP_ELIMIT;
        t.flags = SP_TAG_FRAME;
        if (type == SP_FLV_TAG_VIDEO && info.keyframe)
            t.flags |= SP_TAG_KEY;
        if (c->n == cap) {
            cap = cap ? cap * 2 : 256;
            c->tags = sp_realloc(c->tags, cap * sizeof(*c->tags));
        }
        t.data = sp_rbuf_new(body, size);
        c->tags[c->n++] = t;
    }
    return 0;
}

/*
 * Makes the clip loopable: starts at the first video keyframe (timestamp 0),
 * drops what comes before it and audio past the loop length, which is the
 * last video timestamp plus one frame interval.
 */
static int normalise(sp_slate_t *c)
{
    size_t k = 0;
    while (k < c->n && !(c->tags[k].flags & SP_TAG_KEY))
        k++;
    if (k == c->n || !c->vseq.data)
        return SP_EPROTO;
    uint32_t t0 = c->tags[k].ts, last_v = 0, first_v = 0, nv = 0;
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        sp_relay_tag_t t = c->tags[i];
        if (i < k || sp_ts_before(t.ts, t0)) {
            sp_tag_clear(&t);
            continue;
        }
        t.ts -= t0;
        if (t.type == SP_FLV_TAG_VIDEO) {
            if (nv++ == 0)
                first_v = t.ts;
            last_v = t.ts;
        }
        c->tags[w++] = t;
    }
    c->n = w;
    uint32_t step = nv > 1 ? (last_v - first_v + (nv - 1) / 2) / (nv - 1) : 33;
    if (step == 0)
        step = 1;
    c->dur = last_v + step;
    w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->tags[i].type == SP_FLV_TAG_AUDIO && c->tags[i].ts >= c->dur)
            sp_tag_clear(&c->tags[i]);
        else
            c->tags[w++] = c->tags[i];
    }
    c->n = w;
    /* file order is interleaved by timestamp already; keep it stable but make sure */
    for (size_t i = 1; i < c->n; i++)
        if (c->tags[i].ts < c->tags[i - 1].ts) {
            sp_relay_tag_t t = c->tags[i];
            size_t j = i;
            while (j > 0 && c->tags[j - 1].ts > t.ts) {
                c->tags[j] = c->tags[j - 1];
                j--;
            }
            c->tags[j] = t;
        }
    return 0;
}

int sp_slate_set_add_flv(sp_slate_set_t *s, int width, int height, double fps,
                         const uint8_t *p, size_t len)
{
    if (s->n >= SP_SLATE_MAX || len > SP_SLATE_MAX_BYTES)
        return SP_ELIMIT;
    sp_slate_t *c = &s->clips[s->n];
    memset(c, 0, sizeof(*c));
    int rc = parse_flv(c, p, len);
    if (rc == 0)
        rc = normalise(c);
    if (rc != 0) {
        clip_clear(c);
        return rc;
    }
    c->width = width;
    c->height = height;
    c->fps = fps;
    s->n++;
    return 0;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? SP_ENOTFOUND : SP_EIO;
    uint8_t *buf = sp_malloc(SP_SLATE_MAX_BYTES + 1);
    size_t n = fread(buf, 1, SP_SLATE_MAX_BYTES + 1, f);
    int rc = ferror(f) ? SP_EIO : n > SP_SLATE_MAX_BYTES ? SP_ELIMIT : 0;
    fclose(f);
    if (rc != 0) {
        sp_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

sp_slate_set_t *sp_slate_set_load(const char *dir)
{
    static const struct { int w, h, fps; } want[] = {
        { 1280, 720, 30 }, { 1280, 720, 60 }, { 1920, 1080, 30 }, { 1920, 1080, 60 },
    };
    sp_slate_set_t *s = sp_slate_set_create();
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/brb_%dx%d_%d.flv", dir, want[i].w, want[i].h,
                 want[i].fps);
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc = read_file(path, &buf, &len);
        if (rc == 0) {
            rc = sp_slate_set_add_flv(s, want[i].w, want[i].h, want[i].fps, buf, len);
            sp_free(buf);
        }
        if (rc != 0)
            sp_warn("relay", "slate not loaded", "path=\"%s\" err=%s", path, sp_strerror(rc));
    }
    sp_info("relay", "slates loaded", "dir=\"%s\" count=%zu", dir, s->n);
    return s;
}

const sp_slate_t *sp_slate_pick(const sp_slate_set_t *s, int width, int height, double fps)
{
    if (!s || s->n == 0)
        return NULL;
    (void)width;
    int h = height > 0 ? height : 720;
    double f = fps > 0 ? fps : 30;
    const sp_slate_t *best = NULL;
    double best_score = 0;
    for (size_t i = 0; i < s->n; i++) {
        const sp_slate_t *c = &s->clips[i];
        double dh = c->height > h ? c->height - h : h - c->height;
        double df = c->fps > f ? c->fps - f : f - c->fps;
        double score = dh * 1000.0 + df; /* size first, then frame rate */
        if (!best || score < best_score) {
            best = c;
            best_score = score;
        }
    }
    return best;
}

bool sp_slate_next(const sp_slate_t *s, sp_slate_cursor_t *c, uint32_t upto,
                   sp_relay_tag_t *out)
{
    if (!s || s->n == 0 || s->dur == 0)
        return false;
    if (c->idx >= s->n) {
        c->idx = 0;
        c->loop++;
    }
    const sp_relay_tag_t *t = &s->tags[c->idx];
    uint32_t ts = c->base + c->loop * s->dur + t->ts;
    if (sp_ts_before(upto, ts))
        return false;
    *out = *t;
    out->ts = ts;
    c->idx++;
    return true;
}

uint32_t sp_splice_target(uint32_t tail, uint32_t anchor_out, uint64_t anchor_ms,
                          uint64_t now_ms, uint32_t min_step)
{
    uint64_t el = now_ms > anchor_ms ? now_ms - anchor_ms : 0;
    if (el > 0x7fffffffu)
        el = 0x7fffffffu;
    uint32_t clock = anchor_out + (uint32_t)el;
    uint32_t floor = tail + min_step;
    return sp_ts_before(clock, floor) ? floor : clock;
}
