/*
 * sp_recorder: the relay's recordings. While a live input's recording mode is
 * "automatic", everything its publisher sends is written to
 * DATA_DIR/recordings/{user}/{recording uid}.flv (FLV header + tags), with a
 * sidecar {recording uid}.json that says what the file is (input, times,
 * duration, size, state, error). The control plane lists recordings from the
 * sidecars.
 *
 * Writes never run on the loop: tags queue on the loop (by reference, no copy)
 * and one thread-pool job at a time per recording writes the batch with writev.
 * The queue is bounded (SP_REC_QUEUE_MAX_BYTES); over it, or on a write error
 * (ENOSPC, EFBIG...), the recording stops with state "error" and a message, the
 * file keeps what was written, and the live outputs never notice.
 *
 * A publisher that leaves pauses the recording; one that comes back within the
 * input's timeout (recording.timeoutSeconds, 0 = RECORDING_TIMEOUT_SECONDS)
 * continues the same file, its timestamps following on from the last written
 * one. After the timeout, on input deletion or relay shutdown the recording
 * ends. Webhooks live_input.recording_started / live_input.recording_ended
 * carry data.recording {uid, file, bytes, duration_ms, state, error}.
 */
#ifndef SP_RECORDER_H
#define SP_RECORDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "relay/sp_relay_int.h"

#define SP_REC_QUEUE_MAX_BYTES (32u * 1024 * 1024)

/** "off" | "automatic" -> 0 | 1; -1 for anything else. */
int sp_rec_mode_parse(const char *s);
const char *sp_rec_mode_name(int mode);

/** Pure: the user directory name for meta.user_id (1-64 of [A-Za-z0-9_-]), else "_". */
const char *sp_rec_user_dir(const json_t *meta);

/** Media-path hooks (sp_relay_media.c). */
void sp_rec_input_live(sp_relay_input_t *in);
void sp_rec_input_tag(sp_relay_input_t *in, const sp_relay_tag_t *t);
void sp_rec_input_gone(sp_relay_input_t *in);
/** The publisher's metadata arrived (sp_relay_input_metadata). */
void sp_rec_input_meta(sp_relay_input_t *in);
/** The media tick: hands what is queued to the writer. */
void sp_rec_input_flush(sp_relay_input_t *in);
/** The input is deleted (or the relay stops): its recording ends now. */
void sp_rec_input_detach(sp_relay_input_t *in);
/** The mode changed (API PUT): off ends a recording at once; automatic starts one if live. */
void sp_rec_input_mode_changed(sp_relay_input_t *in);

/** The input's "recording" object for the API: Cloudflare's fields plus status, error, file,
 *  bytes, duration_ms of the current (or last) recording. */
json_t *sp_rec_input_json(const sp_relay_input_t *in);

/** Counters for /metrics. */
void sp_rec_counters(uint64_t *started, uint64_t *errors, uint64_t *bytes);

/** Pure: the FLV tag header (11 bytes) for type, payload size and timestamp. */
void sp_rec_flv_tag_header(uint8_t out[11], uint8_t type, uint32_t size, uint32_t ts);

#endif
