/*
 * twitch: the Twitch platform client, `sp_platform_twitch` (sp_platform.h): the OAuth
 * descriptor, Helix calls (users, streams/key, chat messages, channels, streams, search
 * categories) through sp_platform_http with `Client-Id` on every call, the token revoke, and
 * the EventSub WebSocket monitor (twitch/monitor.h). Shapes: docs/platforms.md.
 */
#ifndef SP_TWITCH_H
#define SP_TWITCH_H

#include "platforms/sp_platform.h"

extern const sp_platform_t sp_platform_twitch;

/* Twitch's chat limit for a normal account, enforced locally per account before sending. */
#define SP_TWITCH_CHAT_LIMIT 20
#define SP_TWITCH_CHAT_WINDOW_MS 30000
/* Accounts whose chat history is remembered; past it, idle ones are forgotten first. */
#define SP_TWITCH_CHAT_ACCOUNTS_MAX 65536

/** "Client-Id: <id>" into out (cap bytes); 0 or SP_EINVAL (no client id / too long). */
int sp_twitch_client_id_header(const sp_config_t *cfg, char *out, size_t cap);

/** Forgets every account's local chat history (tests). */
void sp_twitch_chat_limit_reset(void);

#endif
