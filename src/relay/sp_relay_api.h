/*
 * sp_relay_api: the relay's Cloudflare Stream compatible API (live inputs and
 * outputs, with output health fields), /metrics, and the Cloudflare
 * Notifications shaped webhooks the relay posts to the control plane.
 */
#ifndef SP_RELAY_API_H
#define SP_RELAY_API_H

#include "sp_relay_int.h"

int sp_relay_api_start(sp_relay_t *r);
void sp_relay_api_stop(sp_relay_t *r);

#endif
