/* The migrations embedded in sp_migrations.c equal the .sql files humans edit. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sp_migrations.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s (run the tests from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    cr_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void check_backend(const char *be)
{
    int count = 0, prev = 0;
    for (const sp_migration_t *m = sp_migrations(be); m->name; m++) {
        char *txt = slurp(m->path);
        cr_assert(strcmp(txt, m->sql) == 0,
                  "%s differs from the string embedded in src/store/sp_migrations.c: "
                  "run scripts/gen_migrations.sh",
                  m->path);
        free(txt);
        cr_assert(m->version == prev + 1, "%s: versions must be consecutive", m->name);
        prev = m->version;
        count++;
    }
    cr_assert(count >= 1);
    cr_assert(sp_migrations_latest(be) == prev);
    /* every file on disk is embedded */
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls src/store/migrations/%s/*.sql | wc -l", be);
    FILE *p = popen(cmd, "r");
    int files = 0;
    cr_assert(p && fscanf(p, "%d", &files) == 1);
    pclose(p);
    cr_assert(files == count, "%d .sql files but %d embedded: run scripts/gen_migrations.sh",
              files, count);
}

Test(store_migrations, sqlite_files_match_embedded) { check_backend("sqlite"); }
Test(store_migrations, postgres_files_match_embedded) { check_backend("postgres"); }

Test(store_migrations, same_versions_in_both_backends)
{
    cr_assert(sp_migrations_latest("sqlite") == sp_migrations_latest("postgres"));
    /* the PG schema must not use the seed's invalid partial index on NOW() */
    for (const sp_migration_t *m = sp_migrations("postgres"); m->name; m++)
        cr_assert(strstr(m->sql, "NOW()") == NULL && strstr(m->sql, "now()") == NULL);
}
