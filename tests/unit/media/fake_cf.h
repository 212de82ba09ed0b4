/*
 * fake_cf: starts tests/fakes/cloudflare.mjs (node) for C unit tests, reads its
 * port from stdout, and talks to its /__control API with blocking libcurl
 * (fine in a test: the code under test runs on its own loop afterwards).
 */
#ifndef SP_TEST_FAKE_CF_H
#define SP_TEST_FAKE_CF_H

#include <stddef.h>
#include <sys/types.h>

#define FAKE_CF_TOKEN "fake-cf-token-0123456789"
#define FAKE_CF_ACCOUNT "0123456789abcdef0123456789abcdef"

typedef struct {
    pid_t pid;
    int port;
    char base[128];    /* http://127.0.0.1:P/client/v4 */
    char control[128]; /* http://127.0.0.1:P/__control */
    char ca_file[256];  /* with TLS: the self-signed certificate (also the CA) */
    char tmpdir[64];    /* with TLS: removed by fake_cf_stop */
} fake_cf_t;

/** 0 on success; -1 when node or the fake is unavailable (caller should cr_skip). */
int fake_cf_start(fake_cf_t *f);
/** Same over HTTPS with a fresh self-signed certificate for 127.0.0.1 (needs openssl). */
int fake_cf_start_tls(fake_cf_t *f);
void fake_cf_stop(fake_cf_t *f);
/** Blocking control call; returns HTTP status (or -1); response body (malloc'd) in *out if out. */
long fake_cf_control(fake_cf_t *f, const char *method, const char *path, const char *json,
                     char **out);
/** Count occurrences of needle in the recorded calls JSON. */
int fake_cf_count_calls(fake_cf_t *f, const char *needle);

#endif
