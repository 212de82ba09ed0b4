/*
 * sp_relay_api: the relay's Cloudflare Stream compatible API (live inputs and
 * outputs, with output health fields), /metrics, and the Cloudflare
 * Notifications shaped webhooks the relay posts to the control plane.
 */
#ifndef SP_RELAY_API_H
#define SP_RELAY_API_H

#include "relay/sp_relay_int.h"

int sp_relay_api_start(sp_relay_t *r);
/** The Cloudflare Notifications shaped webhook body (pure; err_code NULL unless errored). */
json_t *sp_relay_webhook_body(const char *input_uid, const char *event, int64_t wall_ms,
                              const char *err_code, const char *err_msg, const char *vcodec,
                              const char *acodec);
void sp_relay_api_stop(sp_relay_t *r);

#endif
