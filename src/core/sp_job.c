/* sp_job: uv_queue_work wrapper. */
#include "core/sp_job.h"

#include "core/sp_alloc.h"

typedef struct {
    uv_work_t req;
    sp_job_work_cb work;
    sp_job_done_cb done;
    void *arg;
} job_t;

static unsigned pending;

static void run_work(uv_work_t *req)
{
    job_t *j = sp_container_of(req, job_t, req);
    j->work(j->arg);
}

static void run_done(uv_work_t *req, int status)
{
    job_t *j = sp_container_of(req, job_t, req);
    pending--;
    if (j->done)
        j->done(j->arg, status);
    sp_free(j);
}

int sp_job_submit(uv_loop_t *loop, sp_job_work_cb work, sp_job_done_cb done, void *arg)
{
    job_t *j = sp_calloc(1, sizeof(*j));
    j->work = work;
    j->done = done;
    j->arg = arg;
    int rc = uv_queue_work(loop, &j->req, run_work, run_done);
    if (rc < 0) {
        sp_free(j);
        return rc;
    }
    pending++;
    return 0;
}

unsigned sp_job_pending(void)
{
    return pending;
}
