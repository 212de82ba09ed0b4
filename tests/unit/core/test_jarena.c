/* sp_jarena: parse windows, block reuse only when every pointer is released, cross-thread
   frees, malloc outside a window. Criterion runs each test in its own process, so each one
   installs the allocator freshly. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "core/sp_jarena.h"

static const char doc[] =
    "{\"metadata\":{\"message_id\":\"m-1\",\"message_type\":\"notification\"},"
    "\"payload\":{\"event\":{\"text\":\"hello\",\"badges\":[{\"set_id\":\"vip\"},"
    "{\"set_id\":\"sub\"}],\"n\":42}}}";

static json_t *parse_in_window(bool *arena)
{
    *arena = sp_jarena_begin();
    json_t *root = json_loads(doc, 0, NULL);
    if (*arena)
        sp_jarena_end();
    return root;
}

Test(jarena, parse_window_bumps_and_release_rewinds)
{
    sp_jarena_install();
    sp_jarena_stats_t st0, st1;
    sp_jarena_stats(&st0);
    bool arena;
    json_t *root = parse_in_window(&arena);
    cr_assert(arena);
    cr_assert_not_null(root);
    sp_jarena_stats(&st1);
    cr_assert_gt(st1.bumped, st0.bumped + 10, "the tree's allocations come from the block");
    cr_assert_gt(sp_jarena_live(), 0);
    json_t *text = json_object_get(json_object_get(json_object_get(root, "payload"), "event"),
                                   "text");
    cr_assert_str_eq(json_string_value(text), "hello");
    json_decref(root);
    cr_assert_eq(sp_jarena_live(), 0, "every arena pointer freed");
    /* many more windows than blocks: blocks come back once released */
    for (int i = 0; i < 100 * SP_JARENA_BLOCKS; i++) {
        root = parse_in_window(&arena);
        cr_assert(arena, "window %d got a block", i);
        json_decref(root);
    }
    sp_jarena_stats(&st1);
    cr_assert_eq(st1.busy, 0);
    cr_assert_eq(sp_jarena_live(), 0);
}

Test(jarena, outside_a_window_is_plain_malloc)
{
    sp_jarena_install();
    sp_jarena_stats_t st0, st1;
    sp_jarena_stats(&st0);
    json_t *root = json_loads(doc, 0, NULL);
    json_t *o = json_pack("{s:s, s:i}", "a", "b", "c", 1);
    sp_jarena_stats(&st1);
    cr_assert_eq(st1.bumped, st0.bumped);
    cr_assert_eq(sp_jarena_live(), 0);
    json_decref(root);
    json_decref(o);
}

Test(jarena, a_kept_subtree_pins_its_block)
{
    sp_jarena_install();
    bool arena;
    json_t *root = parse_in_window(&arena);
    cr_assert(arena);
    json_t *badges = json_incref(
        json_object_get(json_object_get(json_object_get(root, "payload"), "event"), "badges"));
    json_decref(root);
    cr_assert_gt(sp_jarena_live(), 0, "the kept subtree is still live");
    /* fill and release every block many times over: the pinned one must not be rewound */
    for (int i = 0; i < 50 * SP_JARENA_BLOCKS; i++) {
        json_t *r = parse_in_window(&arena);
        json_decref(r);
    }
    cr_assert_eq(json_array_size(badges), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(badges, 1), "set_id")),
                     "sub");
    json_decref(badges);
    cr_assert_eq(sp_jarena_live(), 0);
}

Test(jarena, every_block_pinned_falls_back_to_malloc)
{
    sp_jarena_install();
    json_t *kept[SP_JARENA_BLOCKS];
    for (int i = 0; i < SP_JARENA_BLOCKS; i++) {
        cr_assert(sp_jarena_begin());
        /* a document that leaves less than a window's worth of room in the block */
        json_t *arr = json_array();
        for (int k = 0; k < 2000; k++)
            json_array_append_new(arr, json_string("0123456789abcdef"));
        sp_jarena_end();
        kept[i] = arr;
    }
    sp_jarena_stats_t st0, st1;
    sp_jarena_stats(&st0);
    bool arena;
    json_t *root = parse_in_window(&arena);
    sp_jarena_stats(&st1);
    cr_assert(!arena, "no block free: the window is refused");
    cr_assert_eq(st1.busy, st0.busy + 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "metadata"),
                                                       "message_id")), "m-1");
    json_decref(root);
    for (int i = 0; i < SP_JARENA_BLOCKS; i++)
        json_decref(kept[i]);
    cr_assert_eq(sp_jarena_live(), 0);
    root = parse_in_window(&arena);
    cr_assert(arena, "released blocks are usable again");
    json_decref(root);
}

Test(jarena, windows_do_not_nest)
{
    sp_jarena_install();
    cr_assert(sp_jarena_begin());
    cr_assert(!sp_jarena_begin());
    sp_jarena_end();
    cr_assert(sp_jarena_begin());
    sp_jarena_end();
}

static void *free_elsewhere(void *p)
{
    json_decref(p);
    return NULL;
}

Test(jarena, a_tree_freed_on_another_thread)
{
    sp_jarena_install();
    bool arena;
    json_t *root = parse_in_window(&arena);
    cr_assert(arena);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, free_elsewhere, root), 0);
    pthread_join(th, NULL);
    cr_assert_eq(sp_jarena_live(), 0);
}
