/*
 * sp_relay: the `streampai relay` process: RTMP ingest on RELAY_RTMP_LISTEN,
 * fan-out to RTMP/RTMPS outputs, and a Cloudflare Stream compatible API on
 * RELAY_API_LISTEN. Runs its own libuv loop until SIGINT/SIGTERM.
 */
#ifndef SP_RELAY_H
#define SP_RELAY_H

#include <stdbool.h>
#include <uv.h>

#include "core/sp_config.h"

/** Name resolution of output hosts: uv_getaddrinfo's signature (and its default). */
typedef int (*sp_relay_resolve_fn)(uv_loop_t *loop, uv_getaddrinfo_t *req, uv_getaddrinfo_cb cb,
                                   const char *node, const char *service,
                                   const struct addrinfo *hints);

typedef struct {
    const sp_config_t *cfg;
    /* The address policy of every output connection (net/sp_dest_url.h,
     * sp_dest_addr_allowed): every address a destination resolves to is checked on
     * every connect and reconnect; false refuses loopback, private, link-local
     * (cloud metadata) and CGNAT ranges. From ALLOW_PRIVATE_DESTINATIONS. */
    bool allow_private_destinations;
    sp_relay_resolve_fn resolve; /* NULL: uv_getaddrinfo (tests inject their own) */
} sp_relay_opts_t;

/** Runs the relay; returns the process exit code (0 clean stop, 1 failure). */
int sp_relay_main(const sp_relay_opts_t *opts);

#endif
