/*
 * sp_rtmp_push: the push state machine of relay outputs (one connection per
 * output: resolve, address policy, connect, TLS, RTMP via sp_rtmp_client,
 * reconnect with backoff, health, queueing, batched writes). Loop thread only.
 * The model it works on (sp_relay_output_t, sp_relay_t) is sp_relay_int.h's.
 */
#ifndef SP_RTMP_PUSH_H
#define SP_RTMP_PUSH_H

#include "relay/sp_relay_int.h"

/** Input live and output enabled: connect (resolving and checking the address again). */
void sp_push_start(sp_relay_output_t *o);
/** Ends the connection gracefully (FCUnpublish, deleteStream, close_notify); state idle. */
void sp_push_stop(sp_relay_output_t *o, const char *why);
/** Queues a tag (written by sp_push_flush: one batch per media tick). */
void sp_push_feed(sp_relay_output_t *o, const sp_relay_tag_t *t);
/** Writes what is queued; over the queue bounds whole GOPs are dropped. */
void sp_push_flush(sp_relay_output_t *o);
/**
 * Disconnect protection: o goes on the slate clip (its sequence headers first, then its frames
 * from sp_push_slate_tick) continuing o's timestamps; the publisher's media is held back until
 * its next keyframe, where o splices back (metadata, sequence headers, keyframe) without a
 * timestamp jump. False (nothing done) if o is not forwarding. Already on the slate: true.
 */
bool sp_push_slate_begin(sp_relay_output_t *o, const sp_slate_t *clip, uint64_t now_ms);
/** Queues the slate tags due by now_ms + lead_ms (the media tick). */
void sp_push_slate_tick(sp_relay_output_t *o, uint64_t now_ms, uint32_t lead_ms);
/** Before freeing o. */
void sp_push_cleanup(sp_relay_output_t *o);
/** The client TLS context of rtmps:// outputs (RELAY_CA_FILE or the system store). */
int sp_push_tls_init(sp_relay_t *r);
void sp_push_tls_free(sp_relay_t *r);
/** Frees pump's scratch space, at exit. */
void sp_push_batch_free(void);

#endif
