/*
 * sp_alertq: the AlertQueue of one user (seed AlertQueue, docs/alerts.md) as a pure module: no
 * I/O, no clock (now_ms is passed in), no logging. The user's stream manager owns one, pushes
 * every normalised alert, calls sp_alertq_tick every ALERT_PROCESSING_INTERVAL and publishes
 * the SHOW actions on alertbox:{user_id}.
 *
 * livestream/ must not include platforms/ (same layer), so the alert is this module's own
 * plain struct, field for field the normalised sp_alert_t of platforms/sp_platform_msg.h (the
 * type enum has the same order and names; the message is capped at SP_AQ_MESSAGE_CAP - 1 bytes,
 * cut at a UTF-8 boundary by sp_aq_copy_utf8). The caller that wires both copies the fields.
 *
 * Push: refused as duplicate when its id was already accepted (the last dedupe_n ids, kept as
 * 64-bit hashes, shown and dropped ones included); filtered under the per-type minimum; merged
 * into a waiting alert of the same type whose first arrival is at most merge_window_ms ago
 * (follows on the same platform: count adds up, names kept up to SP_AQ_NAMES_MAX; gift
 * subscriptions from the same gifter on the same platform: counts add up); else queued.
 * Full: the oldest entry of the lowest priority waiting is dropped; when the new alert's
 * priority is strictly below every waiting one, the new alert itself is dropped (a lower
 * priority never evicts a higher one). Both count in stats.dropped.
 * Order: priority (higher first) then arrival. Replays go to the front of their priority.
 * Invariant (the fuzz target checks it):
 *   accepted - merged + replayed + restored == len + shown + dropped + cleared
 */
#ifndef SP_ALERTQ_H
#define SP_ALERTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_AQ_ID_CAP 129
#define SP_AQ_PLATFORM_CAP 16
#define SP_AQ_NAME_CAP 257
#define SP_AQ_CURRENCY_CAP 16
#define SP_AQ_MESSAGE_CAP 2049
#define SP_AQ_NAMES_MAX 5          /* names kept in a merged follow entry */
#define SP_AQ_CAPACITY_MAX 4096
#define SP_AQ_DEDUPE_MAX 65536
#define SP_AQ_COUNT_MAX 1000000000LL
#define SP_AQ_AMOUNT_MAX 1e12

typedef enum {
    SP_AQ_FOLLOW = 0,
    SP_AQ_SUBSCRIPTION,
    SP_AQ_GIFT_SUBSCRIPTION,
    SP_AQ_CHEER,
    SP_AQ_RAID,
    SP_AQ_SUPER_CHAT,
    SP_AQ_MEMBER,
    SP_AQ_DONATION,
    SP_AQ_TYPE_COUNT
} sp_aq_type_t;

typedef struct {
    char id[SP_AQ_ID_CAP];           /* platform event id: the dedupe key; never empty */
    sp_aq_type_t type;
    char platform[SP_AQ_PLATFORM_CAP];
    char name[SP_AQ_NAME_CAP];
    bool has_amount;
    double amount;                   /* 0..SP_AQ_AMOUNT_MAX (cheers: bits) */
    char currency[SP_AQ_CURRENCY_CAP];
    bool has_count;
    int64_t count;                   /* 0..SP_AQ_COUNT_MAX */
    int tier;                        /* 0 = absent, else 1..3 */
    bool has_message;
    char message[SP_AQ_MESSAGE_CAP];
    int64_t ts;
} sp_aq_alert_t;

typedef struct {
    uint64_t key;                    /* stable for the life of the entry (and across restore) */
    int64_t seq;                     /* order within a priority; replays are negative */
    int64_t first_ms;                /* arrival of the first alert merged into it */
    sp_aq_alert_t alert;             /* merged: count is the total, name the first one */
    char names[SP_AQ_NAMES_MAX][SP_AQ_NAME_CAP]; /* merged follows: the first names */
    size_t n_names;
    bool replay;
} sp_aq_entry_t;

typedef struct {
    size_t capacity;                 /* ALERT_QUEUE_SIZE, 1..SP_AQ_CAPACITY_MAX */
    size_t dedupe_n;                 /* ids remembered, 1..SP_AQ_DEDUPE_MAX */
    int64_t merge_window_ms;         /* 0 = never merge */
    int64_t gap_ms;                  /* pause after each alert */
    int64_t duration_ms[SP_AQ_TYPE_COUNT];
    int priority[SP_AQ_TYPE_COUNT];  /* higher shows first, 0..1000 */
    int64_t min_cheer_bits;          /* cheers under this are filtered */
    double min_amount;               /* donations / super chats under this are filtered */
} sp_aq_opts_t;

typedef struct {
    uint64_t accepted, duplicates, filtered, merged, dropped, shown, cleared, replayed, restored;
} sp_aq_stats_t;

typedef enum {
    SP_AQ_QUEUED = 0,                /* a new entry (*key) */
    SP_AQ_MERGED,                    /* merged into entry *key */
    SP_AQ_DUPLICATE,
    SP_AQ_FILTERED,
    SP_AQ_DROPPED,                   /* accepted but dropped at once: the queue is full of
                                      * higher priorities (*key = 0) */
} sp_aq_push_result_t;

typedef struct {
    bool show;                       /* entry holds the alert to display now */
    sp_aq_entry_t entry;             /* valid when show; its key is now "shown" */
    int64_t duration_ms;
    int64_t gap_ms;
    int64_t next_due_ms;             /* when to tick next; -1 = idle (until push or resume) */
} sp_aq_tick_t;

typedef struct sp_alertq sp_alertq_t;

/** Defaults: capacity 50, dedupe 1024, window 5000, gap 1000, 5000 ms each, the seed order. */
void sp_alertq_opts_default(sp_aq_opts_t *o);
/** NULL on bad options (out of range) or no memory. */
sp_alertq_t *sp_alertq_new(const sp_aq_opts_t *o);
void sp_alertq_free(sp_alertq_t *q);
/** New durations, gap, priorities, merge window and minimums (capacity and dedupe_n must stay
 *  the same): 0 or SP_EINVAL (nothing changed). Waiting entries are reordered by the new
 *  priorities; the alert on screen keeps its end time. */
int sp_alertq_set_opts(sp_alertq_t *q, const sp_aq_opts_t *o);
/** The key of the waiting entry the last push or replay evicted to make room (0 = none),
 *  so the caller can forget its persisted row. */
uint64_t sp_alertq_last_evicted(const sp_alertq_t *q);

/**
 * A sp_aq_push_result_t (>= 0) and *key (may be NULL); SP_EINVAL for an alert out of its
 * domain (unknown type, empty or unterminated strings, amount/count/tier out of range).
 */
int sp_alertq_push(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now_ms, uint64_t *key);
/** Queues a past alert at the front of its priority: never deduped, filtered or merged. */
int sp_alertq_replay(sp_alertq_t *q, const sp_aq_alert_t *a, int64_t now_ms, uint64_t *key);
/** At most one SHOW per call; 0 or SP_EINVAL. */
int sp_alertq_tick(sp_alertq_t *q, int64_t now_ms, sp_aq_tick_t *out);
/** No SHOW while paused (the alert on screen plays to its end). */
void sp_alertq_pause(sp_alertq_t *q);
void sp_alertq_resume(sp_alertq_t *q);
bool sp_alertq_paused(const sp_alertq_t *q);
/** Ends the alert on screen now (the gap starts); SP_ENOTFOUND when none is showing. */
int sp_alertq_skip(sp_alertq_t *q, int64_t now_ms);
/** Drops every waiting entry (stats.cleared); returns how many. */
size_t sp_alertq_clear(sp_alertq_t *q);

/**
 * Restore after a restart: entries in their persisted order with their shown flags. Shown ones
 * only have their ids remembered (a redelivery stays a duplicate); the others are queued in
 * order with their key, count and names (stats.restored). 0 or SP_EINVAL (nothing changed).
 */
int sp_alertq_restore(sp_alertq_t *q, const sp_aq_entry_t *entries, const bool *shown, size_t n,
                      int64_t now_ms);

size_t sp_alertq_len(const sp_alertq_t *q);
bool sp_alertq_showing(const sp_alertq_t *q);
void sp_alertq_stats(const sp_alertq_t *q, sp_aq_stats_t *out);
/** Copies the waiting entry with this key into *out (out may be NULL: only whether it waits);
 *  false when none waits. Waiting entries are stored compactly (~150 bytes for a typical
 *  alert); this expands one (the caller's persistence). */
bool sp_alertq_get(const sp_alertq_t *q, uint64_t key, sp_aq_entry_t *out);
/** The i-th waiting entry in display order (0 = next); NULL past the end. O(n^2): tests.
 *  peek and find return the queue's one expanded view (allocated on first use): valid until
 *  the next peek/find on this queue or any change to it. */
const sp_aq_entry_t *sp_alertq_peek(const sp_alertq_t *q, size_t i);
/** The waiting entry with this key, or NULL (see peek for the pointer's life). */
const sp_aq_entry_t *sp_alertq_find(const sp_alertq_t *q, uint64_t key);

/** "follow", "subscription", ... (the sp_alert_type_name names); NULL outside the enum. */
const char *sp_aq_type_name(sp_aq_type_t t);
/** Copies at most cap - 1 bytes of src (len bytes), cut at a UTF-8 boundary; returns bytes. */
size_t sp_aq_copy_utf8(char *dst, size_t cap, const char *src, size_t len);

#endif
