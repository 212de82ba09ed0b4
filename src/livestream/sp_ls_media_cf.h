/* sp_ls_media_cf: the livestream media vtable backed by sp_cloudflare. */
#ifndef SP_LS_MEDIA_CF_H
#define SP_LS_MEDIA_CF_H

#include "media/sp_cloudflare.h"
#include "livestream/sp_ls_media.h"

void sp_ls_media_cloudflare(sp_cloudflare_t *cf, sp_ls_media_t *out);
/** The same over the built-in relay's compatible API: adds restore_input. */
void sp_ls_media_relay(sp_cloudflare_t *cf, sp_ls_media_t *out);

#endif
