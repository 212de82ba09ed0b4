/*
 * sp_relay_int: internal model of the relay shared by its modules (ingest,
 * push, API, store). Not a public API: only src/relay includes it.
 *
 * A live input (uid, stream key, outputs) is configuration; while a publisher
 * is connected it also holds the media cache: metadata, sequence headers and
 * the GOP from the last keyframe, as refcounted tags shared by every output.
 */
#ifndef SP_RELAY_INT_H
#define SP_RELAY_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_backoff.h"
#include "core/sp_buf.h"
#include "core/sp_config.h"
#include "net/sp_router.h"
#include "net/sp_tls.h"
#include "relay/sp_relay.h"

#define SP_RELAY_UID_LEN 33  /* 32 hex + NUL */
#define SP_RELAY_GOP_MAX_BYTES (16u * 1024 * 1024)
#define SP_RELAY_GOP_MAX_TAGS 4096
#define SP_RELAY_MAX_OUTPUTS 128 /* Cloudflare allows 50 */

/* One media message (FLV tag) shared by reference. */
typedef struct {
    uint8_t type;        /* 8 audio, 9 video, 18 data */
    uint8_t flags;       /* SP_TAG_* */
    uint32_t ts;         /* publisher timestamp (ms) */
    sp_rbuf_t *data;     /* payload */
} sp_relay_tag_t;

#define SP_TAG_KEY 1u
#define SP_TAG_SEQ 2u
#define SP_TAG_FRAME 4u

typedef enum {
    SP_RELAY_OUT_IDLE = 0,
    SP_RELAY_OUT_CONNECTING,
    SP_RELAY_OUT_FORWARDING,
    SP_RELAY_OUT_ERROR
} sp_relay_out_state_t;

typedef struct sp_relay_s sp_relay_t;
typedef struct sp_relay_input_s sp_relay_input_t;
typedef struct sp_relay_output_s sp_relay_output_t;
typedef struct sp_push_conn_s sp_push_conn_t;
typedef struct sp_ingest_conn_s sp_ingest_conn_t;
typedef struct sp_slate_s sp_slate_t;         /* relay/sp_slate.h */
typedef struct sp_slate_set_s sp_slate_set_t;

/* Where an output is in the "be right back" slate (disconnect protection, sp_slate.h). */
typedef struct {
    bool on;                 /* fed the slate: the publisher's media is held back */
    const sp_slate_t *clip;
    size_t idx;              /* next tag of the clip */
    uint32_t loop;           /* loops done */
    uint32_t base;           /* output timestamp of the clip's first loop */
    uint64_t start_ms;       /* loop clock (ms) at base */
} sp_slate_cursor_t;

/* A bounded FIFO of tags (ring). */
typedef struct {
    sp_relay_tag_t *v;
    size_t cap, head, n;
    size_t bytes;
} sp_tagq_t;

struct sp_relay_output_s {
    char uid[SP_RELAY_UID_LEN];
    char *url;
    char *stream_key;
    bool enabled;
    sp_relay_input_t *input;
    sp_relay_output_t *next;
    /* health */
    sp_relay_out_state_t state;
    char last_error[256];
    uint64_t bytes;
    uint64_t reconnects;
    uint64_t dropped_gops;
    uint64_t dropped_tags;
    uint64_t attempts;
    /* connection */
    sp_push_conn_t *conn;
    uv_timer_t *retry;     /* reconnect timer (heap, closed on free) */
    sp_backoff_t backoff;
    sp_tagq_t q;           /* tags waiting to be written */
    bool need_key;         /* skip until the next video keyframe */
    bool have_base;
    uint32_t ts_base;
    uint32_t last_out_ts;
    uint64_t forwarding_since;
    sp_slate_cursor_t slate; /* disconnect protection */
};

typedef struct {
    uint64_t bytes_in;
    uint64_t video_frames, audio_frames;
    uint64_t keyframes;
    uint32_t last_key_ts;
    uint32_t key_interval_ms;
    uint32_t first_ts, last_ts;
    bool have_ts;
    /* windowed rate */
    uint64_t win_start_ms, win_bytes, win_frames;
    double bitrate_kbps, fps;
    char vcodec[16], acodec[16];
    int width, height;
    double meta_fps;
    uint64_t connected_at_ms;
    /* input health (sp_relay_health.c): 5 s windows per track, sequence-header details */
    uint64_t hw_start_ms, hw_vbytes, hw_abytes, hw_vframes;
    double video_kbps, audio_kbps, hw_fps;
    bool have_window;
    int sps_width, sps_height, profile, level;
    double sps_fps;
    int sample_rate, channels;
    uint32_t last_vts, last_ats, hw_first_vts;
    uint64_t late_frames; /* frames whose timestamp went back on their track */
} sp_input_stats_t;

struct sp_relay_input_s {
    char uid[SP_RELAY_UID_LEN];
    char key[80];
    json_t *meta;          /* free-form, as Cloudflare */
    bool enabled;
    char created[40], modified[40];
    int state;             /* 0 never connected, 1 connected, 2 disconnected, 3 errored */
    char reason[32];
    int64_t state_since_ms; /* wall */
    sp_relay_output_t *outputs;
    size_t n_outputs;
    sp_relay_input_t *next;
    sp_relay_t *relay;
    /* live */
    sp_ingest_conn_t *publisher;
    sp_relay_tag_t meta_tag;     /* "@setDataFrame" "onMetaData" {...} ready to send */
    sp_relay_tag_t vseq, aseq;
    sp_tagq_t gop;               /* from the last keyframe */
    bool gop_valid;
    bool has_video;
    sp_input_stats_t st;
    /* disconnect protection: outputs stay connected on the slate while the publisher is away */
    bool protect;                /* "disconnectProtection" (default on) */
    const sp_slate_t *slate;     /* non-NULL while some output is on the slate */
    uint64_t slate_since_ms, slate_until_ms; /* loop clock */
    uint64_t slates;             /* times the slate was shown */
    void *previews; /* HTTP-FLV preview viewers (sp_relay_preview.c) */
};

struct sp_relay_s {
    uv_loop_t *loop;
    const sp_config_t *cfg;
    sp_relay_input_t *inputs;
    size_t n_inputs;
    char store_path[1024];
    bool store_busy, store_dirty;
    bool stopping;
    /* counters */
    uint64_t bytes_in, bytes_out, dropped_gops, dropped_tags, reconnects;
    uint64_t ingest_rejected;
    void *ingest;   /* sp_rtmp_server_t */
    void *api;      /* sp_relay_api_t */
    sp_tls_ctx_t *tls_ctx; /* client TLS for rtmps:// outputs */
    /* Outputs' address policy (sp_relay_opts_t): checked on every connect. */
    bool allow_private;
    sp_relay_resolve_fn resolve;  /* NULL: uv_getaddrinfo */
    /* NULL: uv_tcp_connect. Only unit tests set it, to see where a connect would go. */
    int (*connect)(uv_connect_t *req, uv_tcp_t *tcp, const struct sockaddr *addr,
                   uv_connect_cb cb);
    void *webhook;  /* sp_curlm_t * */
    size_t out_queue_bytes;
    uint32_t out_queue_ms;
    uv_timer_t *flush_timer; /* the media tick */
    uint32_t tick_ms;
    size_t tick_refs;        /* publishers in tick mode, inputs on the slate */
    sp_slate_set_t *slates;  /* loaded once (RELAY_SLATE_DIR), shared by every input */
};

/*
 * The media tick (RELAY_TICK_MS, r->tick_ms). While a publisher is live the
 * relay works in ticks: each tick drains every publisher socket
 * (sp_rtmp_server_drain), hands the tags to the outputs and writes each
 * output's batch with one writev. One wakeup per tick however many messages
 * arrived or outputs exist; most of a relay's CPU on a quiet machine is the
 * cost of waking up, so this is where it is saved. The latency it adds (at most
 * one tick) is far below what RTMP players and platform ingests buffer.
 */
#define SP_RELAY_TICK_MS_DEFAULT 200
/* A publisher socket wakes the loop between ticks only once this much is
 * buffered (SO_RCVLOWAT): up to 20 Mbit/s at the default tick a stream is read by
 * the tick alone; a higher bitrate never waits on it. */
#define SP_RELAY_INGEST_LOWAT (512 * 1024)

/**
 * Starts t as a one-shot timer for the next multiple of period_ms on the loop
 * clock; periodic callbacks call it again first thing. Every periodic timer of
 * the relay (1 s housekeeping of each connection, the media tick) stays on that
 * grid however late a wakeup was (a libuv repeat would drift by the lateness),
 * so they expire in the same loop iteration: one wakeup, not one per timer.
 */
void sp_relay_grid_start(uv_timer_t *t, uv_timer_cb cb, uint64_t period_ms);

/** One more / one fewer publisher in tick mode: the tick runs while any is (sp_relay_media.c). */
void sp_relay_tick_ref(sp_relay_t *r);
void sp_relay_tick_unref(sp_relay_t *r);
void sp_relay_flush_stop(sp_relay_t *r);

/* ---- tags / queues (sp_relay_media.c) ---- */
void sp_tag_clear(sp_relay_tag_t *t);
void sp_tagq_init(sp_tagq_t *q);
void sp_tagq_cleanup(sp_tagq_t *q);
void sp_tagq_push(sp_tagq_t *q, const sp_relay_tag_t *t); /* takes a ref */
bool sp_tagq_pop(sp_tagq_t *q, sp_relay_tag_t *out);   /* caller owns the ref */
sp_relay_tag_t *sp_tagq_at(sp_tagq_t *q, size_t i);
void sp_tagq_clear(sp_tagq_t *q);

/* ---- model (sp_relay.c) ---- */
sp_relay_input_t *sp_relay_find_input(sp_relay_t *r, const char *uid);
/** Constant-time stream-key lookup over all inputs. */
sp_relay_input_t *sp_relay_find_by_key(sp_relay_t *r, const char *key, size_t len);
sp_relay_input_t *sp_relay_input_create(sp_relay_t *r, json_t *meta, bool enabled);
/* Pure: the identity a control plane may ask to restore (POST /live_inputs {uid, streamKey},
   after the relay lost its state): uid = 32 lowercase hex, key = 16..79 of [A-Za-z0-9_-]. */
bool sp_relay_restore_ids_ok(const char *uid, const char *key);
void sp_relay_input_delete(sp_relay_t *r, sp_relay_input_t *in);
sp_relay_output_t *sp_relay_output_add(sp_relay_input_t *in, const char *url, const char *key,
                                       bool enabled, const char *uid);
void sp_relay_output_delete(sp_relay_output_t *o);
void sp_relay_output_set_enabled(sp_relay_output_t *o, bool enabled);
void sp_relay_save(sp_relay_t *r);
void sp_relay_webhook(sp_relay_t *r, sp_relay_input_t *in, const char *event, const char *err_code,
                      const char *err_msg);
const char *sp_relay_out_state_name(sp_relay_out_state_t s);

/* ---- media path (sp_relay_media.c) ---- */
/** A publisher started on in (from ingest). */
void sp_relay_input_live(sp_relay_input_t *in, sp_ingest_conn_t *pub);
/**
 * The publisher went away. With disconnect protection on (in->protect) and reason
 * "client_disconnect" (a lost connection), forwarding outputs stay connected on the slate for
 * the grace window (STREAM_DISCONNECT_TIMEOUT); otherwise they stop. Without a publisher,
 * any other reason takes the input off the slate (deleted, disabled, protection off).
 */
void sp_relay_input_gone(sp_relay_input_t *in, const char *reason);
/** The publisher ended its stream itself (FCUnpublish/deleteStream): outputs stop, no slate. */
void sp_relay_input_unpublished(sp_relay_input_t *in);
/**
 * The publisher broke the protocol or a limit while live: the input goes to
 * "errored" (status.current.state), outputs stop, and a live_input.errored
 * webhook carries code (e.g. ERR_PROTOCOL) and message. The connection is
 * closed by the caller.
 */
void sp_relay_input_errored(sp_relay_input_t *in, const char *code, const char *message);
/** A media/data message from the publisher. payload ref is taken. */
void sp_relay_input_media(sp_relay_input_t *in, uint8_t type, uint32_t ts, sp_rbuf_t *payload);
/** Stored metadata (AMF "onMetaData" + object, without "@setDataFrame"). */
void sp_relay_input_metadata(sp_relay_input_t *in, const uint8_t *p, size_t len);
void sp_relay_input_stats_tick(sp_relay_input_t *in, uint64_t now_ms);

/* ---- input health (sp_relay_health.c) ---- */
/** Every media message (hook from sp_relay_input_media): per-track counters, SPS / AAC config. */
void sp_relay_health_media(sp_relay_input_t *in, uint8_t type, uint32_t ts, uint8_t flags,
                           uint32_t codec, const uint8_t *p, size_t len);
/** Once a second while live (hook from sp_relay_input_stats_tick): closes the 5 s window. */
void sp_relay_health_tick(sp_relay_input_t *in, uint64_t now_ms);
/** The "health" extension object of a live input (null when no publisher). */
json_t *sp_relay_health_json(const sp_relay_input_t *in, uint64_t now_mono_ms);

/* ---- HTTP-FLV preview (sp_relay_preview.c) ---- */
/** A tag for every preview viewer of in (hook from the media path). */
void sp_relay_preview_feed(sp_relay_input_t *in, const sp_relay_tag_t *t);
/** Ends every preview of in (publisher gone, input deleted). */
void sp_relay_preview_close_all(sp_relay_input_t *in);
/** Takes over req's connection as a preview viewer of in: 0, SP_ENOTFOUND (no publisher),
 *  SP_ELIMIT (too many viewers) or SP_EAGAIN (the connection could not be taken); on an
 *  error req is still to be answered. */
int sp_relay_preview_start(sp_relay_input_t *in, sp_http_req_t *req);

/* ---- outputs: relay/sp_rtmp_push.h ---- */

/* ---- ingest (sp_rtmp_server.c) ---- */
int sp_rtmp_server_start(sp_relay_t *r, const char *listen, int *port_out);
void sp_rtmp_server_stop(sp_relay_t *r);
void sp_ingest_kick(sp_ingest_conn_t *c, const char *why);
/** Reads what every live publisher has buffered (the media tick). */
void sp_rtmp_server_drain(sp_relay_t *r);

#endif
