/* Unit tests for the identity accepted when a control plane restores a live input the
 * relay lost (POST /live_inputs {uid, streamKey}). */
#include <criterion/criterion.h>
#include <string.h>

#include "relay/sp_relay_int.h"

Test(relay_restore, ids)
{
    const char *uid = "0123456789abcdef0123456789abcdef";
    const char *key = "0123456789abcdef0123456789abcdefk0123456789abcdef0123456789abcdef";
    cr_assert(sp_relay_restore_ids_ok(uid, key), "the relay's own format");
    cr_assert(sp_relay_restore_ids_ok(uid, "Abc_def-0123456789"));
    cr_assert(!sp_relay_restore_ids_ok(NULL, key));
    cr_assert(!sp_relay_restore_ids_ok(uid, NULL));
    cr_assert(!sp_relay_restore_ids_ok("0123456789ABCDEF0123456789abcdef", key), "uppercase uid");
    cr_assert(!sp_relay_restore_ids_ok("0123456789abcdef0123456789abcde", key), "31 chars");
    cr_assert(!sp_relay_restore_ids_ok("0123456789abcdef0123456789abcdef0", key), "33 chars");
    cr_assert(!sp_relay_restore_ids_ok("../3456789abcdef0123456789abcdef", key));
    cr_assert(!sp_relay_restore_ids_ok(uid, "short-key-15chr"), "under 16");
    cr_assert(sp_relay_restore_ids_ok(uid, "sixteen-chars-ok"));
    char longk[81];
    memset(longk, 'a', 80);
    longk[80] = '\0';
    cr_assert(!sp_relay_restore_ids_ok(uid, longk), "80 chars does not fit");
    longk[79] = '\0';
    cr_assert(sp_relay_restore_ids_ok(uid, longk), "79 chars fits");
    cr_assert(!sp_relay_restore_ids_ok(uid, "0123456789abcdef/x"), "slash");
    cr_assert(!sp_relay_restore_ids_ok(uid, "0123456789abcdef x"), "space");
    cr_assert(!sp_relay_restore_ids_ok(uid, "0123456789abcdef?x=1"), "query");
}
