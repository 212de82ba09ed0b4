/*
 * sp_migrations: numbered schema migrations per backend, embedded in the binary
 * (the same text as src/store/migrations/<backend>/NNNN_name.sql).
 */
#ifndef SP_MIGRATIONS_H
#define SP_MIGRATIONS_H

typedef struct {
    int version;
    const char *name;   /* "0001_init" */
    const char *path;   /* source file, relative to the repository root */
    const char *sql;
} sp_migration_t;

/* backend "sqlite" | "postgres": array ordered by version, terminated by name == NULL. */
const sp_migration_t *sp_migrations(const char *backend);
int sp_migrations_latest(const char *backend);

#endif
