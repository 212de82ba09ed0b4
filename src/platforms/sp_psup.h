/*
 * sp_psup: the PlatformSupervisor of seed 001 §5. While a user's stream is `streaming`, one
 * monitor per connected platform among its destinations runs (registry key
 * {platform_monitor, user_id, platform}); at `ending` they stop. The supervisor:
 *   - starts each monitor (vtable monitor_start) and restarts a failed one with backoff and
 *     jitter; past SP_PSUP_MAX_RESTARTS restarts in SP_PSUP_RESTART_WINDOW_MS the platform is
 *     `degraded` (status topic, sp_accounts_set_degraded) and is retried only at the backoff
 *     ceiling; the stream itself is never touched;
 *   - turns what monitors report into the normalised messages, persisted in `events` (seq per
 *     user, unique (platform, platform_event_id): a redelivered id is dropped, in memory first
 *     and by the unique key across restarts) and published:
 *       chat:{user_id}                     message | deleted
 *       alertbox:{user_id}                 alert
 *       platform:{platform}:{user_id}      status
 *       user_stream:{user_id}:statistics   viewers  (every PLATFORM_VIEWERS_INTERVAL ms,
 *                                                    sampled into viewer_samples)
 *   - at stop fills the stream's peak_viewers / avg_viewers from its samples;
 *   - pushes the title (and category) to every platform at start and on metadata changes
 *     while streaming;
 *   - sends chat to all or some platforms (POST /api/chat), reporting each platform's fate.
 * It also takes EventSub-style notifications that arrive by webhook (sp_psup_inject_*), so a
 * message delivered on both transports reaches the user once.
 */
#ifndef SP_PSUP_H
#define SP_PSUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/sp_registry.h"
#include "platforms/sp_accounts.h"
#include "platforms/sp_platform.h"

struct sp_store_s;  /* store/sp_store.h */
struct sp_pubsub_s; /* bus/sp_pubsub.h */

#define SP_PSUP_MAX_RESTARTS 5
#define SP_PSUP_RESTART_WINDOW_MS 60000

typedef struct sp_psup_s sp_psup_t;

sp_psup_t *sp_psup_new(const sp_platform_env_t *env, struct sp_store_s *store,
                       struct sp_pubsub_s *bus, sp_accounts_t *accounts);
/** Stops every monitor (no more publishing) and frees the supervisor. */
void sp_psup_free(sp_psup_t *s);
void sp_psup_set_bus(sp_psup_t *s, struct sp_pubsub_s *bus);

/** The stream went `streaming`: start monitors for these platform names (those connected),
 *  push title/category, start viewer sampling. Idempotent per (user, stream). */
void sp_psup_stream_started(sp_psup_t *s, const char *user_id, const char *stream_id,
                            const char *title, json_t *categories,
                            const char *const *platforms, size_t n);
/** The stream is `ending`: stop monitors and sampling; write peak/avg viewers. */
void sp_psup_stream_ended(sp_psup_t *s, const char *user_id, const char *stream_id);
/** Title/category changed while streaming: pushed to every running platform.
 *  categories (here and at start; borrowed, NULL = none / unchanged): an object
 *  {platform name: that platform's category id} ("" unsets it); a platform gets only its own. */
void sp_psup_metadata(sp_psup_t *s, const char *user_id, const char *title,
                      json_t *categories);

/** POST /api/chat: sends text to `platforms` (NULL/empty: every platform with a running
 *  monitor, else every connected one) or, with reply_to (a normalised chat message id), to
 *  that message's platform as a reply. The result: {results:[{platform, sent, reason?,
 *  message_id?}]} or err SP_ENOTFOUND (no platform to send to / unknown reply_to). */
typedef void (*sp_psup_chat_cb)(int err, json_t *result, void *ud);
void sp_psup_send_chat(sp_psup_t *s, const char *user_id, const char *text,
                       const char *const *platforms, size_t n, const char *reply_to,
                       sp_psup_chat_cb cb, void *ud);

/** A notification from another transport (webhooks), already verified and mapped: handled
 *  exactly like the monitor's (dedupe, persist, publish) for the user owning the platform
 *  account `platform_user_id`. */
void sp_psup_inject_chat(sp_psup_t *s, const char *platform, const char *platform_user_id,
                         const sp_chat_msg_t *m);
void sp_psup_inject_alert(sp_psup_t *s, const char *platform, const char *platform_user_id,
                          const sp_alert_t *a);
/** The platform revoked the account's authorization for its events (a webhook revocation with
 *  authorization_revoked / user_removed): that monitor stops as needs_reauth. */
void sp_psup_inject_revoked(sp_psup_t *s, const char *platform, const char *platform_user_id,
                            const char *why);
void sp_psup_inject_deleted(sp_psup_t *s, const char *platform, const char *platform_user_id,
                            const sp_chat_deletion_t *d);

/** An account's status changed (the sp_accounts_status_fn of sp_accounts_new forwards here):
 *  needs_reauth stops that platform's monitor and publishes needs_reauth; connected (the user
 *  reconnected) starts it again while the stream runs; stopped (disconnected) stops it. */
void sp_psup_account_status(sp_psup_t *s, const char *user_id, const char *platform,
                            sp_platform_status_t st, const char *error);

/** Registers each running monitor in reg under the seed's key {platform_monitor, user_id,
 *  platform} (the Registry the stream managers use; borrowed, must outlive s; NULL: none). */
void sp_psup_set_registry(sp_psup_t *s, sp_registry_t *reg);

/** The user's live statistics while streaming: {viewers: {total, platforms, ts} (the last
 *  sample), peak_viewers (this stream so far)}; NULL before the first sample or when not live. */
json_t *sp_psup_stats(sp_psup_t *s, const char *user_id);

/** Every accepted (not duplicate) alert, the normalised JSON (borrowed), before it is
 *  published: the AlertQueue's input (set by the web layer; platforms/ knows no queue). */
typedef void (*sp_psup_alert_hook)(void *ud, const char *user_id, const json_t *alert);
void sp_psup_set_alert_hook(sp_psup_t *s, sp_psup_alert_hook fn, void *ud);

/** {users, monitors, restarts, degraded, events, duplicates} for metrics and tests. */
json_t *sp_psup_debug(sp_psup_t *s);

/* ---- seams (tests; defaults otherwise) ---------------------------------------------------- */
/** Where accounts come from: sp_accounts_get on the supervisor's accounts by default. */
typedef void (*sp_psup_account_fn)(void *ud, const char *user_id, const char *platform,
                                   sp_accounts_get_cb cb, void *cb_ud);
void sp_psup_set_account_source(sp_psup_t *s, sp_psup_account_fn fn, void *ud);
/** Restart backoff of failed monitors (default 1000 ms .. 60000 ms; degraded ones retry at
 *  max_ms). */
void sp_psup_set_backoff(sp_psup_t *s, uint64_t base_ms, uint64_t max_ms);

#endif
