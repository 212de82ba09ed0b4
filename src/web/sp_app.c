/* sp_app: readiness checks shared by the subsystems. */
#include "web/sp_app.h"

#include "core/sp_alloc.h"

typedef struct sp_ready_check_s {
    const char *name;
    sp_ready_check_cb cb;
    void *ud;
    struct sp_ready_check_s *next;
} ready_check_t;

void sp_app_add_ready_check(sp_app_t *app, const char *name, sp_ready_check_cb cb, void *ud)
{
    ready_check_t *c = sp_calloc(1, sizeof(*c));
    c->name = name;
    c->cb = cb;
    c->ud = ud;
    ready_check_t **pp = &app->ready_checks;
    while (*pp)
        pp = &(*pp)->next;
    *pp = c;
}

bool sp_app_ready(sp_app_t *app, json_t *obj)
{
    bool ok = !app->shutting_down;
    json_object_set_new(obj, "shutdown", json_string(app->shutting_down ? "in progress" : "ok"));
    for (ready_check_t *c = app->ready_checks; c; c = c->next) {
        const char *why = c->cb(app, c->ud);
        json_object_set_new(obj, c->name, json_string(why ? why : "ok"));
        if (why)
            ok = false;
    }
    return ok;
}

void sp_app_cleanup(sp_app_t *app)
{
    while (app->ready_checks) {
        ready_check_t *c = app->ready_checks;
        app->ready_checks = c->next;
        sp_free(c);
    }
}
