/*
 * twitch/monitor: one account's EventSub WebSocket monitor: an sp_ws_client connection to
 * TWITCH_EVENTSUB_WS_URL driven by the pure session machine (twitch/eventsub.h), the
 * subscriptions created through Helix, notifications mapped (twitch/map.h) and reported to the
 * sink. One uv_timer, at most two sockets (during a session_reconnect migration).
 *
 * Lifetime: sp_twitch_monitor_start holds a reference on the account until
 * sp_twitch_monitor_stop, which reports nothing more; memory is released from libuv close
 * callbacks (and when Helix calls in flight complete).
 */
#ifndef SP_TWITCH_MONITOR_H
#define SP_TWITCH_MONITOR_H

#include "platforms/sp_platform.h"

sp_platform_monitor_t *sp_twitch_monitor_start(const sp_platform_env_t *env,
                                               sp_platform_account_t *a,
                                               const sp_platform_sink_t *sink);
void sp_twitch_monitor_stop(sp_platform_monitor_t *m);
/** Bytes the monitor itself holds (its struct with the session machine, and a subscription
 *  batch in flight); its sockets (sp_ws_client) come on top. */
size_t sp_twitch_monitor_size(const sp_platform_monitor_t *m);

#endif
