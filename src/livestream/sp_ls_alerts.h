/*
 * sp_ls_alerts: the AlertQueue of every user, wired (docs/alerts.md "Wiring", docs/widgets.md).
 * One sp_alertq per user (created on the user's first alert or control), fed with every
 * normalised alert (the web layer hands psup's alerts over), ticked every
 * ALERT_PROCESSING_INTERVAL by one timer over the users with something queued or on screen.
 * Publishes on alertbox:{user_id}:
 *   show  {key, alert, names, count, text, test, replay, duration_ms}
 *   skip  {key}      clear {}      state {paused, queued, current}
 * The user's alertbox widget config (sp_widget_config) gives the templates, durations, gap,
 * priorities, enabled types, per-type minimums and the message filter; it is read from
 * widget_configs when the user's queue is created and replaced by sp_alerts_set_config.
 *
 * Durable: every accepted entry is a row of alert_queue (waiting / shown / dropped), written in
 * order through the store's batched queue; a `show` is published only after its row is marked
 * shown (committed), so an alert shown before a kill -9 is never shown again and one accepted
 * is shown after the restart. At start the waiting rows are queued again (sp_alertq_restore);
 * until that is done pushes wait and controls answer SP_EBUSY.
 *
 * Loop thread only.
 */
#ifndef SP_LS_ALERTS_H
#define SP_LS_ALERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/sp_buf.h"
#include "livestream/sp_alertq.h"

struct sp_store_s;  /* store/sp_store.h */
struct sp_pubsub_s; /* bus/sp_pubsub.h */
struct sp_registry_s; /* core/sp_registry.h */

typedef struct sp_alerts_s sp_alerts_t;

typedef struct {
    uv_loop_t *loop;
    struct sp_store_s *store;  /* NULL: nothing persisted (unit tests) */
    struct sp_pubsub_s *bus;
    size_t capacity;           /* ALERT_QUEUE_SIZE */
    int64_t interval_ms;       /* ALERT_PROCESSING_INTERVAL */
    struct sp_registry_s *reg; /* the livestream Registry: each queue is registered as
                                * alert_queue:{user_id} while it lives (NULL: not) */
    bool stamp_ns;             /* TEST_MODE: `show` carries released_at_ns (the queue released
                                * it at a tick) and published_at_ns (just before the publish),
                                * CLOCK_REALTIME ns, for bench/widgets */
} sp_alerts_opts_t;

typedef enum { SP_ALERTS_PAUSE, SP_ALERTS_RESUME, SP_ALERTS_SKIP, SP_ALERTS_CLEAR } sp_alerts_ctl_t;

/** Starts the restore of the persisted queues. NULL on bad options or no memory. */
sp_alerts_t *sp_alerts_new(const sp_alerts_opts_t *o);
/** Stops ticking and publishing (shutdown begins; the bus may go away after this). */
void sp_alerts_shutdown(sp_alerts_t *a);
/** Frees (the memory goes when the store's pending callbacks have run). */
void sp_alerts_free(sp_alerts_t *a);

/** A normalised alert JSON {id, type, platform, name, amount?, currency?, count?, tier?,
 *  message?, ts} to the queue's struct: 0 or SP_EINVAL. */
int sp_alerts_from_json(const json_t *j, sp_aq_alert_t *out);

/** An alert arrived (psup): filtered by the config, else pushed (deduped, merged, queued). */
void sp_alerts_push(sp_alerts_t *a, const char *user_id, const sp_aq_alert_t *al);
/** A test alert of type_name: 0 with *key, SP_EINVAL (unknown type), SP_EBUSY (restoring). */
int sp_alerts_test(sp_alerts_t *a, const char *user_id, const char *type_name, uint64_t *key);
/** A past alert again (front of its priority): 0 with *key, SP_EBUSY. */
int sp_alerts_replay(sp_alerts_t *a, const char *user_id, const sp_aq_alert_t *al,
                     uint64_t *key);
/** Pause/resume/skip/clear: 0 (*state = {paused, queued, current}, new reference),
 *  SP_ENOTFOUND (skip with nothing on screen), SP_EBUSY (restoring). */
int sp_alerts_control(sp_alerts_t *a, const char *user_id, sp_alerts_ctl_t c, json_t **state);
/** {paused, queued, current, stats:{accepted, duplicates, filtered, merged, dropped, shown,
 *  cleared, replayed, restored}} of the user (new reference). */
json_t *sp_alerts_state(sp_alerts_t *a, const char *user_id);
/** The user's alertbox config changed (a full validated config; borrowed). */
void sp_alerts_set_config(sp_alerts_t *a, const char *user_id, const json_t *config);
/** CLOCK_REALTIME in ns (the stamps of stamp_ns; the chat test route uses it too). */
int64_t sp_alerts_wall_ns(void);
/** streampai_alerts_* series (Prometheus text). */
void sp_alerts_write_metrics(const sp_alerts_t *a, sp_buf_t *out);

#endif
