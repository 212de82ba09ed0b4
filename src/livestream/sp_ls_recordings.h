/*
 * sp_ls_recordings: the control plane's view of recordings made by the built-in relay
 * (src/relay/sp_recorder.h): DATA_DIR/recordings/{user}/{uid}.flv with a sidecar
 * {uid}.json. Listing and retention read the disk on the thread pool, never on the loop;
 * callbacks run on the loop. Matching recordings to streams is pure.
 */
#ifndef SP_LS_RECORDINGS_H
#define SP_LS_RECORDINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/** true iff s is a name usable as a path segment: 1-64 of [A-Za-z0-9_-]. */
bool sp_ls_rec_name_ok(const char *s);

/**
 * list: array of {id, file, bytes, duration_ms, state, error?, started_ms, ended_ms?,
 * input_uid}, newest first (bytes from the .flv itself). err is 0 (a user with no
 * directory has an empty list) or a negative code; list is NULL on error and owned by the
 * callback otherwise.
 */
typedef void (*sp_ls_rec_list_cb)(int err, json_t *list, void *ud);
int sp_ls_recordings_list(uv_loop_t *loop, const char *data_dir, const char *user_id,
                          sp_ls_rec_list_cb cb, void *ud);

/**
 * Pure: sets "stream_id" on each recording of recs to the id of the stream of streams (rows
 * {id, started_at, ended_at} in Unix ms; ended_at null = still live) that overlaps it most
 * in time, or leaves it unset. now_ms closes open intervals.
 */
void sp_ls_recordings_match(json_t *recs, const json_t *streams, int64_t now_ms);

/**
 * Pure: a Range header against a file of size bytes. Returns 1 and [start, end) for one
 * satisfiable range ("bytes=a-b", "bytes=a-", "bytes=-n"), 0 (send everything) when there is
 * no header or it is malformed or asks for several ranges, -1 when unsatisfiable (416).
 */
int sp_ls_rec_range(const char *header, int64_t size, int64_t *start, int64_t *end);

/** Synchronous (thread pool): deletes recordings (.flv and .json) whose .flv was last
 *  written before cutoff_ms. Returns how many were deleted. */
int sp_ls_recordings_sweep(const char *data_dir, int64_t cutoff_ms);

/** Retention: every interval_ms (and once soon after start) a sweep on the thread pool
 *  deletes recordings older than days. days 0: nothing is ever deleted (no timer). */
typedef struct sp_ls_retention_s sp_ls_retention_t;
sp_ls_retention_t *sp_ls_retention_start(uv_loop_t *loop, const char *data_dir, int64_t days,
                                         uint64_t interval_ms);
/** Stops the timer; a sweep in flight finishes and frees itself. NULL-safe. */
void sp_ls_retention_free(sp_ls_retention_t *rt);

#endif
