/*
 * sp_rtmp_chunk: the RTMP chunk stream, reader and writer. Pure.
 *
 * The reader turns chunks (basic header fmt 0-3, message header, extended
 * timestamp, payload) into whole messages. Each message payload is a fresh
 * sp_rbuf_t the caller owns, so one media message can be fanned out to many
 * outputs without copies. The reader applies protocol control messages that
 * belong to the chunk layer itself: Set Chunk Size (type 1, validated and
 * capped) and Abort (type 2); they are also returned to the caller.
 * Everything a peer controls is capped: chunk size, message length, number of
 * chunk streams.
 */
#ifndef SP_RTMP_CHUNK_H
#define SP_RTMP_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

#define SP_RTMP_DEFAULT_CHUNK 128
#define SP_RTMP_MAX_CHUNK (16u * 1024 * 1024) /* larger Set Chunk Size values are refused */
#define SP_RTMP_MAX_MSG_DEFAULT (8u * 1024 * 1024)
#define SP_RTMP_MAX_CSID_DEFAULT 64

enum {
    SP_RTMP_MSG_SET_CHUNK_SIZE = 1,
    SP_RTMP_MSG_ABORT = 2,
    SP_RTMP_MSG_ACK = 3,
    SP_RTMP_MSG_USER_CONTROL = 4,
    SP_RTMP_MSG_WINDOW_ACK = 5,
    SP_RTMP_MSG_PEER_BW = 6,
    SP_RTMP_MSG_AUDIO = 8,
    SP_RTMP_MSG_VIDEO = 9,
    SP_RTMP_MSG_DATA_AMF3 = 15,
    SP_RTMP_MSG_CMD_AMF3 = 17,
    SP_RTMP_MSG_DATA_AMF0 = 18,
    SP_RTMP_MSG_CMD_AMF0 = 20,
    SP_RTMP_MSG_AGGREGATE = 22,
};

typedef struct {
    uint8_t type;
    uint32_t timestamp; /* absolute, ms (32-bit, wraps) */
    uint32_t stream_id; /* message stream id */
    uint32_t csid;
    sp_rbuf_t *payload; /* owned by the caller once returned */
} sp_rtmp_msg_t;

typedef struct sp_rtmp_cstream_s sp_rtmp_cstream_t;

typedef struct {
    uint32_t chunk_size;  /* incoming chunk size */
    uint32_t max_msg;     /* message length cap */
    uint32_t max_csids;   /* chunk stream count cap */
    sp_rtmp_cstream_t *cs; /* array of max_csids */
    uint32_t n_cs;
    uint64_t bytes_in;    /* total bytes consumed (for Acks) */
} sp_rtmp_reader_t;

void sp_rtmp_reader_init(sp_rtmp_reader_t *r, uint32_t max_msg, uint32_t max_csids);
void sp_rtmp_reader_cleanup(sp_rtmp_reader_t *r);
/**
 * Parses at most one chunk from p. Returns bytes consumed (> 0), SP_EAGAIN if
 * p does not yet hold a whole chunk (nothing consumed), SP_ETOOBIG (message
 * length, chunk size or csid count over the cap) or SP_EPROTO. When the chunk
 * completes a message, *have is set and *msg filled (caller owns payload).
 */
int sp_rtmp_reader_feed(sp_rtmp_reader_t *r, const uint8_t *p, size_t len, sp_rtmp_msg_t *msg,
                        bool *have);

/* ---- writer -------------------------------------------------------------------- */
/** Max bytes of chunk headers for a message of len bytes at chunk_size. */
size_t sp_rtmp_chunk_hdr_bound(uint32_t len, uint32_t chunk_size);
/**
 * Writes a whole message as chunks (fmt 0 then fmt 3 continuations) into out.
 * Returns 0 or SP_ETOOBIG (out's cap).
 */
int sp_rtmp_write_msg(sp_buf_t *out, uint32_t chunk_size, uint32_t csid, uint8_t type,
                      uint32_t ts, uint32_t msid, const uint8_t *payload, uint32_t len);
/**
 * Zero-copy form: writes only the chunk headers into hdr (at least
 * sp_rtmp_chunk_hdr_bound bytes) and records, for each chunk, the header
 * length in hlens[i] (the i-th payload slice is chunk_size bytes or the tail).
 * Returns the number of chunks.
 */
size_t sp_rtmp_chunk_headers(uint8_t *hdr, uint16_t *hlens, uint32_t chunk_size, uint32_t csid,
                             uint8_t type, uint32_t ts, uint32_t msid, uint32_t len);
/** Protocol control / user control helpers (append to out). */
int sp_rtmp_write_u32_ctrl(sp_buf_t *out, uint8_t type, uint32_t v);
int sp_rtmp_write_peer_bw(sp_buf_t *out, uint32_t window, uint8_t limit);
int sp_rtmp_write_user_ctrl(sp_buf_t *out, uint16_t event, uint32_t v);

#endif
