/*
 * sp_ls_summary: a past (or running) stream's viewer chart series and summary, computed from
 * store rows. Pure: no I/O, no clock (the caller passes now_ms), no logging.
 *
 *   series:  {ts:[ms...], total:[n...], platforms:{twitch:[n|null...], ...}}   (one point per
 *            sampling tick, ts ascending; a platform without a sample at a tick is null)
 *   summary: {duration_ms, peak_viewers, avg_viewers, new_followers, new_subscribers,
 *             chat_messages, platforms:{twitch:{peak_viewers, avg_viewers, new_followers,
 *             new_subscribers, chat_messages}, ...}}
 *
 * Totals per tick are the sum over platforms (as sp_psup_viewers_final computes peak_viewers
 * and avg_viewers); averages are rounded half up. Subscribers count `subscription` and
 * `member` alerts as 1 and `gift_subscription` as its count (1 when absent).
 */
#ifndef SP_LS_SUMMARY_H
#define SP_LS_SUMMARY_H

#include <jansson.h>
#include <stdint.h>

/** Most sample rows read for one stream (about 5.5 hours of 1 s ticks on 4 platforms). */
#define SP_LS_SAMPLES_MAX 20000
/** Most alert rows read for one stream's summary. */
#define SP_LS_SUMMARY_ALERTS_MAX 20000

/** rows: [{ts, platform, viewers}] ordered by ts. Returns a new reference (never NULL). */
json_t *sp_ls_viewer_series(const json_t *rows);

/**
 * stream: the stream row ({started_at, ended_at, ...}); series: sp_ls_viewer_series's result;
 * chat_rows: [{platform, n}] (chat messages per platform); alert_rows: [{platform, payload}]
 * (payload an object or its JSON text). Returns a new reference (never NULL).
 */
json_t *sp_ls_stream_summary(const json_t *stream, const json_t *series, const json_t *chat_rows,
                             const json_t *alert_rows, int64_t now_ms);

#endif
