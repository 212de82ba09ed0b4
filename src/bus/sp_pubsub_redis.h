/*
 * sp_pubsub_redis: multi-node PubSub backend over Redis pub/sub (REDIS_URL).
 * Design and guarantees: docs/internals/websocket.md, "Multi-node".
 *
 * Every publish runs one Lua script on Redis that raises the topic's counter
 * (streampai:seq:<topic>) to max(counter, publisher's seq) + 1 and PUBLISHes the
 * envelope (sp_redis_msg.h) with that seq on one channel (streampai:bus), atomically,
 * so the channel order is the seq order. Every node (the publisher too) subscribes to
 * the channel and delivers on receipt (sp_pubsub_deliver): one order per topic on
 * every node, every node keeps every topic's history ring, so resume works anywhere.
 *
 * Two hiredis async connections (commands, subscriber) on the app's libuv loop through
 * a patched copy of the libuv adapter (sp_hiredis_libuv.h). Host names are resolved
 * with uv_getaddrinfo first (hiredis would resolve synchronously). Connect timeout,
 * command timeout and PING keepalive run on our own uv_timer (hiredis 0.14 has none).
 * Failure -> both connections dropped, reconnect with sp_backoff; while not connected,
 * publishes are delivered locally only (next local seq) and their topics' counters
 * are raised on reconnect. Loop thread only.
 */
#ifndef SP_PUBSUB_REDIS_H
#define SP_PUBSUB_REDIS_H

#include <stdbool.h>
#include <uv.h>

#include "bus/sp_pubsub.h"

typedef struct sp_pubsub_redis_s sp_pubsub_redis_t;

/**
 * Parses url, installs itself as ps's backend (ps owns it: sp_pubsub_free frees it)
 * and starts connecting. Returns 0, or SP_EINVAL for an unusable URL (ps unchanged).
 */
int sp_pubsub_redis_attach(sp_pubsub_t *ps, uv_loop_t *loop, const char *url);

#endif
