/*
 * sp_relay: the `streampai relay` process: RTMP ingest on RELAY_RTMP_LISTEN,
 * fan-out to RTMP/RTMPS outputs, and a Cloudflare Stream compatible API on
 * RELAY_API_LISTEN. Runs its own libuv loop until SIGINT/SIGTERM.
 */
#ifndef SP_RELAY_H
#define SP_RELAY_H

#include "core/sp_config.h"

/** Runs the relay; returns the process exit code (0 clean stop, 1 failure). */
int sp_relay_main(const sp_config_t *cfg);

#endif
