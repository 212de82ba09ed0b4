/*
 * bench/widgets_rx: the receiving side of bench/widgets (issue 11 benchmark) and its send()
 * floor, with KERNEL receive timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME), so a number does not
 * depend on when this process got the cpu to read.
 *
 * widgets_rx rx CONFIG
 *   CONFIG: one widget socket per line, "PORT<TAB>URLPATH<TAB>SUBSCRIBE". Opens every
 *   WebSocket (handshakes pipelined in batches of 256), sends SUBSCRIBE, waits for each
 *   "subscribed", prints "READY <n>". Then for every text frame carrying "published_at_ns"
 *   (the server's stamp in TEST_MODE, CLOCK_REALTIME ns, taken just before the publish) prints
 *     M <socket> <event> <rx_ns> <published_at_ns> <released_at_ns or 0> <frame bytes>
 *   (event: message | show; released_at_ns: the AlertQueue tick that released a show).
 *   Pings are answered; a closed socket prints "X <socket>". Exits when stdin closes.
 *
 * widgets_rx floor N SIZE...
 *   The floor of the same run: a forked sender accepts N loopback TCP connections from this
 *   process and, once all are open, writes one message to each with a plain send() loop
 *   (message i has SIZE[i % count] bytes: the sizes of the frames measured by rx mode), the
 *   CLOCK_REALTIME ns taken just before each send() in its first 8 bytes. This process prints
 *     F <socket> <rx_ns - send_ns> <bytes>
 *   per message, then "DONE <n>". No framework, no queues: the kernel's cost of a loopback
 *   send() and receive, what a server cannot go under.
 *
 * Build: cc -O2 -o widgets_rx bench/widgets_rx.c   (bench/widgets.sh does it)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "wsb.h"

#define BUF_CAP (16 * 1024) /* a widget frame is < 2 KiB */
#define BATCH 64

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len;
    int subscribed;
    int want; /* floor: bytes of the message expected */
} sock_t;

static int64_t real_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s) die("number");
    return v;
}

static void send_frame(int fd, int op, const void *data, size_t len)
{
    unsigned char f[16 + 4096];
    if (len > 4096) return;
    size_t h = 0;
    f[h++] = (unsigned char)(0x80 | op);
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    }
    static const unsigned char mask[4] = { 0x5a, 0x17, 0xc3, 0x2e };
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) f[h + i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
    write_all(fd, f, h + len);
}

static void ws_request(int fd, int port, const char *path)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port);
    if (n <= 0 || n >= (int)sizeof(req)) die("request too long");
    write_all(fd, req, (size_t)n);
}

static void ws_response(int fd)
{
    char buf[4096];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, 1); /* byte by byte: nothing after the headers is lost */
        if (r <= 0) die("handshake read");
        got += (size_t)r;
        if (got >= 4 && memcmp(buf + got - 4, "\r\n\r\n", 4) == 0) break;
        if (got == sizeof(buf)) die("handshake too long");
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "widgets_rx: handshake refused: %.80s\n", buf);
        exit(1);
    }
}

static int64_t field_ns(const char *data, size_t len, const char *key)
{
    const char *p = memmem(data, len, key, strlen(key));
    if (p == NULL) return 0;
    p += strlen(key);
    int64_t v = 0;
    while (p < data + len && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

/* Parses whole frames out of s->buf; prints the stamped ones; answers pings. */
static void frames(sock_t *s, int idx, int64_t rx, int ready)
{
    size_t off = 0;
    for (;;) {
        size_t avail = s->len - off;
        unsigned char *p = s->buf + off;
        if (avail < 2) break;
        int op = p[0] & 0x0f;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4) break;
            len = ((uint64_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (p[1] & 0x80) h += 4;
        if (len > BUF_CAP - 16) die("frame too large");
        if (avail < h + len) break;
        const char *data = (const char *)p + h;
        if (op == 0x9) {
            send_frame(s->fd, 0xA, data, (size_t)len);
        } else if (op == 0x8) {
            printf("X %d\n", idx);
        } else if (op == 0x1) {
            if (!s->subscribed && memmem(data, (size_t)len, "\"subscribed\"", 12))
                s->subscribed = 1;
            int64_t pub = field_ns(data, (size_t)len, "\"published_at_ns\":");
            if (ready && pub > 0) {
                int64_t rel = field_ns(data, (size_t)len, "\"released_at_ns\":");
                const char *ev = memmem(data, (size_t)len, "\"event\":\"show\"", 14) ? "show"
                                                                                     : "message";
                printf("M %d %s %lld %lld %lld %zu\n", idx, ev, (long long)rx, (long long)pub,
                       (long long)rel, (size_t)(h + len));
            }
        }
        off += h + (size_t)len;
    }
    if (off > 0) {
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
    }
}

/* Reads what is there; the kernel timestamp of the last read is its bytes' arrival. */
static int pump(sock_t *s, int idx, int ready, int floor_mode)
{
    for (;;) {
        if (s->len == BUF_CAP) die("buffer full");
        struct iovec iov = { s->buf + s->len, BUF_CAP - s->len };
        char ctrl[256];
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                             .msg_controllen = sizeof(ctrl) };
        ssize_t r = recvmsg(s->fd, &mh, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (r <= 0) return -1;
        int64_t kts = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec t;
                memcpy(&t, CMSG_DATA(c), sizeof t);
                kts = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
            }
        int64_t rx = kts ? kts : real_ns();
        s->len += (size_t)r;
        if (!floor_mode) {
            frames(s, idx, rx, ready);
        } else if (s->want > 0 && s->len >= (size_t)s->want) {
            int64_t sent;
            memcpy(&sent, s->buf, sizeof sent);
            printf("F %d %lld %d\n", idx, (long long)(rx - sent), s->want);
            s->len = 0;
            s->want = 0;
            return 1;
        }
    }
}

/* The handshake's answer, then the SUBSCRIBE frame; the socket turns non-blocking. */
static void subscribe(sock_t *s, char **sub)
{
    ws_response(s->fd);
    send_frame(s->fd, 0x1, *sub, strlen(*sub));
    free(*sub);
    *sub = NULL;
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
}

static int rx_main(const char *config)
{
    FILE *cf = fopen(config, "r");
    if (!cf) die("config");
    size_t cap = 1024, n = 0;
    sock_t *socks = calloc(cap, sizeof *socks);
    char **subs = calloc(cap, sizeof *subs);
    static char line[16384];
    while (fgets(line, sizeof line, cf)) {
        char *f[3];
        char *p = line;
        int k = 0;
        for (; k < 3 && p; k++) {
            f[k] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        if (k < 3) continue;
        f[2][strcspn(f[2], "\r\n")] = 0;
        if (n == cap) {
            socks = realloc(socks, (cap *= 2) * sizeof *socks);
            subs = realloc(subs, cap * sizeof *subs);
            if (!socks || !subs) die("realloc");
        }
        sock_t *s = &socks[n];
        memset(s, 0, sizeof *s);
        s->buf = malloc(BUF_CAP);
        subs[n] = strdup(f[2]);
        if (!s->buf || !subs[n]) die("malloc");
        int port = (int)num(f[0]);
        s->fd = dial(port);
        ws_request(s->fd, port, f[1]);
        n++;
        if (n % BATCH == 0) /* the batch's handshakes were all sent: answers, subscribes */
            for (size_t i = n - BATCH; i < n; i++) subscribe(&socks[i], &subs[i]);
    }
    for (size_t i = n - n % BATCH; i < n; i++) subscribe(&socks[i], &subs[i]);
    fclose(cf);
    free(subs);
    int ep = epoll_create1(0);
    for (size_t i = 0; i < n; i++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, socks[i].fd, &ev);
    }
    struct epoll_event sev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);
    size_t nsub = 0;
    int ready = 0;
    for (;;) {
        if (!ready && nsub == n) {
            ready = 1;
            printf("READY %zu\n", n);
            fflush(stdout);
        }
        struct epoll_event evs[512];
        int k = epoll_wait(ep, evs, 512, 1000);
        for (int e = 0; e < k; e++) {
            uint64_t i = evs[e].data.u64;
            if (i == UINT64_MAX) {
                char b[256];
                if (read(0, b, sizeof b) <= 0) return 0; /* the driver is done */
                continue;
            }
            int was = socks[i].subscribed;
            if (pump(&socks[i], (int)i, ready, 0) < 0) {
                printf("X %d\n", (int)i);
                epoll_ctl(ep, EPOLL_CTL_DEL, socks[i].fd, NULL);
                close(socks[i].fd);
            }
            if (!was && socks[i].subscribed) nsub++;
        }
        fflush(stdout);
    }
}

/* The sender: accepts n, waits for the go byte, one send() per socket, waits for EOF. */
static void floor_sender(int lfd, int ctl, size_t n, const int *sizes, int nsizes)
{
    int *fds = calloc(n, sizeof *fds);
    if (!fds) die("calloc");
    for (size_t i = 0; i < n; i++) {
        fds[i] = accept(lfd, NULL, NULL);
        if (fds[i] < 0) die("accept");
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    char go;
    if (read(ctl, &go, 1) != 1) _exit(1);
    static unsigned char msg[BUF_CAP];
    memset(msg, 'x', sizeof msg);
    for (size_t i = 0; i < n; i++) {
        int size = sizes[i % (size_t)nsizes];
        int64_t t = real_ns();
        memcpy(msg, &t, sizeof t);
        if (send(fds[i], msg, (size_t)size, 0) != size) die("send");
    }
    while (read(ctl, &go, 1) > 0) {
    }
    _exit(0);
}

static int floor_main(size_t n, const int *sizes, int nsizes)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(0x7f000001);
    socklen_t al = sizeof a;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &al) < 0)
        die("listen");
    int ctl[2];
    if (pipe(ctl) < 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(ctl[1]);
        floor_sender(lfd, ctl[0], n, sizes, nsizes);
    }
    close(ctl[0]);
    close(lfd);
    sock_t *socks = calloc(n, sizeof *socks);
    if (!socks) die("calloc");
    int ep = epoll_create1(0);
    for (size_t i = 0; i < n; i++) {
        socks[i].fd = dial(ntohs(a.sin_port));
        socks[i].buf = malloc(BUF_CAP);
        if (!socks[i].buf) die("malloc");
        socks[i].want = sizes[i % (size_t)nsizes];
        fcntl(socks[i].fd, F_SETFL, fcntl(socks[i].fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        epoll_ctl(ep, EPOLL_CTL_ADD, socks[i].fd, &ev);
    }
    struct timespec pause = { 0, 300 * 1000000L };
    nanosleep(&pause, NULL); /* let the sender finish its accepts */
    if (write(ctl[1], "g", 1) != 1) die("go");
    size_t got = 0;
    while (got < n) {
        struct epoll_event evs[512];
        int k = epoll_wait(ep, evs, 512, 10000);
        if (k == 0) break; /* 10 s without a byte: report what arrived */
        for (int e = 0; e < k; e++) {
            uint64_t i = evs[e].data.u64;
            int r = pump(&socks[i], (int)i, 1, 1);
            if (r > 0) got++;
            if (r < 0) die("floor read");
        }
    }
    printf("DONE %zu\n", got);
    fflush(stdout);
    close(ctl[1]);
    waitpid(pid, NULL, 0);
    return got == n ? 0 : 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc == 3 && strcmp(argv[1], "rx") == 0) return rx_main(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "floor") == 0) {
        long n = num(argv[2]);
        int nsizes = argc - 3;
        int sizes[64];
        if (n < 1 || n > 1000000 || nsizes > 64) die("floor arguments");
        for (int i = 0; i < nsizes; i++) {
            long v = num(argv[3 + i]);
            if (v < 8 || v > BUF_CAP) die("size: 8..16384");
            sizes[i] = (int)v;
        }
        return floor_main((size_t)n, sizes, nsizes);
    }
    fprintf(stderr, "usage: %s rx CONFIG | floor N SIZE...\n", argv[0]);
    return 2;
}
