/*
 * sp_seal: secrets at rest (OAuth tokens, stream keys).
 *
 * XChaCha20-Poly1305 (libsodium crypto_aead_xchacha20poly1305_ietf) with a
 * process-wide 32-byte key from SECRETS_KEY (base64). In dev/test, when unset,
 * a key is generated once into DATA_DIR/secrets.key (mode 0600) and reused; in
 * prod it is required. The associated data is "user_id|purpose", so a sealed
 * value copied to another user's row (or another column) fails to open.
 * Output: base64 (standard, padded) of nonce || ciphertext||tag.
 */
#ifndef SP_SEAL_H
#define SP_SEAL_H

#include <stddef.h>

#include "core/sp_buf.h"
#include "core/sp_config.h"

/* Loads or creates the key. Returns 0, SP_ECONFIG (missing/malformed key; message in err) or
   SP_EIO. Thread-safe after it returns. */
int sp_seal_init(const sp_config_t *cfg, char *err, size_t errlen);
/* Wipes the key. */
void sp_seal_shutdown(void);

/* Returns a heap string (sp_free) or NULL when not initialised / bad args. */
char *sp_seal(const char *user_id, const char *purpose, const void *plain, size_t len);
/* Appends the plaintext to out. Returns 0, SP_ECRYPTO (wrong user/purpose/key, tampered,
   malformed) or SP_ETOOBIG (out's cap). */
int sp_unseal(const char *user_id, const char *purpose, const char *sealed, sp_buf_t *out);

#endif
