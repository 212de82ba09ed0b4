/*
 * Fuzz target: pubsub topic names (sp_pubsub_topic_parse) and the bus itself.
 * The input is split on '\n' into topic names; each valid one is published to
 * and replayed from a random seq, checking seq and ring invariants.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_alloc.h"
#include "bus/sp_pubsub.h"

static void on_replay(sp_rbuf_t *frame, uint64_t seq, void *ud)
{
    uint64_t *last = ud;
    if (seq <= *last || frame->len < 2 || frame->data[0] != 0x81)
        __builtin_trap();
    *last = seq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sp_pubsub_t *ps = sp_pubsub_new(NULL, 3);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        size_t n = i - start;
        char *t = sp_strndup((const char *)data + start, n);
        sp_topic_info_t ti;
        int rc = sp_pubsub_topic_parse(t, strlen(t), &ti);
        if (rc == 0) {
            if (ti.user_id.len &&
                (ti.user_id.p < t || ti.user_id.p + ti.user_id.len > t + strlen(t)))
                __builtin_trap();
            bool own = ti.user_id.len > 0;
            char user[80] = "";
            if (own && ti.user_id.len < sizeof(user))
                memcpy(user, ti.user_id.p, ti.user_id.len);
            if (sp_pubsub_default_authorize(user[0] ? user : NULL, 0, t) != (own && user[0]))
                __builtin_trap();
            uint64_t before = sp_pubsub_seq(ps, t);
            int64_t seq = sp_pubsub_publish(ps, t, "e", NULL);
            if (seq != (int64_t)before + 1)
                __builtin_trap();
            uint64_t last = 0;
            sp_pubsub_replay_t out;
            uint64_t after = n ? (uint64_t)(uint8_t)t[0] % 8 : 0;
            if (sp_pubsub_replay(ps, t, after, on_replay, &last, &out) != 0 || out.replayed > 3)
                __builtin_trap();
        } else if (sp_pubsub_publish(ps, t, "e", NULL) >= 0) {
            __builtin_trap();
        }
        sp_free(t);
        start = i + 1;
    }
    sp_pubsub_free(ps);
    return 0;
}
