/*
 * sp_routes_preview: GET /api/stream/preview/{input_uid}, the owner's live input as
 * HTTP-FLV proxied from the built-in relay (docs/api.md "Preview").
 */
#ifndef SP_ROUTES_PREVIEW_H
#define SP_ROUTES_PREVIEW_H

#include "web/sp_app.h"

void sp_routes_preview_register(sp_app_t *app);
/** Ends every preview (shutdown begins): their connections close. */
void sp_routes_preview_shutdown(void);

#endif
