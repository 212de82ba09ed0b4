/* sp_ls_recordings: the pure parts (Range header, recording-to-stream matching, names) and
 * the retention sweep on a temporary directory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "livestream/sp_ls_recordings.h"

static int range(const char *h, int64_t size, int64_t *a, int64_t *b)
{
    return sp_ls_rec_range(h, size, a, b);
}

Test(ls_recordings, range_forms)
{
    int64_t a, b;
    cr_assert_eq(range(NULL, 1000, &a, &b), 0);
    cr_assert(a == 0 && b == 1000);
    cr_assert_eq(range("bytes=0-99", 1000, &a, &b), 1);
    cr_assert(a == 0 && b == 100);
    cr_assert_eq(range("bytes=900-", 1000, &a, &b), 1);
    cr_assert(a == 900 && b == 1000);
    cr_assert_eq(range("bytes=900-5000", 1000, &a, &b), 1, "end clamped");
    cr_assert(a == 900 && b == 1000);
    cr_assert_eq(range("bytes=-100", 1000, &a, &b), 1);
    cr_assert(a == 900 && b == 1000);
    cr_assert_eq(range("bytes=-5000", 1000, &a, &b), 1, "suffix longer than the file: all");
    cr_assert(a == 0 && b == 1000);
    cr_assert_eq(range("bytes=999-999", 1000, &a, &b), 1);
    cr_assert(a == 999 && b == 1000);
}

Test(ls_recordings, range_unsatisfiable_and_ignored)
{
    int64_t a, b;
    cr_assert_eq(range("bytes=1000-", 1000, &a, &b), -1);
    cr_assert_eq(range("bytes=5000-6000", 1000, &a, &b), -1);
    cr_assert_eq(range("bytes=-0", 1000, &a, &b), -1);
    cr_assert_eq(range("bytes=0-", 0, &a, &b), -1, "empty file: nothing to range");
    /* malformed or several ranges: the whole file */
    const char *ignored[] = { "bytes=5-1", "bytes=0-1,5-9", "items=0-1", "bytes=a-b", "bytes=",
                              "bytes=-", "bytes=1-2x", "bytes=99999999999999999999-",
                              "bytes=+1-2", "bytes=0x10-" };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        cr_assert_eq(range(ignored[i], 1000, &a, &b), 0, "%s", ignored[i]);
        cr_assert(a == 0 && b == 1000);
    }
}

Test(ls_recordings, names)
{
    cr_assert(sp_ls_rec_name_ok("0123abcdef"));
    cr_assert(sp_ls_rec_name_ok("a-b_C"));
    cr_assert_not(sp_ls_rec_name_ok(""));
    cr_assert_not(sp_ls_rec_name_ok(NULL));
    cr_assert_not(sp_ls_rec_name_ok(".."));
    cr_assert_not(sp_ls_rec_name_ok("a/b"));
    cr_assert_not(sp_ls_rec_name_ok("a.flv"));
    char big[70];
    memset(big, 'a', 65);
    big[65] = 0;
    cr_assert_not(sp_ls_rec_name_ok(big));
}

Test(ls_recordings, match_by_overlap)
{
    json_t *recs = json_loads("[{\"id\":\"r1\",\"started_ms\":1000,\"ended_ms\":5000},"
                              "{\"id\":\"r2\",\"started_ms\":9000,\"ended_ms\":null},"
                              "{\"id\":\"r3\",\"started_ms\":100,\"ended_ms\":200}]", 0, NULL);
    json_t *streams = json_loads("[{\"id\":\"s1\",\"started_at\":0,\"ended_at\":1500},"
                                 "{\"id\":\"s2\",\"started_at\":1400,\"ended_at\":6000},"
                                 "{\"id\":\"s3\",\"started_at\":8000,\"ended_at\":null},"
                                 "{\"id\":\"s4\",\"started_at\":null,\"ended_at\":null}]",
                                 0, NULL);
    cr_assert(recs && streams);
    sp_ls_recordings_match(recs, streams, 10000);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(recs, 0), "stream_id")),
                     "s2", "most overlap wins");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(recs, 1), "stream_id")),
                     "s3", "open intervals end now");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(recs, 2), "stream_id")),
                     "s1", "inside a stream");
    json_t *none = json_loads("[{\"id\":\"r\",\"started_ms\":20000,\"ended_ms\":21000}]", 0, NULL);
    sp_ls_recordings_match(none, streams, 10000);
    cr_assert_null(json_object_get(json_array_get(none, 0), "stream_id"), "no overlap: none");
    json_decref(none);
    json_decref(recs);
    json_decref(streams);
}

static void touch(const char *path, time_t age_s)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("FLV", f);
    fclose(f);
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    cr_assert_eq(utimes(path, tv), 0);
}

Test(ls_recordings, sweep_deletes_old_files_only)
{
    char root[] = "/tmp/sp-rec-sweep-XXXXXX";
    cr_assert(mkdtemp(root));
    char p[512];
    snprintf(p, sizeof(p), "%s/recordings", root);
    cr_assert_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof(p), "%s/recordings/u1", root);
    cr_assert_eq(mkdir(p, 0750), 0);
    snprintf(p, sizeof(p), "%s/recordings/u1/old.flv", root);
    touch(p, 10 * 86400);
    snprintf(p, sizeof(p), "%s/recordings/u1/old.json", root);
    touch(p, 0);
    snprintf(p, sizeof(p), "%s/recordings/u1/new.flv", root);
    touch(p, 3600);
    snprintf(p, sizeof(p), "%s/recordings/u1/notes.txt", root);
    touch(p, 10 * 86400);
    int64_t cutoff = ((int64_t)time(NULL) - 5 * 86400) * 1000;
    cr_assert_eq(sp_ls_recordings_sweep(root, cutoff), 1);
    snprintf(p, sizeof(p), "%s/recordings/u1/old.flv", root);
    cr_assert_neq(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/recordings/u1/old.json", root);
    cr_assert_neq(access(p, F_OK), 0, "the sidecar goes with it");
    snprintf(p, sizeof(p), "%s/recordings/u1/new.flv", root);
    cr_assert_eq(access(p, F_OK), 0);
    snprintf(p, sizeof(p), "%s/recordings/u1/notes.txt", root);
    cr_assert_eq(access(p, F_OK), 0, "only recordings are touched");
    cr_assert_eq(sp_ls_recordings_sweep(root, cutoff), 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}
