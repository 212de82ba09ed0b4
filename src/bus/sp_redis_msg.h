/*
 * sp_redis_msg: the pure parts of the Redis pub/sub backend (docs/internals/websocket.md,
 * "Multi-node"): the message envelope carried on the bus channel, and REDIS_URL parsing.
 *
 * Envelope (one Redis PUBLISH payload, ASCII header, JSON body):
 *   "SP1 <seq> <node> <msg_id> <topic> <body>"
 *     seq     decimal 1..2^53-1, no leading zero (given by Redis, one order per topic)
 *     node    16 lowercase hex digits: the publishing process
 *     msg_id  decimal, no leading zero: the publisher's own counter (matches its echo)
 *     topic   a topic name sp_pubsub_topic_parse accepts
 *     body    a JSON object {"event":E,"payload":P}; E a non-empty string
 * The publisher builds the "tail" (everything after "<seq> "); the Redis script prepends
 * "SP1 <seq> " atomically with the seq increment. Whole envelope <= SP_REDIS_MSG_MAX.
 */
#ifndef SP_REDIS_MSG_H
#define SP_REDIS_MSG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sp_buf.h"

#define SP_REDIS_MSG_MAX (1024 * 1024)
#define SP_REDIS_SEQ_MAX ((1ULL << 53) - 1)
#define SP_REDIS_NODE_LEN 16

typedef struct {
    uint64_t seq; /* 0 when parsed from a tail */
    sp_str_t node;
    uint64_t msg_id;
    sp_str_t topic;
    sp_str_t body;
} sp_redis_msg_t;

/** Pure: parses a whole envelope. Returns 0 or SP_EINVAL / SP_ETOOBIG. Slices point into p. */
int sp_redis_msg_parse(const uint8_t *p, size_t len, sp_redis_msg_t *out);
/** Pure: parses a tail ("<node> <msg_id> <topic> <body>"); out->seq = 0. */
int sp_redis_msg_parse_tail(const uint8_t *p, size_t len, sp_redis_msg_t *out);
/**
 * Pure: decodes the JSON body. On success *root owns the parsed object, *event and
 * *payload point into it (payload is json null when absent). Returns 0 or SP_EINVAL.
 */
int sp_redis_msg_body_decode(sp_str_t body, json_t **root, const char **event, json_t **payload);
/**
 * Builds a tail (heap string, NUL-terminated, *len without the NUL). payload borrowed
 * (NULL = null). Returns NULL if an argument is invalid or the result would exceed
 * SP_REDIS_MSG_MAX - 32 (room for "SP1 <seq> ").
 */
char *sp_redis_msg_encode_tail(const char *node, uint64_t msg_id, const char *topic,
                               const char *event, json_t *payload, size_t *len);

/* ---- REDIS_URL ---------------------------------------------------------------------- */
typedef struct {
    char host[256]; /* hostname or IP (brackets of [v6] removed) */
    int port;       /* default 6379 */
    char user[128]; /* ACL user (empty = default user) */
    char pass[256]; /* empty = no AUTH */
    int db;         /* SELECT n (0 = default) */
} sp_redis_url_t;

/**
 * Pure: parses redis://[[user]:pass@]host[:port][/db]. Percent-escapes in user and
 * password are decoded. rediss:// (TLS) and unix sockets are refused (hiredis 0.14 has
 * no TLS). Returns 0 or SP_EINVAL.
 */
int sp_redis_url_parse(const char *url, sp_redis_url_t *out);

#endif
