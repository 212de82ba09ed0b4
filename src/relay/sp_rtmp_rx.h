/*
 * sp_rtmp_rx: the read side of one RTMP connection, either end: the one
 * reader loop of the relay, shared by ingest (sp_rtmp_server.c, server
 * handshake) and outputs (sp_rtmp_client.c, client handshake).
 *
 * Bytes from the peer are appended to the input buffer; sp_rtmp_rx_process
 * runs the handshake, then the chunk stream, and hands each complete message
 * to on_msg. The protocol-level replies both ends owe are made here, through
 * send: handshake bytes, PingResponse to a PingRequest, and Acknowledgement
 * once the peer's window (Window Acknowledgement Size) is read.
 *
 * Callbacks run only inside sp_rtmp_rx_start / sp_rtmp_rx_process /
 * sp_rtmp_rx_feed, on the caller's thread. alive is asked before every step:
 * a callback that closes the connection makes it return false and processing
 * stops at once (nothing else is sent). No callback may free the rx; free it
 * after the call returns (the relay frees on handle close).
 */
#ifndef SP_RTMP_RX_H
#define SP_RTMP_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"
#include "relay/sp_rtmp_chunk.h"

typedef struct sp_rtmp_rx_s sp_rtmp_rx_t;

typedef struct {
    /** Bytes for the peer (copied by the callee if kept). Required. */
    void (*send)(void *ud, const void *p, size_t len);
    /** The handshake completed (its last bytes are sent). Optional; < 0 stops with it. */
    int (*on_handshake)(void *ud);
    /** A message other than Window Acknowledgement Size and PingRequest (handled here).
     *  m->payload is released after the call (take a ref to keep it); < 0 stops with it. */
    int (*on_msg)(void *ud, sp_rtmp_msg_t *m);
    /** false once the connection is closing. Required. */
    bool (*alive)(void *ud);
} sp_rtmp_rx_cbs_t;

/** max_msg / max_csids: the chunk reader's caps; the input buffer holds max_msg + 64. */
sp_rtmp_rx_t *sp_rtmp_rx_create(uint32_t max_msg, uint32_t max_csids, const sp_rtmp_rx_cbs_t *cbs,
                                void *ud);
void sp_rtmp_rx_free(sp_rtmp_rx_t *rx);

/** Starts the handshake: the server side waits for C0+C1, the client side sends C0+C1. */
void sp_rtmp_rx_start(sp_rtmp_rx_t *rx, bool client);
bool sp_rtmp_rx_handshake_done(const sp_rtmp_rx_t *rx);

/** The input buffer, for reads straight into it (append at len, then sp_rtmp_rx_process). */
sp_buf_t *sp_rtmp_rx_buf(sp_rtmp_rx_t *rx);

/**
 * Processes what the input buffer holds: 0, or the error that stopped it
 * (SP_EPROTO, SP_ETOOBIG from the chunk reader, or a callback's). Bytes before
 * sp_rtmp_rx_start are a protocol error.
 */
int sp_rtmp_rx_process(sp_rtmp_rx_t *rx);

/** Appends p and processes: as sp_rtmp_rx_process, or SP_ELIMIT if the input buffer is full. */
int sp_rtmp_rx_feed(sp_rtmp_rx_t *rx, const void *p, size_t len);

#endif
