/*
 * sp_http_budget: the HTTP server's connection budget (see sp_http.c for the server).
 *
 * A connection upgraded to another protocol (WebSocket) keeps counting in max_connections
 * until its new owner reports it closed (sp_http_server_upgraded_closed). At listen the
 * budget is fitted to RLIMIT_NOFILE: the soft limit is raised toward the hard one when
 * needed, else max_connections is lowered (with a warning), so that a reserve of
 * descriptors stays free for the database, outbound calls and the 503 answers themselves:
 * accept() never fails for everyone because clients used every descriptor. Connections past
 * the budget plus a quarter of the reserve are closed at once without an answer; libuv's own
 * spare descriptor (its EMFILE trick) is the last resort if something else empties the table.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "core/sp_alloc.h"
#include "core/sp_err.h"
#include "core/sp_log.h"
#include "core/sp_time.h"
#include "net/sp_http.h"
#include "net/sp_http_int.h"
#include "net/sp_metrics.h"

/* Descriptors kept out of the connection budget: 1/16 of RLIMIT_NOFILE, at least 64. */
#define FD_RESERVE_MIN 64
static size_t fd_reserve(size_t nofile)
{
    return nofile / 16 > FD_RESERVE_MIN ? nofile / 16 : FD_RESERVE_MIN;
}

static void budget_metrics(sp_buf_t *out, void *ud)
{
    const sp_http_server_t *s = ud;
    sp_buf_appendf(out,
                   "# TYPE streampai_http_max_connections gauge\n"
                   "streampai_http_max_connections %zu\n"
                   "# TYPE streampai_http_upgraded_connections gauge\n"
                   "streampai_http_upgraded_connections %zu\n"
                   "# TYPE streampai_http_refused_total counter\n"
                   "streampai_http_refused_total{reason=\"max_connections\"} %llu\n"
                   "streampai_http_refused_total{reason=\"fd_reserve\"} %llu\n"
                   "streampai_http_refused_total{reason=\"accept_error\"} %llu\n",
                   s->max_conns, s->n_upgraded, (unsigned long long)s->refused_limit,
                   (unsigned long long)s->refused_fds, (unsigned long long)s->accept_errors);
}

/* Fits max_connections (HTTP + upgraded) under RLIMIT_NOFILE minus the reserve. */
void sp_http_budget_fit_(sp_http_server_t *s)
{
    struct rlimit rl;
    size_t want = s->opts.max_connections;
    if (!s->metrics)
        sp_metrics_register(budget_metrics, s);
    s->metrics = true;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    size_t need = want + (want / 15 + 1 > FD_RESERVE_MIN ? want / 15 + 1 : FD_RESERVE_MIN);
    if (rl.rlim_cur < need && rl.rlim_max > rl.rlim_cur) {
        struct rlimit up = rl;
        up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    size_t nofile = (size_t)rl.rlim_cur;
    size_t reserve = fd_reserve(nofile);
    size_t budget = nofile > 2 * reserve ? nofile - reserve : nofile / 2;
    s->max_conns = want < budget ? want : budget;
    s->fd_margin = reserve / 4;
    if (s->max_conns < want)
        sp_warn("http", "MAX_CONNECTIONS lowered to fit the descriptor limit",
                "max_connections=%zu configured=%zu nofile=%zu reserve=%zu hint=%s",
                s->max_conns, want, nofile, reserve, "raise the limit (ulimit -n, LimitNOFILE)");
    else
        sp_info("http", "connection budget", "max_connections=%zu nofile=%zu reserve=%zu",
                s->max_conns, nofile, reserve);
}


void sp_http_server_upgraded_closed(sp_http_server_t *s)
{
    if (s == NULL || s->n_upgraded == 0)
        return;
    s->n_upgraded--;
    s->open_handles--;
    if (s->freed && s->open_handles == 0)
        sp_free(s);
}

int sp_http_budget_admit_(sp_http_server_t *s, const char *ip)
{
    size_t n_open = s->n_conns + s->n_upgraded;
    if (n_open > s->max_conns + s->fd_margin) {
        s->refused_fds++;
        return SP_HTTP_DROP;
    }
    if (n_open <= s->max_conns)
        return SP_HTTP_ADMIT;
    s->refused_limit++;
    sp_warn("http", "connection limit reached", "max=%zu open=%zu websockets=%zu ip=%s",
            s->max_conns, n_open, s->n_upgraded, ip);
    return SP_HTTP_REFUSE;
}

void sp_http_budget_accept_failed_(sp_http_server_t *s, int status)
{
    /* EMFILE/ENFILE: libuv already accepted and closed the pending connections with its
     * spare descriptor; one warning a second at most */
    uint64_t now = sp_mono_ms();
    s->accept_errors++;
    if (now - s->last_accept_warn_ms < 1000)
        return;
    s->last_accept_warn_ms = now;
    sp_warn("http", "accept failed", "err=%s open=%zu websockets=%zu total=%llu",
            sp_err_name(status), s->n_conns, s->n_upgraded, (unsigned long long)s->accept_errors);
}

void sp_http_budget_done_(sp_http_server_t *s)
{
    if (s->metrics)
        sp_metrics_unregister(budget_metrics, s);
    s->metrics = false;
}
