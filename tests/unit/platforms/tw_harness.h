/*
 * tw_harness: the shared fixture of the Twitch client and monitor tests: a fake Twitch
 * (fake_twitch.h), a loop, an sp_curlm, a config pointing at the fake, and one connected account
 * whose token refresher calls the fake's token endpoint asynchronously.
 */
#ifndef SP_TEST_TW_HARNESS_H
#define SP_TEST_TW_HARNESS_H

#include <stdint.h>
#include <uv.h>

#include "core/sp_config.h"
#include "fake_twitch.h"
#include "platforms/sp_platform.h"

typedef struct {
    fake_tw_t fake;
    uv_loop_t loop;
    struct sp_curlm_s *http;
    sp_config_t cfg;
    sp_platform_env_t env;
    sp_platform_account_t *acct;
    char access[128];
    char refresh[128];
    int refreshes;     /* refresher runs */
    char auth_url[160], api_url[160], ws_url[160], client_id[64], client_secret[64];
} tw_fixture_t;

extern tw_fixture_t tw;

void tw_setup(void);
void tw_teardown(void);
/** Runs the loop until *counter >= target or ms pass. */
void tw_spin(const int *counter, int target, uint64_t ms);
/** Runs the loop for ms. */
void tw_run_for(uint64_t ms);

#endif
