/*
 * Fuzz target: the Redis bus envelope (sp_redis_msg_parse + body decode), the tail
 * round trip, and REDIS_URL parsing (sp_redis_url_parse).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "bus/sp_redis_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_redis_msg_t m;
    if (sp_redis_msg_parse(data, size, &m) == 0) {
        if (m.seq == 0 || m.seq > SP_REDIS_SEQ_MAX || m.node.len != SP_REDIS_NODE_LEN ||
            m.body.p + m.body.len != (const char *)data + size)
            __builtin_trap();
        json_t *root;
        const char *ev;
        json_t *pl;
        if (sp_redis_msg_body_decode(m.body, &root, &ev, &pl) == 0) {
            char node[SP_REDIS_NODE_LEN + 1], topic[256];
            memcpy(node, m.node.p, SP_REDIS_NODE_LEN);
            node[SP_REDIS_NODE_LEN] = '\0';
            if (m.topic.len >= sizeof(topic))
                __builtin_trap();
            memcpy(topic, m.topic.p, m.topic.len);
            topic[m.topic.len] = '\0';
            size_t len;
            char *tail = sp_redis_msg_encode_tail(node, m.msg_id, topic, ev, pl, &len);
            if (tail) {
                sp_redis_msg_t m2;
                if (sp_redis_msg_parse_tail((const uint8_t *)tail, len, &m2) != 0 ||
                    m2.msg_id != m.msg_id || !sp_str_eq(m2.topic, m.topic))
                    __builtin_trap();
                sp_free(tail);
            }
            json_decref(root);
        }
    }
    if (size < 1024) {
        char url[1024];
        memcpy(url, data, size);
        url[size] = '\0';
        sp_redis_url_t u;
        if (sp_redis_url_parse(url, &u) == 0 && (u.port <= 0 || u.port > 65535 || !u.host[0]))
            __builtin_trap();
    }
    return 0;
}
