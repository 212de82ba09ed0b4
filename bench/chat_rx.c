/*
 * bench/chat_rx: the receiving side of bench/platforms' chat latency measurement.
 *
 * Reads a config file with one socket per line, "PATHID<TAB>PORT<TAB>URLPATH<TAB>SUBSCRIBE",
 * opens every WebSocket (127.0.0.1:PORT URLPATH), sends the SUBSCRIBE text, waits on each
 * socket for a frame containing "subscribed", then prints "READY <n>". From then on, for every
 * text frame that carries a bench message id ("id":"bench...), it prints
 *   M <socket index> <receive time, CLOCK_MONOTONIC ns> <message id>
 * where the receive time is the KERNEL's (SO_TIMESTAMPNS, converted from CLOCK_REALTIME), so the
 * number does not depend on when this process got the cpu to read. Pings are answered (pong);
 * a closed socket prints "X <index>". Exits on SIGTERM or when stdin closes.
 *
 * Build: cc -O2 -o chat_rx bench/chat_rx.c   (bench/platforms.mjs does it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsb.h"

#define BUF_CAP (256 * 1024)

typedef struct {
    int fd;
    unsigned char *buf;
    size_t len;
    int subscribed;
} sock_t;

static int64_t now_ns(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
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

static int dial_ws(int port, const char *path)
{
    int fd = dial(port);
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path, port);
    if (n <= 0 || n >= (int)sizeof(req)) die("request too long");
    write_all(fd, req, (size_t)n);
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
        fprintf(stderr, "chat_rx: handshake refused: %.80s\n", buf);
        exit(1);
    }
    return fd;
}

/* Parses whole frames out of s->buf; calls back for text frames; answers pings. */
static void frames(sock_t *s, int idx, int64_t rx_mono, int ready)
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
        if (p[1] & 0x80) h += 4; /* servers do not mask; skip it if one does */
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
            const char *id = memmem(data, (size_t)len, "\"id\":\"bench", 11);
            if (ready && id) {
                id += 6;
                const char *end = memchr(id, '"', (size_t)(data + len - id));
                if (end && end - id < 128)
                    printf("M %d %lld %.*s\n", idx, (long long)rx_mono, (int)(end - id), id);
            }
        }
        off += h + (size_t)len;
    }
    if (off > 0) {
        memmove(s->buf, s->buf + off, s->len - off);
        s->len -= off;
    }
}

/* Reads what is there; the kernel timestamp of the last read is the frames' arrival. */
static int pump(sock_t *s, int idx, int ready)
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
        /* CLOCK_REALTIME -> CLOCK_MONOTONIC (the driver's process.hrtime clock) */
        int64_t mono = now_ns(CLOCK_MONOTONIC), real = now_ns(CLOCK_REALTIME);
        int64_t rx = kts ? kts - (real - mono) : mono;
        s->len += (size_t)r;
        frames(s, idx, rx, ready);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
        return 2;
    }
    FILE *cf = fopen(argv[1], "r");
    if (!cf) die("config");
    size_t cap = 1024, n = 0;
    sock_t *socks = calloc(cap, sizeof *socks);
    static char line[16384];
    while (fgets(line, sizeof line, cf)) {
        char *f[4];
        char *p = line;
        int k = 0;
        for (; k < 4 && p; k++) {
            f[k] = p;
            p = strchr(p, '\t');
            if (p) *p++ = 0;
        }
        if (k < 4) continue;
        f[3][strcspn(f[3], "\r\n")] = 0;
        if (n == cap) socks = realloc(socks, (cap *= 2) * sizeof *socks);
        sock_t *s = &socks[n];
        memset(s, 0, sizeof *s);
        s->buf = malloc(BUF_CAP);
        if (!s->buf) die("malloc");
        s->fd = dial_ws(atoi(f[1]), f[2]);
        send_frame(s->fd, 0x1, f[3], strlen(f[3]));
        fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
        n++;
    }
    fclose(cf);
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
            if (pump(&socks[i], (int)i, ready) < 0) {
                printf("X %d\n", (int)i);
                epoll_ctl(ep, EPOLL_CTL_DEL, socks[i].fd, NULL);
                close(socks[i].fd);
            }
            if (!was && socks[i].subscribed) nsub++;
        }
        fflush(stdout);
    }
}
