/*
 * sp_rtmp_client: the RTMP client protocol of one relay output (publishing to
 * a destination), without sockets, timers or queues: those are the push state
 * machine's (sp_rtmp_push.c).
 *
 *  - sp_rtmp_target_parse (pure): the destination from its URL and stream key.
 *    Host, port and scheme come from the shared strict parser (net/sp_dest_url),
 *    the path is split the RTMP way: app (tcUrl) and stream name (the key).
 *  - sp_rtmp_client_t: handshake (sp_rtmp_rx, client side), then connect,
 *    releaseStream + FCPublish + createStream, publish, up to
 *    NetStream.Publish.Start; FCUnpublish + deleteStream at the end.
 *  - sp_rtmp_client_tag_headers (pure): chunk headers of one media message on
 *    the published stream (csid 4 audio, 6 video, 5 data; 4096-byte chunks).
 *
 * Bytes for the destination leave through cbs.send; bytes from it go in with
 * sp_rtmp_client_input. Callbacks run only inside sp_rtmp_client_start /
 * _input / _unpublish. on_stage reports each step (the push uses it for
 * timeouts and health), on_refused a refusal by the destination, after which
 * the caller closes the connection (alive turns false, nothing more is sent).
 */
#ifndef SP_RTMP_CLIENT_H
#define SP_RTMP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_RTMP_CLIENT_CHUNK 4096 /* our outbound chunk size (Set Chunk Size after C2) */

typedef struct {
    char host[256];   /* lower-case; IPv6 without brackets */
    int port;
    bool tls;         /* rtmps */
    char app[512];
    char tcurl[1024];
    char *key;        /* stream name: secret, never logged */
} sp_rtmp_target_t;

/**
 * rtmp[s]://host[:port]/app[/...] and an optional stream key. With a key the
 * whole path is the app ("live", "live/sub"); without one the path's last
 * segment is the key. 0 or SP_EINVAL with *why a short static reason.
 * sp_rtmp_target_cleanup after either.
 */
int sp_rtmp_target_parse(const char *url, const char *key, sp_rtmp_target_t *t, const char **why);
void sp_rtmp_target_cleanup(sp_rtmp_target_t *t);

typedef enum {
    SP_RTMP_CLIENT_HANDSHAKE = 0,
    SP_RTMP_CLIENT_CONNECT,
    SP_RTMP_CLIENT_CREATE,
    SP_RTMP_CLIENT_PUBLISH,
    SP_RTMP_CLIENT_PUBLISHING, /* NetStream.Publish.Start: media may flow */
} sp_rtmp_client_stage_t;

/** "rtmp handshake", "connect", "createStream", "publish", "forwarding". */
const char *sp_rtmp_client_stage_name(sp_rtmp_client_stage_t st);

typedef struct {
    void (*send)(void *ud, const void *p, size_t len);          /* required */
    void (*on_stage)(void *ud, sp_rtmp_client_stage_t st);     /* required */
    void (*on_refused)(void *ud, const char *why);             /* required */
    bool (*alive)(void *ud);                                   /* required */
} sp_rtmp_client_cbs_t;

typedef struct sp_rtmp_client_s sp_rtmp_client_t;

/** t is borrowed: it must outlive the client. */
sp_rtmp_client_t *sp_rtmp_client_create(const sp_rtmp_target_t *t, const sp_rtmp_client_cbs_t *cbs,
                                        void *ud);
void sp_rtmp_client_free(sp_rtmp_client_t *c);

/** Sends C0+C1 (on_stage HANDSHAKE first). Once the transport (and TLS) is up. */
void sp_rtmp_client_start(sp_rtmp_client_t *c);

/** Bytes from the destination: 0, SP_ELIMIT (it sent more than the input buffer
 *  holds) or a protocol error (SP_EPROTO, SP_ETOOBIG). */
int sp_rtmp_client_input(sp_rtmp_client_t *c, const void *p, size_t len);

sp_rtmp_client_stage_t sp_rtmp_client_stage(const sp_rtmp_client_t *c);
/** The published message stream id (from createStream's _result). */
uint32_t sp_rtmp_client_stream_id(const sp_rtmp_client_t *c);

/** Ends the publication: FCUnpublish + deleteStream. */
void sp_rtmp_client_unpublish(sp_rtmp_client_t *c);

/** Room sp_rtmp_client_tag_headers needs for a message of len bytes. */
size_t sp_rtmp_client_hdr_bound(uint32_t len);
/**
 * Chunk headers of one message of type (8 audio, 9 video, 18 data) on stream
 * msid into hdr; hlens[i] is the length of chunk i's header (chunk i carries
 * min(4096, rest) payload bytes after it). Returns the number of chunks. Pure.
 */
size_t sp_rtmp_client_tag_headers(uint8_t *hdr, uint16_t *hlens, uint8_t type, uint32_t ts,
                                  uint32_t msid, uint32_t len);

#endif
