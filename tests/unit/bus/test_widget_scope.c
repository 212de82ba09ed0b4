/* The widget sockets' scope in sp_pubsub_default_authorize (docs/widgets.md). */
#include <criterion/criterion.h>

#include "bus/sp_pubsub.h"
#include "net/sp_ws.h"

Test(widget_scope, alertbox_socket_joins_its_two_topics_only)
{
    const unsigned f = SP_WS_WIDGET_ALERTBOX;
    cr_assert(sp_pubsub_default_authorize("u1", f, "alertbox:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", f, "widget_config:alertbox:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "widget_config:chat:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "chat:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "user_stream:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "user_stream:u1:statistics"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "platform:twitch:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "alertbox:u2"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "widget_config:alertbox:u2"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "livestream:global"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "users_presence"));
}

Test(widget_scope, chat_socket_joins_its_two_topics_only)
{
    const unsigned f = SP_WS_WIDGET_CHAT;
    cr_assert(sp_pubsub_default_authorize("u1", f, "chat:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", f, "widget_config:chat:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "alertbox:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "widget_config:alertbox:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "chat:u2"));
    cr_assert_not(sp_pubsub_default_authorize("u1", f, "stream_lifecycle:u1"));
    cr_assert_not(sp_pubsub_default_authorize(NULL, f, "chat:u1"));
}

Test(widget_scope, dashboard_sockets_unchanged)
{
    cr_assert(sp_pubsub_default_authorize("u1", 0, "chat:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", 0, "alertbox:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", 0, "widget_config:chat:u1"));
    cr_assert(sp_pubsub_default_authorize("u1", 0, "user_stream:u1"));
    cr_assert_not(sp_pubsub_default_authorize("u1", 0, "chat:u2"));
}
