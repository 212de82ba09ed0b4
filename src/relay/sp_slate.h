/*
 * sp_slate: the "be right back" clips of disconnect protection. Pre-encoded
 * FLV files (scripts/gen_slates.sh: H.264 + AAC, closed GOP) are parsed once
 * into refcounted tags shared by every input and output; an output loops one
 * with continuous timestamps, paced by the media tick. Nothing is encoded.
 *
 * The timestamp arithmetic is pure (sp_slate_next, sp_splice_target) so it is
 * unit-tested without sockets. Timestamps are RTMP's 32-bit milliseconds:
 * every comparison is modulo 2^32.
 */
#ifndef SP_SLATE_H
#define SP_SLATE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/sp_relay_int.h"

#define SP_SLATE_MAX_BYTES (8u * 1024 * 1024) /* one clip file */
#define SP_SLATE_MAX 16                        /* clips in a set */

struct sp_slate_s {
    int width, height;
    double fps;
    sp_relay_tag_t vseq, aseq;   /* sequence headers (ts 0) */
    sp_relay_tag_t *tags;        /* frames, ts relative to the first keyframe, in order */
    size_t n;
    uint32_t dur;                /* loop length (ms): last video ts + one frame */
};

/** Empty set. */
sp_slate_set_t *sp_slate_set_create(void);
void sp_slate_set_free(sp_slate_set_t *s);
size_t sp_slate_set_count(const sp_slate_set_t *s);
/**
 * Adds a clip parsed from an FLV file's bytes (header, tags). It must start
 * with an AVC sequence header and a keyframe. 0, SP_EPROTO (malformed), SP_ELIMIT.
 */
int sp_slate_set_add_flv(sp_slate_set_t *s, int width, int height, double fps,
                         const uint8_t *p, size_t len);
/**
 * Loads dir/brb_{1280x720,1920x1080}_{30,60}.flv (scripts/gen_slates.sh). Missing or bad
 * files are logged and skipped; the set may be empty (then protection only keeps nothing).
 * Blocking file reads: call at start, before the loop runs.
 */
sp_slate_set_t *sp_slate_set_load(const char *dir);
/** The clip nearest to the input's size and frame rate (height first, then fps); NULL if empty.
 *  Unknown size (0) picks 1280x720; unknown fps picks 30. */
const sp_slate_t *sp_slate_pick(const sp_slate_set_t *s, int width, int height, double fps);

/** a < b modulo 2^32 (RTMP timestamps wrap). */
static inline int sp_ts_before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/**
 * The next slate tag due on cursor c: its output timestamp is
 * c->base + c->loop * dur + tag.ts; it is due when that is not after upto.
 * On true *out is the tag (data not referenced: the caller's queue takes its
 * own reference) with ts set to the output timestamp, and c advances (wrapping
 * to the next loop). False when the next tag is not due yet.
 */
bool sp_slate_next(const sp_slate_t *s, sp_slate_cursor_t *c, uint32_t upto,
                   sp_relay_tag_t *out);

/**
 * The output timestamp a splice (slate -> publisher) starts at: the output's
 * clock, anchor_out + (now_ms - anchor_ms) (real time elapsed since the
 * anchor), but never less than tail + min_step, where tail is the last
 * timestamp already queued or sent to the destination (so timestamps stay
 * strictly increasing even when the slate ran ahead of the clock).
 */
uint32_t sp_splice_target(uint32_t tail, uint32_t anchor_out, uint64_t anchor_ms,
                          uint64_t now_ms, uint32_t min_step);

#endif
