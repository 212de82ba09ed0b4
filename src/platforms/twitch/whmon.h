/*
 * twitch/whmon: the EventSub monitor for the webhook transport (TWITCH_EVENTSUB_TRANSPORT
 * resolves to webhook, sp_config_twitch_webhook). It only manages the account's subscriptions:
 * on start, one POST {api}/eventsub/subscriptions per type with transport {method: webhook,
 * callback: {PUBLIC_URL}/webhooks/twitch, secret: TWITCH_WEBHOOK_SECRET}, sent with the app
 * access token; on stop, a DELETE ?id= for each subscription it created. Notifications do not
 * pass through it: Twitch POSTs them to /webhooks/twitch, which verifies them and hands them to
 * the supervisor by broadcaster id (web/sp_web_psup.c). Status: connecting, then connected when
 * every type was created (a 409 counts), degraded (`subscription_failed:<type>`) when only some
 * were, needs_reauth when every type was refused with a 403; none created otherwise: `failed`
 * (the supervisor restarts it with backoff).
 *
 * The app access token (client credentials, one per process): obtained with a
 * client_credentials grant at {TWITCH_AUTH_URL}/token, cached with its expiry, renewed 5 min
 * before it and once on a 401, single-flight (sp_token). Never logged.
 */
#ifndef SP_TWITCH_WHMON_H
#define SP_TWITCH_WHMON_H

#include <stdbool.h>
#include <stdint.h>

#include "platforms/sp_platform.h"

/** NULL on allocation failure or when the config cannot make a subscription (no secret, no
 *  client id, no PUBLIC_URL). Holds a reference on a until stopped. Reports nothing from here
 *  (the POSTs start from the loop). */
sp_platform_monitor_t *sp_twitch_whmon_start(const sp_platform_env_t *env,
                                             sp_platform_account_t *a,
                                             const sp_platform_sink_t *sink);
/** Stops (reports nothing more) and releases the account; the subscriptions it created are
 *  deleted at Twitch in the background, best effort. */
void sp_twitch_whmon_stop(sp_platform_monitor_t *m);
/** true when m was started by sp_twitch_whmon_start and is not stopped yet. */
bool sp_twitch_whmon_owns(const sp_platform_monitor_t *m);
/** Subscriptions m created and holds (tests). */
unsigned sp_twitch_whmon_created(const sp_platform_monitor_t *m);
/** Creations and deletions still in flight, of running and stopped monitors (tests). */
size_t sp_twitch_whmon_calls_pending(void);

/**
 * The app access token: cb(0, token) (borrowed for the callback), or an error: SP_ECONFIG (no
 * client id/secret/auth url), SP_EUNAVAIL (the grant failed; the next call tries again),
 * SP_ECANCELED (reset). failed: a token a call just got a 401 with, or NULL. now_ms: Unix ms
 * (0 = now). Returns 0 (cb has run or will run once) or an error (cb not called).
 */
int sp_twitch_app_token(const sp_platform_env_t *env, int64_t now_ms, const char *failed,
                        sp_token_cb cb, void *ud);
/** Forgets the app token (tests; waiters end with SP_ECANCELED). */
void sp_twitch_app_token_reset(void);
/** The app token's counters (grants = refreshes); zeros when there is none. */
void sp_twitch_app_token_stats(sp_token_stats_t *out);

#endif
