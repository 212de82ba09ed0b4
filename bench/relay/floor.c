/*
 * bench/relay/floor: the kernel's floor for a codec-copy fan-out on this machine.
 *
 * Does only the I/O a relay cannot avoid, the way our relay does it: one
 * wakeup per tick, one recv of everything the publisher socket holds, one
 * write of those bytes to each of N destination sockets. No RTMP, no parsing,
 * no queues. Its CPU is what moving the stream's bytes through one process
 * costs in the kernel (loopback TCP copies, ACK processing, wakeups); a relay
 * cannot cost less, so a target below it cannot be met on this machine.
 *
 *   floor <listen_port> <sink_port> <outputs> <tick_ms>
 *
 * Accepts one feeder (e.g. ffmpeg -re ... -f flv tcp://127.0.0.1:listen_port),
 * connects <outputs> sockets to 127.0.0.1:<sink_port> (a discard server), then
 * runs until killed. A destination that would block loses the rest of that
 * tick's bytes (a floor, not a relay).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (4 * 1024 * 1024)

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: floor <listen_port> <sink_port> <outputs> <tick_ms>\n");
        return 2;
    }
    int lport = atoi(argv[1]), sport = atoi(argv[2]), n = atoi(argv[3]), tick = atoi(argv[4]);
    if (n < 0 || n > 4096 || tick < 1)
        return 2;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int ls = tcp_socket();
    a.sin_port = htons((uint16_t)lport);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 4) != 0) {
        perror("floor: listen");
        return 1;
    }
    int *out = calloc((size_t)n + 1, sizeof(int));
    a.sin_port = htons((uint16_t)sport);
    for (int i = 0; i < n; i++) {
        out[i] = tcp_socket();
        if (connect(out[i], (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("floor: connect");
            return 1;
        }
        int one = 1, sndbuf = 512 * 1024;
        setsockopt(out[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        setsockopt(out[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    fprintf(stderr, "floor: listening on %d, %d outputs\n", lport, n);
    int in = accept(ls, NULL, NULL);
    if (in < 0) {
        perror("floor: accept");
        return 1;
    }
    close(ls);
    char *buf = malloc(BUF);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        next.tv_nsec += (long)tick * 1000000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
        ssize_t got = recv(in, buf, BUF, MSG_DONTWAIT);
        if (got == 0)
            return 0;
        if (got < 0)
            continue;
        for (int i = 0; i < n; i++)
            (void)send(out[i], buf, (size_t)got, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
}
