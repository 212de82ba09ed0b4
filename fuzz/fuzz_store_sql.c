/* libFuzzer: the SQLite placeholder rewrite ($N -> ?N outside quotes/comments) and
   sp_unseal's decoding of untrusted sealed text never crash or overrun. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sp_buf.h"
#include "core/sp_config.h"
#include "auth/sp_seal.h"
#include "store/sp_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        sp_config_t cfg;
        char err[128];
        memset(&cfg, 0, sizeof(cfg));
        cfg.env = SP_ENV_TEST;
        cfg.secrets_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        sp_seal_init(&cfg, err, sizeof(err));
        init = 1;
    }
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    size_t n = strlen(in);
    char *out = malloc(n + 1);
    sp_store_sql_rewrite_pub(in, out);
    if (strlen(out) != n)
        abort();
    for (size_t i = 0; i < n; i++)
        if (out[i] != in[i] && !(in[i] == '$' && out[i] == '?'))
            abort();
    sp_buf_t b;
    sp_buf_init(&b, 1 << 16);
    if (sp_unseal("u", "p", in, &b) == 0)
        abort(); /* random input must not authenticate */
    sp_buf_cleanup(&b);
    free(out);
    free(in);
    return 0;
}
