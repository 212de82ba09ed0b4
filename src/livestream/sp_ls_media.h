/*
 * sp_ls_media: the media-plane operations the livestream manager needs, as a
 * small vtable, so the manager does not care whether Cloudflare Stream, the
 * built-in relay or a test double answers (docs/livestream.md, "Pieces").
 * sp_ls_media_cf.c implements it over src/media/sp_cloudflare.h.
 *
 * Every callback runs on the loop, never synchronously; a function that fails
 * synchronously returns the error and never calls its callback.
 */
#ifndef SP_LS_MEDIA_H
#define SP_LS_MEDIA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    SP_INPUT_NONE = 0,      /* never connected (status null) */
    SP_INPUT_CONNECTED,
    SP_INPUT_DISCONNECTED,
    SP_INPUT_ERRORED,
    SP_INPUT_UNKNOWN,       /* the API could not tell us (outage) */
} sp_input_status_t;

const char *sp_input_status_name(sp_input_status_t s);

typedef struct {
    const char *uid;
    const char *rtmp_url;
    const char *stream_key;
    sp_input_status_t status;
    int64_t since_ms; /* when the current status began (Cloudflare statusEnteredAt), 0 if unknown */
    const json_t *health; /* the relay's input health (borrowed, unchecked); NULL if none */
    const json_t *recording; /* the input's recording object (borrowed, unchecked) or NULL */
} sp_ls_input_t;

typedef struct {
    const char *uid;
    const char *url;
    const char *stream_key;
    /* health, when the backend reports it (the built-in relay): status NULL = unknown */
    const char *status;     /* idle | connecting | forwarding | error */
    const char *last_error; /* NULL when none */
    int64_t bytes;          /* -1 = unknown */
    int64_t reconnects;     /* -1 = unknown */
} sp_ls_output_t;

/* errmsg: a short human message (e.g. Cloudflare's "code: message"), never NULL. */
typedef void (*sp_ls_input_cb)(int err, const char *errmsg, const sp_ls_input_t *in, void *ud);
typedef void (*sp_ls_output_cb)(int err, const char *errmsg, const sp_ls_output_t *out, void *ud);
typedef void (*sp_ls_list_cb)(int err, const char *errmsg, const sp_ls_output_t *outs, size_t n,
                              void *ud);
typedef void (*sp_ls_done_cb)(int err, const char *errmsg, void *ud);

typedef struct {
    const char *provider; /* "cloudflare", "relay" */
    int (*create_input)(void *ctx, const char *user_id, sp_ls_input_cb cb, void *ud);
    int (*get_input)(void *ctx, const char *input_uid, sp_ls_input_cb cb, void *ud);
    int (*create_output)(void *ctx, const char *input_uid, const char *url, const char *key,
                         sp_ls_output_cb cb, void *ud);
    int (*list_outputs)(void *ctx, const char *input_uid, sp_ls_list_cb cb, void *ud);
    /* the same at background (poll) priority, for the periodic health refresh; optional */
    int (*list_outputs_poll)(void *ctx, const char *input_uid, sp_ls_list_cb cb, void *ud);
    int (*delete_output)(void *ctx, const char *input_uid, const char *output_uid,
                         sp_ls_done_cb cb, void *ud);
    /* deletes a live input (its key stops working at once); optional */
    int (*delete_input)(void *ctx, const char *input_uid, sp_ls_done_cb cb, void *ud);
    /* built-in relay only (NULL otherwise): re-create a live input the media service lost,
       with the same uid and stream key, so the encoder's settings keep working */
    int (*restore_input)(void *ctx, const char *user_id, const char *input_uid,
                         const char *key, sp_ls_input_cb cb, void *ud);
    /* built-in relay only (NULL otherwise, never sent to Cloudflare): the input's disconnect
       protection (the "be right back" slate); idempotent, retried by the client */
    int (*set_input_protection)(void *ctx, const char *input_uid, bool on, sp_ls_done_cb cb,
                                void *ud);
    /* true if a background (poll) call fits in the global budget now */
    bool (*poll_allowed)(void *ctx);
    /* true while the circuit breaker is open */
    bool (*degraded)(void *ctx);
} sp_ls_media_ops_t;

typedef struct {
    const sp_ls_media_ops_t *ops;
    void *ctx;
} sp_ls_media_t;

#endif
