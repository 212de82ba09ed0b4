/*
 * sp_pubsub: the in-process topic bus (docs/internals/websocket.md).
 *
 * Topics use the seed's names (see sp_pubsub_topic_parse). publish() gives
 * the message the topic's next seq (1, 2, ...), encodes
 * {"topic","event","payload","seq"} ONCE as JSON and ONCE as a WebSocket text
 * frame (one sp_rbuf_t), and fans that same buffer out to every subscribed
 * socket (no per-socket copy) and to callback subscribers. The last
 * history_size (EVENT_HISTORY_SIZE) frames of every topic are kept in a ring,
 * so a reconnecting client sends {"type":"resume","topic","after_seq"} and
 * gets exactly what it missed, or a "gap" event first when the ring no
 * longer holds everything.
 *
 * Socket protocol (client -> server, handled through the ws hub's extension hook):
 *   {"type":"subscribe","topic":T}            ->
 * {"topic":T,"event":"subscribed","payload":{"seq":S},"seq":null}
 *   {"type":"unsubscribe","topic":T}          -> {"topic":T,"event":"unsubscribed",...}
 *   {"type":"resume","topic":T,"after_seq":A} -> [gap event] + missed frames + {"event":"resumed",
 *                                                "payload":{"after_seq":A,"replayed":n,"seq":S}}
 *   test mode only: {"type":"publish","topic":T,"event":E,"payload":P}
 * A refused subscribe gets {"topic":T,"event":"subscribe_error","payload":{"reason":...}}.
 * Multi-node only: a subscriber gets {"topic":T,"event":"gap","payload":{...},"seq":null}
 * before a message whose seq skips ones this node never received.
 *
 * Authorisation: a socket may join only the per-user topics of its own user
 * (the user id comes from the ws auth hook); global topics (livestream:global,
 * users_presence) and unknown names are refused (sp_pubsub_default_authorize).
 *
 * Multi-node (REDIS_URL, sp_pubsub_redis.h): a backend takes every publish,
 * Redis numbers it (one seq order per topic across nodes) and every node, the
 * publisher included, delivers it on receipt through sp_pubsub_deliver.
 * While the backend is down, publish delivers locally (next local seq).
 *
 * Fan-out pacing: callback subscribers run during publish; sockets (and frame subscribers)
 * are served by a walk over the topic's list: at most 64 during the publish, the rest from an
 * idle handle, at most 256 sockets per loop turn shared by the topics with a walk under way, so
 * a small topic's message is never queued behind another topic's 10,000-socket fan-out. Per
 * topic, order is kept: each socket gets the topic's pending frames oldest first, several at
 * once in ONE write when the publisher was faster than the walk; a socket subscribing mid-walk
 * gets only newer frames (its "subscribed" seq / resume replay covers the rest); one that closes
 * mid-walk is skipped. A topic holds at most 64 undelivered frames; one more finishes the walk
 * during that publish. Without a loop (sp_pubsub_new(NULL, ..)) a publish serves everyone.
 *
 * Loop thread only.
 */
#ifndef SP_PUBSUB_H
#define SP_PUBSUB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "net/sp_ws.h"

typedef struct sp_pubsub_s sp_pubsub_t;
typedef struct sp_pubsub_sub_s sp_pubsub_sub_t;

/* ---- topic names (pure) ---------------------------------------------------------- */
typedef enum {
    SP_TOPIC_INVALID = 0,
    SP_TOPIC_USER_STREAM,       /* user_stream:{user_id} */
    SP_TOPIC_USER_STREAM_STATS, /* user_stream:{user_id}:statistics */
    SP_TOPIC_PLATFORM,          /* platform:{platform}:{user_id} */
    SP_TOPIC_LIVESTREAM_GLOBAL, /* livestream:global */
    SP_TOPIC_CLOUDFLARE_INPUT,  /* cloudflare_input:{user_id} */
    SP_TOPIC_STREAM_LIFECYCLE,  /* stream_lifecycle:{user_id} */
    SP_TOPIC_WIDGET_CONFIG,     /* widget_config:{widget_type}:{user_id} */
    SP_TOPIC_ALERTBOX,          /* alertbox:{user_id} */
    SP_TOPIC_CHAT,              /* chat:{user_id} */
    SP_TOPIC_USERS_PRESENCE,    /* users_presence */
} sp_topic_kind_t;

#define SP_TOPIC_MAX 160

typedef struct {
    sp_topic_kind_t kind;
    sp_str_t user_id; /* empty for global topics */
    sp_str_t arg;     /* platform or widget_type; else empty */
} sp_topic_info_t;

/** Pure: classifies a topic name. Returns 0 or SP_EINVAL. Segments are [A-Za-z0-9_.@-]+. */
int sp_pubsub_topic_parse(const char *topic, size_t len, sp_topic_info_t *out);
/** Default authorisation: per-user topic whose user equals user_id. */
bool sp_pubsub_default_authorize(const char *user_id, unsigned conn_flags, const char *topic);

/* ---- bus ------------------------------------------------------------------------- */
typedef void (*sp_pubsub_cb)(const char *topic, const char *event, json_t *payload, uint64_t seq,
                             void *ud);
/** A frame subscriber gets the encoded WebSocket frame, paced and ordered like a socket. */
typedef void (*sp_pubsub_frame_cb)(const char *topic, sp_rbuf_t *frame, void *ud);

typedef struct {
    uint64_t published;
    uint64_t delivered; /* frames queued on sockets + callbacks run */
    uint64_t dropped;   /* sockets refused the frame (closing / slow) */
    uint64_t replayed;
    uint64_t gaps;
    uint64_t topics;
    uint64_t subscriptions;
    uint64_t deferred;      /* socket deliveries made after the publish (paced fan-out) */
    uint64_t active_topics; /* topics with a fan-out walk under way */
} sp_pubsub_stats_t;

sp_pubsub_t *sp_pubsub_new(uv_loop_t *loop, size_t history_size);
/** Caps each topic's history by the bytes of its frames as well (0: count only, the default):
 *  the oldest frames are dropped first, the newest is always kept; a resume from before the
 *  oldest kept frame gets a gap notice, as with the count cap. */
void sp_pubsub_set_history_bytes(sp_pubsub_t *ps, size_t bytes);
void sp_pubsub_free(sp_pubsub_t *ps);
/** Plugs the socket protocol (subscribe/resume/...) into the hub's extension hook. */
void sp_pubsub_attach(sp_pubsub_t *ps, sp_ws_hub_t *hub);

/** Callback subscriber; NULL if the topic name is invalid or too many topics. */
sp_pubsub_sub_t *sp_pubsub_subscribe(sp_pubsub_t *ps, const char *topic, sp_pubsub_cb cb,
                                     void *ud);
/** Frame subscriber (see sp_pubsub_frame_cb); NULL like sp_pubsub_subscribe. The callback may
 *  (un)subscribe and publish. Unsubscribe with sp_pubsub_unsubscribe. */
sp_pubsub_sub_t *sp_pubsub_subscribe_frames(sp_pubsub_t *ps, const char *topic,
                                            sp_pubsub_frame_cb cb, void *ud);
void sp_pubsub_unsubscribe(sp_pubsub_t *ps, sp_pubsub_sub_t *sub);

/**
 * Publishes (payload borrowed; NULL = null). Returns the seq given (> 0), 0 when a
 * backend took it (its seq is given by Redis and it is delivered on receipt), or
 * SP_EINVAL (bad topic / event), SP_ELIMIT (too many topics), SP_ETOOBIG (backend cap).
 */
int64_t sp_pubsub_publish(sp_pubsub_t *ps, const char *topic, const char *event, json_t *payload);
/** Delivers on this node only, with the topic's next local seq (bypasses the backend). */
int64_t sp_pubsub_publish_local(sp_pubsub_t *ps, const char *topic, const char *event,
                                json_t *payload);

/* ---- backend (multi-node) ------------------------------------------------------- */
typedef struct {
    /**
     * Takes a publish (cur_seq = this node's current seq of the topic). Returns 1 when
     * taken (it comes back through sp_pubsub_deliver), 0 to have it delivered locally
     * now (backend down), or a negative SP_E* error returned to the publisher.
     */
    int (*publish)(void *ud, const char *topic, const char *event, json_t *payload,
                   uint64_t cur_seq);
    void (*write_metrics)(void *ud, sp_buf_t *out);
    void (*free)(void *ud); /* run first by sp_pubsub_free */
    void *ud;
} sp_pubsub_backend_t;
void sp_pubsub_set_backend(sp_pubsub_t *ps, const sp_pubsub_backend_t *b);
/**
 * Delivers a message numbered by the backend. Returns 0, 1 (delivered after a jump:
 * live subscribers got a "gap" notice first), SP_EEXISTS (seq <= current: stale,
 * dropped), SP_EINVAL, SP_ELIMIT.
 */
int sp_pubsub_deliver(sp_pubsub_t *ps, const char *topic, uint64_t seq, const char *event,
                      json_t *payload);
/** Current seq of a topic (0 if none yet). */
uint64_t sp_pubsub_seq(const sp_pubsub_t *ps, const char *topic);

/** Called for each frame newer than after_seq, oldest first. */
typedef void (*sp_pubsub_replay_cb)(sp_rbuf_t *frame, uint64_t seq, void *ud);
typedef struct {
    size_t replayed;
    bool gap;            /* some messages after after_seq are no longer kept */
    uint64_t oldest_seq; /* oldest kept (0 if none) */
    uint64_t seq;        /* current */
} sp_pubsub_replay_t;
/** History walk (pure w.r.t. sockets). Returns 0 or SP_EINVAL. */
int sp_pubsub_replay(sp_pubsub_t *ps, const char *topic, uint64_t after_seq,
                     sp_pubsub_replay_cb cb, void *ud, sp_pubsub_replay_t *out);

void sp_pubsub_stats(const sp_pubsub_t *ps, sp_pubsub_stats_t *out);
void sp_pubsub_write_metrics(const sp_pubsub_t *ps, sp_buf_t *out);

#endif
