/*
 * sp_hiredis_libuv: private, patched copy of hiredis 0.14.1's
 * <hiredis/adapters/libuv.h> (header-only, BSD-3-Clause, see hiredis COPYING).
 *
 * Changes (docs/internals/websocket.md, "Multi-node"):
 *   - on a poll error (libuv reports POLLERR/refused connect as status < 0) hiredis is
 *     told to read/write anyway, so it sees the error and runs the connect/disconnect
 *     callback; upstream returns early and the context + handle leak (hiredis #508/#450,
 *     fixed in 1.0, which Debian bookworm lacks);
 *   - attach frees its allocation when uv_poll_init fails (upstream leaks it);
 *   - includes <hiredis/...>, sp_alloc, names prefixed so they never clash with the
 *     system header.
 * Only sp_pubsub_redis.c includes it.
 */
#ifndef SP_HIREDIS_LIBUV_H
#define SP_HIREDIS_LIBUV_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <string.h>
#include <uv.h>

#include "core/sp_alloc.h"

typedef struct {
    redisAsyncContext *context;
    uv_poll_t handle;
    int events;
} sp_redis_uv_events_t;

static void sp_redis_uv_poll(uv_poll_t *handle, int status, int events)
{
    sp_redis_uv_events_t *p = (sp_redis_uv_events_t *)handle->data;
    int ev = status ? p->events : events; /* on error let hiredis see it */
    if (p->context != NULL && (ev & UV_READABLE))
        redisAsyncHandleRead(p->context);
    if (p->context != NULL && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

static void sp_redis_uv_update(sp_redis_uv_events_t *p)
{
    if (p->events)
        uv_poll_start(&p->handle, p->events, sp_redis_uv_poll);
    else
        uv_poll_stop(&p->handle);
}

static void sp_redis_uv_add_read(void *privdata)
{
    sp_redis_uv_events_t *p = privdata;
    p->events |= UV_READABLE;
    sp_redis_uv_update(p);
}

static void sp_redis_uv_del_read(void *privdata)
{
    sp_redis_uv_events_t *p = privdata;
    p->events &= ~UV_READABLE;
    sp_redis_uv_update(p);
}

static void sp_redis_uv_add_write(void *privdata)
{
    sp_redis_uv_events_t *p = privdata;
    p->events |= UV_WRITABLE;
    sp_redis_uv_update(p);
}

static void sp_redis_uv_del_write(void *privdata)
{
    sp_redis_uv_events_t *p = privdata;
    p->events &= ~UV_WRITABLE;
    sp_redis_uv_update(p);
}

static void sp_redis_uv_on_close(uv_handle_t *handle)
{
    sp_free(handle->data);
}

static void sp_redis_uv_cleanup(void *privdata)
{
    sp_redis_uv_events_t *p = privdata;
    p->context = NULL; /* the context may no longer exist */
    uv_close((uv_handle_t *)&p->handle, sp_redis_uv_on_close);
}

static int sp_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    redisContext *c = &(ac->c);
    if (ac->ev.data != NULL)
        return REDIS_ERR;
    sp_redis_uv_events_t *p = sp_calloc(1, sizeof(*p));
    if (uv_poll_init(loop, &p->handle, c->fd) != 0) {
        sp_free(p);
        return REDIS_ERR;
    }
    ac->ev.addRead = sp_redis_uv_add_read;
    ac->ev.delRead = sp_redis_uv_del_read;
    ac->ev.addWrite = sp_redis_uv_add_write;
    ac->ev.delWrite = sp_redis_uv_del_write;
    ac->ev.cleanup = sp_redis_uv_cleanup;
    ac->ev.data = p;
    p->handle.data = p;
    p->context = ac;
    return REDIS_OK;
}

#endif
