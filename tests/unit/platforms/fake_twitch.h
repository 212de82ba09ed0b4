/*
 * fake_twitch: starts tests/fakes/twitch.mjs (node) for C unit tests, reads its port from
 * stdout, and talks to its /_control API with blocking libcurl (fine in a test: the code under
 * test runs on its own loop between control calls).
 */
#ifndef SP_TEST_FAKE_TWITCH_H
#define SP_TEST_FAKE_TWITCH_H

#include <stddef.h>
#include <sys/types.h>

#define FAKE_TW_CLIENT_ID "fakeclientid0123456789abcdefgh"
#define FAKE_TW_CLIENT_SECRET "fakeclientsecret0123456789abcd"
#define FAKE_TW_USER "141981764" /* the fake's default user, twitchdev */

typedef struct {
    pid_t pid;
    int port;
    char base[128];    /* http://127.0.0.1:P */
    char auth[128];    /* http://127.0.0.1:P/oauth2 */
    char api[128];     /* http://127.0.0.1:P/helix */
    char ws[128];      /* ws://127.0.0.1:P/ws */
    char control[128]; /* http://127.0.0.1:P/_control */
} fake_tw_t;

/** 0 on success; -1 when node or the fake is unavailable. */
int fake_tw_start(fake_tw_t *f);
void fake_tw_stop(fake_tw_t *f);
/** POST /_control/<name> with {"args": args_json} (args_json: a JSON array text, or NULL).
 *  Returns the HTTP status (or -1); the body (malloc'd) in *out if out. */
long fake_tw_call(fake_tw_t *f, const char *name, const char *args_json, char **out);
/** GET /_control/<name> (calls, counters, sessions, subscriptions, chat, users). */
long fake_tw_get(fake_tw_t *f, const char *name, char **out);
/** Occurrences of needle in GET /_control/<name>. -1 on failure. */
int fake_tw_count(fake_tw_t *f, const char *name, const char *needle);
/** issueToken for the default user with every scope; access and refresh into the buffers. */
int fake_tw_token(fake_tw_t *f, int ttl_s, char *access, size_t acap, char *refresh,
                  size_t rcap);

#endif
