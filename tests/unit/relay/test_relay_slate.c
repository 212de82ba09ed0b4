/* Unit tests for disconnect protection's pure parts: parsing a slate FLV into a
 * loopable clip, the looping cursor (continuous, monotonic timestamps), the
 * splice target (slate -> publisher without a timestamp jump) and the choice of
 * the slate nearest to the input. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "core/sp_buf.h"
#include "core/sp_err.h"
#include "relay/sp_flv.h"
#include "relay/sp_slate.h"

static void put_tag(sp_buf_t *b, uint8_t type, uint32_t ts, const uint8_t *body, size_t n)
{
    uint8_t h[11] = { type, (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n,
                      (uint8_t)(ts >> 16), (uint8_t)(ts >> 8), (uint8_t)ts, (uint8_t)(ts >> 24),
                      0, 0, 0 };
    sp_buf_append(b, h, sizeof(h));
    sp_buf_append(b, body, n);
    uint32_t prev = (uint32_t)(11 + n);
    uint8_t p[4] = { (uint8_t)(prev >> 24), (uint8_t)(prev >> 16), (uint8_t)(prev >> 8),
                     (uint8_t)prev };
    sp_buf_append(b, p, 4);
}

static const uint8_t AVC_SH[] = { 0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1F };
static const uint8_t AAC_SH[] = { 0xAF, 0, 0x11, 0x90 };
static const uint8_t KEY[] = { 0x17, 1, 0, 0, 0, 0xAA };
static const uint8_t INTER[] = { 0x27, 1, 0, 0, 0, 0xBB };
static const uint8_t AAC[] = { 0xAF, 1, 0x21, 0x10 };
static const uint8_t META[] = { 2, 0, 10, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a' };

/* A 1 s, 30 fps clip like ffmpeg writes: video starts at 21 ms (audio priming), a keyframe
 * every 15 frames, AAC every 21 ms from 0 to a little past the video. */
static void make_flv(sp_buf_t *b, bool with_key)
{
    sp_buf_init(b, 0);
    const uint8_t hdr[13] = { 'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0 };
    sp_buf_append(b, hdr, sizeof(hdr));
    put_tag(b, SP_FLV_TAG_DATA, 0, META, sizeof(META));
    put_tag(b, SP_FLV_TAG_VIDEO, 0, AVC_SH, sizeof(AVC_SH));
    put_tag(b, SP_FLV_TAG_AUDIO, 0, AAC_SH, sizeof(AAC_SH));
    uint32_t a = 0;
    for (int i = 0; i < 30; i++) {
        uint32_t vts = 21 + (uint32_t)(i * 1000 / 30);
        while (a <= vts) {
            put_tag(b, SP_FLV_TAG_AUDIO, a, AAC, sizeof(AAC));
            a += 21;
        }
        bool key = with_key && i % 15 == 0;
        put_tag(b, SP_FLV_TAG_VIDEO, vts, key ? KEY : INTER, sizeof(KEY));
    }
    while (a <= 1050) {
        put_tag(b, SP_FLV_TAG_AUDIO, a, AAC, sizeof(AAC));
        a += 21;
    }
}

static sp_slate_set_t *one_clip(void)
{
    sp_buf_t b;
    make_flv(&b, true);
    sp_slate_set_t *s = sp_slate_set_create();
    cr_assert_eq(sp_slate_set_add_flv(s, 1280, 720, 30, (const uint8_t *)b.p, b.len), 0);
    sp_buf_cleanup(&b);
    return s;
}

Test(relay_slate, parse_makes_a_loopable_clip)
{
    sp_slate_set_t *s = one_clip();
    const sp_slate_t *c = sp_slate_pick(s, 1280, 720, 30);
    cr_assert_not_null(c);
    cr_assert_not_null(c->vseq.data);
    cr_assert_not_null(c->aseq.data);
    cr_assert(c->vseq.flags & SP_TAG_SEQ);
    cr_assert_eq(c->tags[0].type, SP_FLV_TAG_VIDEO, "the clip starts on its keyframe");
    cr_assert(c->tags[0].flags & SP_TAG_KEY);
    cr_assert_eq(c->tags[0].ts, 0);
    /* 30 frames 33-34 ms apart: last at 966 (987 - 21), plus the mean interval (33): 999 */
    cr_assert_eq(c->dur, 999, "dur %u", c->dur);
    size_t nv = 0, nk = 0;
    for (size_t i = 0; i < c->n; i++) {
        cr_assert(c->tags[i].ts < c->dur, "tag %zu at %u is inside the loop", i, c->tags[i].ts);
        cr_assert(c->tags[i].flags & SP_TAG_FRAME);
        cr_assert_neq(c->tags[i].type, SP_FLV_TAG_DATA, "the file's onMetaData is left out");
        if (i > 0)
            cr_assert(c->tags[i].ts >= c->tags[i - 1].ts, "in timestamp order");
        if (c->tags[i].type == SP_FLV_TAG_VIDEO) {
            nv++;
            nk += (c->tags[i].flags & SP_TAG_KEY) ? 1 : 0;
        }
    }
    cr_assert_eq(nv, 30);
    cr_assert_eq(nk, 2);
    sp_slate_set_free(s);
}

Test(relay_slate, malformed_files_are_refused)
{
    sp_slate_set_t *s = sp_slate_set_create();
    sp_buf_t b;
    make_flv(&b, true);
    const uint8_t *p = (const uint8_t *)b.p;
    cr_assert_eq(sp_slate_set_add_flv(s, 1280, 720, 30, p, b.len - 7), SP_EPROTO, "truncated");
    cr_assert_eq(sp_slate_set_add_flv(s, 1280, 720, 30, (const uint8_t *)"GIF89a", 6),
                 SP_EPROTO);
    b.p[0] = 'X';
    cr_assert_eq(sp_slate_set_add_flv(s, 1280, 720, 30, p, b.len), SP_EPROTO, "not FLV");
    sp_buf_cleanup(&b);
    make_flv(&b, false);
    p = (const uint8_t *)b.p;
    cr_assert_eq(sp_slate_set_add_flv(s, 1280, 720, 30, p, b.len), SP_EPROTO, "no keyframe");
    sp_buf_cleanup(&b);
    cr_assert_eq(sp_slate_set_count(s), 0);
    cr_assert_null(sp_slate_pick(s, 1280, 720, 30));
    sp_slate_set_free(s);
}

/* Loops the clip for 10 s of output: video timestamps step by one frame interval across
 * every loop boundary, audio never goes back, and nothing is due before its time. */
Test(relay_slate, loop_timestamps_are_continuous_and_monotonic)
{
    sp_slate_set_t *s = one_clip();
    const sp_slate_t *c = sp_slate_pick(s, 0, 0, 0);
    sp_slate_cursor_t cur = { .on = true, .clip = c, .base = 5000 };
    uint32_t last_v = 0, last_a = 0, nv = 0, nkeys = 0;
    bool have_v = false, have_a = false;
    for (uint32_t now = 0; now <= 10000; now += 200) {
        sp_relay_tag_t t;
        while (sp_slate_next(c, &cur, 5000 + now, &t)) {
            cr_assert(!sp_ts_before(5000 + now, t.ts), "not due yet: %u at %u", t.ts, now);
            if (t.type == SP_FLV_TAG_VIDEO) {
                if (have_v) {
                    uint32_t d = t.ts - last_v;
                    cr_assert(d == 33 || d == 34, "video step %u at %u", d, t.ts);
                }
                last_v = t.ts;
                have_v = true;
                nv++;
                nkeys += (t.flags & SP_TAG_KEY) ? 1 : 0;
            } else {
                if (have_a)
                    cr_assert(t.ts > last_a, "audio %u after %u", t.ts, last_a);
                last_a = t.ts;
                have_a = true;
            }
        }
    }
    cr_assert_eq(nv, 301, "10 s at 30 fps, both ends included: %u", nv);
    cr_assert_eq(nkeys, 21);
    cr_assert_eq(cur.loop, 10);
    sp_slate_set_free(s);
}

Test(relay_slate, loop_timestamps_wrap_modulo_2_32)
{
    sp_slate_set_t *s = one_clip();
    const sp_slate_t *c = sp_slate_pick(s, 0, 0, 0);
    sp_slate_cursor_t cur = { .on = true, .clip = c, .base = 0xFFFFFF00u };
    sp_relay_tag_t t;
    uint32_t last = 0;
    size_t n = 0;
    while (sp_slate_next(c, &cur, 0xFFFFFF00u + 2000, &t)) {
        if (n++ > 0)
            cr_assert(sp_ts_before(last, t.ts) || last == t.ts, "%u then %u", last, t.ts);
        last = t.ts;
    }
    cr_assert(last < 0x1000, "wrapped past 2^32: %u", last);
    cr_assert(n > 100);
    sp_slate_set_free(s);
}

Test(relay_slate, splice_target_follows_real_time_never_goes_back)
{
    /* slate started at output 10000 at loop time 50000; the encoder is back 20 s later */
    cr_assert_eq(sp_splice_target(29900, 10000, 50000, 70000, 50), 30000);
    /* the slate ran a tick ahead of the clock: the tail wins, plus the step */
    cr_assert_eq(sp_splice_target(30150, 10000, 50000, 70000, 50), 30200);
    /* a clock that went backwards counts as no time elapsed */
    cr_assert_eq(sp_splice_target(9000, 10000, 50000, 40000, 50), 10000);
    /* wrap: the anchor just below 2^32 */
    cr_assert_eq(sp_splice_target(0xFFFFFFF0u, 0xFFFFFF00u, 0, 1000, 50), 0xFFFFFF00u + 1000);
    cr_assert_eq(sp_splice_target(0xFFFFFFF0u, 0xFFFFFF00u, 0, 10, 50), 0xFFFFFFF0u + 50);
}

Test(relay_slate, pick_nearest_size_then_fps)
{
    sp_buf_t b;
    make_flv(&b, true);
    sp_slate_set_t *s = sp_slate_set_create();
    const int sizes[4][3] = { { 1280, 720, 30 }, { 1280, 720, 60 }, { 1920, 1080, 30 },
                              { 1920, 1080, 60 } };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sp_slate_set_add_flv(s, sizes[i][0], sizes[i][1], sizes[i][2],
                                          (const uint8_t *)b.p, b.len), 0);
    sp_buf_cleanup(&b);
    const sp_slate_t *c = sp_slate_pick(s, 640, 360, 30);
    cr_assert_eq(c->height, 720);
    cr_assert_eq(c->fps, 30);
    c = sp_slate_pick(s, 1920, 1080, 59.94);
    cr_assert_eq(c->height, 1080);
    cr_assert_eq(c->fps, 60);
    c = sp_slate_pick(s, 2560, 1440, 25);
    cr_assert_eq(c->height, 1080);
    cr_assert_eq(c->fps, 30);
    c = sp_slate_pick(s, 1280, 720, 50);
    cr_assert_eq(c->height, 720);
    cr_assert_eq(c->fps, 60);
    c = sp_slate_pick(s, 0, 0, 0);
    cr_assert_eq(c->height, 720, "unknown size: 720p30");
    cr_assert_eq(c->fps, 30);
    sp_slate_set_free(s);
}

/* The shipped slates (scripts/gen_slates.sh) load, start on a keyframe, and loop in 4 s. */
Test(relay_slate, shipped_slates_load)
{
    sp_slate_set_t *s = sp_slate_set_load("assets/slates");
    cr_assert_eq(sp_slate_set_count(s), 4);
    const int want[4][2] = { { 720, 30 }, { 720, 60 }, { 1080, 30 }, { 1080, 60 } };
    for (int i = 0; i < 4; i++) {
        const sp_slate_t *c = sp_slate_pick(s, 0, want[i][0], want[i][1]);
        cr_assert_eq(c->height, want[i][0]);
        cr_assert_eq(c->fps, want[i][1]);
        cr_assert(c->tags[0].flags & SP_TAG_KEY);
        cr_assert_eq(c->dur, 4000, "%dp%d loops in %u ms", want[i][0], want[i][1], c->dur);
        size_t nv = 0;
        for (size_t k = 0; k < c->n; k++)
            nv += c->tags[k].type == SP_FLV_TAG_VIDEO;
        cr_assert_eq(nv, (size_t)(4 * want[i][1]));
    }
    sp_slate_set_free(s);
    sp_slate_set_t *none = sp_slate_set_load("/nonexistent-slates");
    cr_assert_eq(sp_slate_set_count(none), 0);
    sp_slate_set_free(none);
}
