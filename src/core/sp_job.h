/*
 * sp_job: blocking work (disk, password hashing, DNS) on libuv's thread pool,
 * with the result delivered back on the loop thread. The work callback must
 * touch nothing but its own arg; the done callback runs on the loop.
 */
#ifndef SP_JOB_H
#define SP_JOB_H

#include <uv.h>

typedef void (*sp_job_work_cb)(void *arg);
/** status is 0, or UV_ECANCELED if the job was cancelled before it ran. */
typedef void (*sp_job_done_cb)(void *arg, int status);

int sp_job_submit(uv_loop_t *loop, sp_job_work_cb work, sp_job_done_cb done, void *arg);
/** Jobs submitted and not yet done (used by shutdown to wait for flushes). */
unsigned sp_job_pending(void);

#endif
