/*
 * bench/alertq_bench: the AlertQueue's CPU per 1,000 queued alerts (issue 11 benchmark).
 * For each of U users (default 5000) a queue of ALERT_QUEUE_SIZE 50 gets A alerts (default 20,
 * mixed types, a fifth of them follows that merge, some duplicates), then is ticked until empty
 * with a 0 ms display duration and gap (every tick shows one). Reported: process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) per 1,000 pushed alerts and per 1,000 shown, and the wall time.
 * Usage: build/bench/alertq_bench [users] [alerts_per_user]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "livestream/sp_alertq.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long users = argc > 1 ? strtol(argv[1], NULL, 10) : 5000;
    long per = argc > 2 ? strtol(argv[2], NULL, 10) : 20;
    if (users < 1 || per < 1 || users > 1000000 || per > 100000) {
        fprintf(stderr, "usage: %s [users] [alerts_per_user]\n", argv[0]);
        return 2;
    }
    sp_aq_opts_t o;
    sp_alertq_opts_default(&o);
    o.gap_ms = 0;
    for (int t = 0; t < SP_AQ_TYPE_COUNT; t++)
        o.duration_ms[t] = 0;
    sp_alertq_t **qs = calloc((size_t)users, sizeof(*qs));
    if (qs == NULL)
        return 1;
    for (long u = 0; u < users; u++)
        if ((qs[u] = sp_alertq_new(&o)) == NULL)
            return 1;
    sp_aq_alert_t a;
    memset(&a, 0, sizeof(a));
    snprintf(a.platform, sizeof(a.platform), "twitch");
    unsigned long long pushed = 0, shown = 0, merged = 0, dup = 0;
    double c0 = cpu_s(), w0 = wall_s();
    int64_t now = 1000;
    for (long i = 0; i < per; i++) {
        for (long u = 0; u < users; u++) {
            a.type = (sp_aq_type_t)((i + u) % SP_AQ_TYPE_COUNT);
            /* every 10th alert repeats the previous id (a redelivery) */
            snprintf(a.id, sizeof(a.id), "ev-%ld-%ld", u, i % 10 == 9 ? i - 1 : i);
            snprintf(a.name, sizeof(a.name), "viewer%ld", i);
            a.has_amount = a.type == SP_AQ_CHEER || a.type == SP_AQ_DONATION;
            a.amount = 500;
            int r = sp_alertq_push(qs[u], &a, now, NULL);
            pushed++;
            merged += r == SP_AQ_MERGED;
            dup += r == SP_AQ_DUPLICATE;
        }
        now++;
    }
    double c1 = cpu_s();
    for (long u = 0; u < users; u++) {
        sp_aq_tick_t t;
        int64_t tnow = now;
        do {
            sp_alertq_tick(qs[u], tnow++, &t);
            shown += t.show;
        } while (t.show || sp_alertq_len(qs[u]) > 0);
    }
    double c2 = cpu_s(), w2 = wall_s();
    sp_aq_stats_t st, tot = { 0 };
    for (long u = 0; u < users; u++) {
        sp_alertq_stats(qs[u], &st);
        tot.dropped += st.dropped;
        sp_alertq_free(qs[u]);
    }
    free(qs);
    printf("alertq: users=%ld alerts=%llu (merged %llu, duplicates %llu, dropped %llu) shown=%llu\n",
           users, pushed, merged, dup, (unsigned long long)tot.dropped, shown);
    printf("alertq: push CPU %.1f us per 1,000 alerts; tick CPU %.1f us per 1,000 shown; "
           "total CPU %.1f us per 1,000 queued alerts; wall %.3f s\n",
           (c1 - c0) * 1e6 / ((double)pushed / 1000.0),
           shown ? (c2 - c1) * 1e6 / ((double)shown / 1000.0) : 0.0,
           (c2 - c0) * 1e6 / ((double)pushed / 1000.0), w2 - w0);
    return 0;
}
