/*
 * sp_iofault.so: an LD_PRELOAD shim for the I/O fault campaign (make chaos, part b).
 * write/pwrite/pwrite64/writev/fsync/fdatasync on files whose path starts with SP_IOFAULT_PATH
 * fail on command. The command is the first word of the file SP_IOFAULT_CTL, re-read at most
 * every 10 ms:
 *   off      nothing fails
 *   enospc   writes fail with ENOSPC (disk full); fsync works
 *   eio      writes and fsyncs fail with EIO
 *   fsync    only fsync/fdatasync fail with EIO (the page cache took the write)
 *   erofs    writes and fsyncs fail with EROFS (the file system was remounted read-only)
 * Each injected failure writes one line "iofault: <call> <errno> fd=<n>" to stderr (the
 * server's log), so the campaign counts the faults it caused. Sockets, pipes and files outside
 * the path are never touched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum { M_OFF, M_ENOSPC, M_EIO, M_FSYNC, M_EROFS };

static _Atomic int mode = M_OFF;
static _Atomic long long last_ns;

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int current_mode(void)
{
    const char *ctl = getenv("SP_IOFAULT_CTL");
    if (!ctl)
        return M_OFF;
    long long t = now_ns();
    if (t - atomic_load(&last_ns) < 10000000LL)
        return atomic_load(&mode);
    atomic_store(&last_ns, t);
    int fd = (int)syscall(SYS_openat, AT_FDCWD, ctl, O_RDONLY | O_CLOEXEC);
    int m = M_OFF;
    if (fd >= 0) {
        char b[16] = { 0 };
        long n = syscall(SYS_read, fd, b, sizeof b - 1);
        syscall(SYS_close, fd);
        if (n > 0) {
            if (strncmp(b, "enospc", 6) == 0)
                m = M_ENOSPC;
            else if (strncmp(b, "eio", 3) == 0)
                m = M_EIO;
            else if (strncmp(b, "fsync", 5) == 0)
                m = M_FSYNC;
            else if (strncmp(b, "erofs", 5) == 0)
                m = M_EROFS;
        }
    }
    atomic_store(&mode, m);
    return m;
}

static int under_path(int fd)
{
    const char *pre = getenv("SP_IOFAULT_PATH");
    if (!pre || !*pre)
        return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    long n = syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
    if (n <= 0)
        return 0;
    target[n] = '\0';
    return strncmp(target, pre, strlen(pre)) == 0;
}

static void note(const char *call, int err, int fd)
{
    char line[96];
    int n = snprintf(line, sizeof line, "iofault: %s %s fd=%d\n", call,
                     err == ENOSPC ? "ENOSPC" : err == EROFS ? "EROFS" : "EIO", fd);
    if (n > 0)
        syscall(SYS_write, 2, line, (size_t)n);
}

/* errno to inject for a write (w = 1) or an fsync (w = 0) on fd, or 0 */
static int fault_for(int fd, int w)
{
    int m = current_mode();
    if (m == M_OFF)
        return 0;
    int err = 0;
    if (w && m == M_ENOSPC)
        err = ENOSPC;
    else if (w && m == M_EIO)
        err = EIO;
    else if (!w && (m == M_EIO || m == M_FSYNC))
        err = EIO;
    else if (m == M_EROFS)
        err = EROFS;
    if (err && !under_path(fd))
        err = 0;
    return err;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef int (*fsync_fn)(int);

#define REAL(name, type) \
    static type real_##name; \
    if (!real_##name) \
        real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write, write_fn);
    int e = fault_for(fd, 1);
    if (e) {
        note("write", e, fd);
        errno = e;
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, pwrite_fn);
    int e = fault_for(fd, 1);
    if (e) {
        note("pwrite", e, fd);
        errno = e;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    REAL(pwrite64, pwrite64_fn);
    int e = fault_for(fd, 1);
    if (e) {
        note("pwrite64", e, fd);
        errno = e;
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, writev_fn);
    int e = fault_for(fd, 1);
    if (e) {
        note("writev", e, fd);
        errno = e;
        return -1;
    }
    return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
    REAL(fsync, fsync_fn);
    int e = fault_for(fd, 0);
    if (e) {
        note("fsync", e, fd);
        errno = e;
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync, fsync_fn);
    int e = fault_for(fd, 0);
    if (e) {
        note("fdatasync", e, fd);
        errno = e;
        return -1;
    }
    return real_fdatasync(fd);
}
