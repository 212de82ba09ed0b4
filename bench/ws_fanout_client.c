/*
 * bench/ws_fanout_client: the receiving side of bench/livestream's fan-out measurement.
 *
 * Opens N WebSocket connections to 127.0.0.1:PORT PATH, optionally sends one text message
 * on each (a subscribe) and waits for one reply per socket. Then, for every line
 * "TPORT BASE64\n" on stdin, it writes the decoded bytes (an HTTP request: the trigger) to
 * 127.0.0.1:TPORT, and records on every socket the KERNEL receive time (SO_TIMESTAMPNS) of
 * the first data containing MATCH. It prints one line per trigger:
 *   "R <http_response_us> <received> <us> <us> ..."   (microseconds after the trigger write)
 * Kernel timestamps make the numbers independent of how fast this client reads.
 *
 * Usage: ws_fanout_client PORT PATH N SUBSCRIBE_TEXT|- MATCH
 * Build: cc -O2 -o ws_fanout_client bench/ws_fanout_client.c   (bench/livestream.sh does it)
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

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/* Reads (blocking) until the handshake response ends; leftover bytes are dropped (none:
   the server sends nothing before our subscribe). */
static void handshake(int fd, const char *path)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     path);
    write_all(fd, req, (size_t)n);
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) die("handshake read");
        got += (size_t)r;
        buf[got] = 0;
        if (strstr(buf, "\r\n\r\n")) break;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "handshake refused: %.80s\n", buf);
        exit(1);
    }
}

static void send_text(int fd, const char *s)
{
    size_t len = strlen(s);
    unsigned char f[16 + 65536];
    size_t h = 0;
    f[h++] = 0x81;
    if (len < 126) {
        f[h++] = (unsigned char)(0x80 | len);
    } else {
        f[h++] = 0x80 | 126;
        f[h++] = (unsigned char)(len >> 8);
        f[h++] = (unsigned char)len;
    }
    unsigned char mask[4] = { 0x12, 0x34, 0x56, 0x78 };
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) f[h + i] = (unsigned char)s[i] ^ mask[i & 3];
    write_all(fd, f, h + len);
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static size_t b64dec(const char *s, unsigned char *out)
{
    size_t n = 0;
    int acc = 0, bits = 0;
    for (; *s; s++) {
        int v = b64val(*s);
        if (v < 0) continue;
        acc = (acc << 6) | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

/* recvmsg with the kernel timestamp; returns bytes read (0 = closed, -1 = EAGAIN). */
static ssize_t recv_ts(int fd, char *buf, size_t cap, int64_t *kts)
{
    struct iovec iov = { buf, cap };
    char ctrl[256];
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl,
                         .msg_controllen = sizeof(ctrl) };
    ssize_t r = recvmsg(fd, &mh, MSG_DONTWAIT);
    if (r < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : 0;
    *kts = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS)
            *kts = ts_ns((struct timespec *)CMSG_DATA(c));
    if (*kts == 0) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        *kts = ts_ns(&t);
    }
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s PORT PATH N SUBSCRIBE|- MATCH\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    const char *path = argv[2];
    int n = atoi(argv[3]);
    const char *sub = strcmp(argv[4], "-") == 0 ? NULL : argv[4];
    const char *match = argv[5];
    int *fds = calloc((size_t)n, sizeof(int));
    int64_t *got = calloc((size_t)n, sizeof(int64_t));
    static char buf[65536];
    for (int i = 0; i < n; i++) {
        fds[i] = dial(port);
        handshake(fds[i], path);
        if (sub) send_text(fds[i], sub);
    }
    if (sub) /* one reply per socket (the subscribe answer) */
        for (int i = 0; i < n; i++) {
            ssize_t r = read(fds[i], buf, sizeof(buf));
            if (r <= 0) die("subscribe reply");
        }
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    printf("READY %d\n", n);
    fflush(stdout);
    static char line[1 << 20];
    static unsigned char req[1 << 20];
    while (fgets(line, sizeof(line), stdin)) {
        int tport = atoi(line);
        char *sp = strchr(line, ' ');
        if (!sp) break;
        size_t rl = b64dec(sp + 1, req);
        int64_t kts;
        for (int i = 0; i < n; i++) { /* drop anything that arrived before the trigger */
            got[i] = 0;
            while (recv_ts(fds[i], buf, sizeof(buf), &kts) > 0) {
            }
        }
        int tfd = dial(tport);
        struct timespec t0s;
        clock_gettime(CLOCK_REALTIME, &t0s);
        int64_t t0 = ts_ns(&t0s);
        write_all(tfd, req, rl);
        fcntl(tfd, F_SETFL, fcntl(tfd, F_GETFL) | O_NONBLOCK);
        struct epoll_event tev = { .events = EPOLLIN, .data.u32 = (uint32_t)n };
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
        int64_t resp = -1;
        int have = 0;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t deadline = ts_ns(&now) + 10000000000LL;
        while ((have < n || resp < 0) && ts_ns(&now) < deadline) {
            struct epoll_event evs[256];
            int k = epoll_wait(ep, evs, 256, 100);
            for (int e = 0; e < k; e++) {
                uint32_t i = evs[e].data.u32;
                if ((int)i == n) {
                    ssize_t r = recv_ts(tfd, buf, sizeof(buf) - 1, &kts);
                    if (r > 0 && resp < 0) resp = kts - t0;
                    if (r == 0) {
                        epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL);
                        if (resp < 0) resp = 0;
                    }
                    continue;
                }
                ssize_t r;
                while ((r = recv_ts(fds[i], buf, sizeof(buf) - 1, &kts)) > 0) {
                    buf[r] = 0;
                    if (got[i] == 0 && memmem(buf, (size_t)r, match, strlen(match))) {
                        got[i] = kts - t0;
                        if (got[i] <= 0) got[i] = 1;
                        have++;
                    }
                }
                if (r == 0) {
                    fprintf(stderr, "socket %u closed\n", i);
                    epoll_ctl(ep, EPOLL_CTL_DEL, fds[i], NULL);
                }
            }
            clock_gettime(CLOCK_REALTIME, &now);
        }
        epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL);
        close(tfd);
        printf("R %lld %d", (long long)(resp / 1000), have);
        for (int i = 0; i < n; i++)
            if (got[i]) printf(" %lld", (long long)(got[i] / 1000));
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
