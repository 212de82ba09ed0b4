/*
 * sp_rtmp_handshake: the RTMP "simple" handshake, server and client side.
 * Pure state machines: bytes in, bytes to send out, no sockets.
 *
 * Server: C0+C1 (1537 bytes) in -> S0+S1+S2 (3073 bytes) out; then C2 (1536) in.
 * S1 carries version 0 (no digest), which ffmpeg, OBS and GStreamer publishers
 * accept; S2 echoes C1. C2 is not checked (clients differ, nginx is lenient).
 * Client: C0+C1 out at init; S0+S1+S2 in -> C2 (echo of S1) out.
 */
#ifndef SP_RTMP_HANDSHAKE_H
#define SP_RTMP_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_RTMP_HS_SIZE 1536
#define SP_RTMP_VERSION 3

typedef struct {
    int state;        /* internal */
    bool is_client;
    bool done;        /* handshake complete; later bytes are chunk stream */
    uint8_t buf[1 + 2 * SP_RTMP_HS_SIZE]; /* partial input */
    size_t have;
    uint8_t rnd[SP_RTMP_HS_SIZE - 8];    /* our random part of S1/C1 */
    uint8_t out[1 + 2 * SP_RTMP_HS_SIZE]; /* bytes the caller must send */
    size_t out_len;
} sp_rtmp_hs_t;

/** Server side. rnd (1528 bytes, may be NULL = zeros) fills S1's random part. */
void sp_rtmp_hs_server_init(sp_rtmp_hs_t *hs, const uint8_t *rnd);
/** Client side; C0+C1 are ready in hs->out after this call. */
void sp_rtmp_hs_client_init(sp_rtmp_hs_t *hs, const uint8_t *rnd);
/**
 * Feeds received bytes. Returns the number consumed (less than len once the
 * handshake is done: the rest belongs to the chunk stream), or SP_EPROTO
 * (wrong version byte). After each call, hs->out/out_len holds bytes to send
 * (the caller sends them and sets out_len = 0).
 */
int sp_rtmp_hs_feed(sp_rtmp_hs_t *hs, const uint8_t *p, size_t len);

#endif
