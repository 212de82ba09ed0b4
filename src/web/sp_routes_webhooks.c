/*
 * sp_routes_webhooks: input notifications from the media service.
 *   POST /webhooks/cloudflare   (cf-webhook-auth: the shared secret)
 * The handler checks the secret and parses the payload (media/sp_cf_webhook.h); the
 * livestream domain applies the event (sp_livestream_webhook).
 */
#include "web/sp_web.h"

#include <string.h>

#include "core/sp_log.h"
#include "media/sp_cf_webhook.h"

static void on_applied(sp_ls_result_t *res, void *ud)
{
    sp_web_respond_result(ud, res, 200);
}

static void h_webhook(sp_http_req_t *req, void *ud)
{
    sp_app_t *app = ud;
    const char *hdr = sp_http_req_header(req, "cf-webhook-auth");
    if (!sp_cf_webhook_auth_ok(hdr, hdr ? strlen(hdr) : 0, app->cfg->cloudflare_webhook_secret)) {
        sp_livestream_webhook_refused(app->live, SP_LS_WEBHOOK_UNAUTHORIZED);
        sp_warn("livestream", "cloudflare webhook refused", "reason=bad_secret ip=%s",
                sp_http_req_remote_ip(req));
        sp_http_respond_error(req, 401, "unauthorized", "bad or missing cf-webhook-auth");
        return;
    }
    const sp_buf_t *body = sp_http_req_body(req);
    sp_cf_webhook_event_t ev;
    memset(&ev, 0, sizeof(ev));
    int rc = sp_cf_webhook_parse((const uint8_t *)(body ? body->p : ""), body ? body->len : 0,
                                 &ev);
    if (rc != 0) {
        sp_livestream_webhook_refused(app->live, SP_LS_WEBHOOK_BAD);
        sp_http_respond_error(req, 400, "bad_payload", "not a Cloudflare notification payload");
        return;
    }
    sp_livestream_webhook(app->live, &ev, on_applied, req);
}

void sp_routes_webhooks_register(sp_app_t *app)
{
    sp_route_opts_t hook = { .body_limit = SP_CF_WEBHOOK_MAX_BODY,
                             .flags = SP_ROUTE_PUBLIC | SP_ROUTE_NO_CSRF };
    sp_router_add(app->router, "POST", "/webhooks/cloudflare", h_webhook, app, &hook);
}
