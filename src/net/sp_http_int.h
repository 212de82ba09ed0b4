/*
 * sp_http_int: the HTTP server's internal types, shared by sp_http.c (connections, parsing,
 * responses) and sp_http_req.c (the request object's accessors). Not for other modules.
 */
#ifndef SP_HTTP_INT_H
#define SP_HTTP_INT_H

#include <http_parser.h>

#include "core/sp_buf.h"
#include "net/sp_http.h"

#define MAX_HEADERS 100
#define READ_CHUNK 65536
#define WRITE_QUEUE_CAP (1u << 20)

typedef struct conn_s conn_t;

struct sp_http_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    bool freed;
    sp_http_opts_t opts;
    char listen_host[256];
    int listen_port;
    sp_router_t *router;
    conn_t *conns; /* doubly linked list */
    size_t n_conns;
    size_t n_busy;
    size_t n_upgraded;  /* connections handed to another module, still open (still counted) */
    size_t max_conns;   /* opts.max_connections, lowered to fit RLIMIT_NOFILE (listen) */
    size_t fd_margin;   /* over max_conns + this: closed at once, no answer (fd reserve) */
    uint64_t refused_limit, refused_fds, accept_errors; /* /metrics counters */
    uint64_t last_accept_warn_ms;
    bool metrics; /* render callback registered */
    int open_handles; /* listener + conns' handles + upgraded handles still to be closed */
};

typedef struct {
    uint32_t name, value; /* offsets into req->raw */
} hdr_t;

struct sp_http_req_s {
    conn_t *conn; /* NULL once the connection is gone */
    sp_http_server_t *srv;
    int method;
    sp_buf_t raw; /* url NUL, then name NUL value NUL ... */
    uint32_t url_len;
    size_t n_headers;
    hdr_t hdrs[MAX_HEADERS];
    char *path, *query; /* owned copies */
    sp_buf_t body;
    sp_route_match_t match;
    int match_status;
    char *param_values[SP_ROUTE_MAX_PARAMS];
    sp_buf_t res_headers;
    void *data;
    void (*data_free)(void *);
    char user[64];
    uint64_t start_us;
    int n_content_length;
    bool has_te, te_chunked_only;
    bool keep_alive;
    bool responded;
    int early_status; /* a limit was hit while parsing */
    bool header_field_open; /* last callback was a header field */
};

struct conn_s {
    sp_http_server_t *srv;
    uv_tcp_t *tcp;
    uv_timer_t timer;
    http_parser parser;
    sp_buf_t in;
    sp_http_req_t *req;
    size_t header_bytes;
    bool in_headers;  /* between message begin and headers complete */
    bool dispatched;  /* current req handed to guard/handler */
    bool reading;
    bool closing;
    bool close_after_write;
    bool write_blocked; /* too much queued output: parse no further */
    bool processing;    /* inside conn_process (no recursion) */
    sp_buf_t *mem_out;  /* memory mode (tests, fuzzing): no socket, writes land here */
    bool lingering;     /* answer sent, write side shut: draining input before close */
    int n_handles;      /* tcp + timer still to be closed; the conn is freed at 0 */
    uv_shutdown_t shutdown_req;
    int pending_writes;
    char ip[64];
    conn_t *prev, *next;
};

/* sp_http_req.c: a request on c (limits from c's server), and its release. */
sp_http_req_t *sp_http_req_new_(conn_t *c);
void sp_http_req_free_(sp_http_req_t *r);

/* sp_http_budget.c: fits max_conns / fd_margin to RLIMIT_NOFILE and registers the /metrics
 * series of the budget (at listen; sp_http_budget_done_ unregisters them). */
void sp_http_budget_fit_(sp_http_server_t *s);
void sp_http_budget_done_(sp_http_server_t *s);
/* A connection was just accepted and counted: admit it, answer 503, or close it at once. */
enum { SP_HTTP_ADMIT = 0, SP_HTTP_REFUSE, SP_HTTP_DROP };
int sp_http_budget_admit_(sp_http_server_t *s, const char *ip);
/* accept() failed (status < 0): counted, logged at most once a second. */
void sp_http_budget_accept_failed_(sp_http_server_t *s, int status);
/* sp_http_req.c: an HTML 404 page when the request is a browser navigation (Accept starts
   with text/html); false when it is not (the caller answers JSON). */
bool sp_http_html_404(sp_http_req_t *req);

#endif
