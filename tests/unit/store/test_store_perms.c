/* The SQLite files and DATA_DIR are private (issue 12 finding 6: streampai.db and its WAL were
 * created 0644). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/sp_err.h"
#include "store_common.h"

static mode_t mode_of(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s%s%s", dir, name[0] ? "/" : "", name);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "%s missing", p);
    return st.st_mode & 07777;
}

static void write_something(tenv_t *e)
{
    tres_t r = tq(e, "CREATE TABLE IF NOT EXISTS perm_probe (x INTEGER)", NULL);
    cr_assert_eq(r.err, 0);
    tres_free(&r);
    r = tq(e, "INSERT INTO perm_probe (x) VALUES (1)", NULL);
    cr_assert_eq(r.err, 0);
    tres_free(&r);
}

Test(store_files, created_0600_in_a_0700_data_dir_whatever_the_umask)
{
    mode_t old = umask(022);
    tenv_t e;
    tenv_setup(&e, false);
    cr_assert_eq(chmod(e.dir, 0755), 0); /* as `mkdir -p` with umask 022 leaves it */
    char err[512];
    cr_assert_eq(tenv_open(&e, err, sizeof(err)), 0, "%s", err);
    write_something(&e);
    cr_assert_eq(mode_of(e.dir, "streampai.db"), 0600, "db %o", mode_of(e.dir, "streampai.db"));
    cr_assert_eq(mode_of(e.dir, "streampai.db-wal"), 0600);
    cr_assert_eq(mode_of(e.dir, "streampai.db-shm"), 0600);
    cr_assert_eq(mode_of(e.dir, ""), 0700, "dir %o", mode_of(e.dir, ""));
    tenv_teardown(&e);
    umask(old);
}

Test(store_files, existing_loose_files_are_tightened)
{
    mode_t old = umask(022);
    tenv_t e;
    tenv_setup(&e, false);
    char err[512], p[512];
    cr_assert_eq(tenv_open(&e, err, sizeof(err)), 0, "%s", err);
    write_something(&e);
    tenv_close(&e);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    /* what an older version left behind */
    cr_assert_eq(chmod(e.dir, 0755), 0);
    snprintf(p, sizeof(p), "%s/streampai.db", e.dir);
    cr_assert_eq(chmod(p, 0644), 0);
    snprintf(p, sizeof(p), "%s/streampai.db-wal", e.dir);
    FILE *f = fopen(p, "ab");
    cr_assert(f);
    fclose(f);
    cr_assert_eq(chmod(p, 0644), 0);
    cr_assert_eq(tenv_open(&e, err, sizeof(err)), 0, "%s", err);
    write_something(&e);
    cr_assert_eq(mode_of(e.dir, "streampai.db"), 0600);
    cr_assert_eq(mode_of(e.dir, "streampai.db-wal"), 0600);
    cr_assert_eq(mode_of(e.dir, ""), 0700);
    tenv_teardown(&e);
    umask(old);
}
