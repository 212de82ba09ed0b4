/* twitch/monitor: see monitor.h. */
#include "platforms/twitch/monitor.h"

#include <stddef.h>

sp_platform_monitor_t *sp_twitch_monitor_start(const sp_platform_env_t *env,
                                               sp_platform_account_t *a,
                                               const sp_platform_sink_t *sink)
{
    (void)env;
    (void)a;
    (void)sink;
    return NULL; /* milestone 2 */
}

void sp_twitch_monitor_stop(sp_platform_monitor_t *m)
{
    (void)m;
}
