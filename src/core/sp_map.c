/* sp_map: open-addressing SipHash map. */
#include "core/sp_map.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "core/sp_alloc.h"

typedef struct {
    char *key; /* NULL = empty; TOMB = deleted */
    size_t klen;
    uint64_t hash;
    void *value;
} slot_t;

struct sp_map_s {
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
    size_t used; /* count + tombstones */
    sp_map_free_cb free_val;
};

static char tomb_marker;
#define TOMB (&tomb_marker)

static unsigned char hash_key[crypto_shorthash_KEYBYTES];
static int hash_key_ready;

static uint64_t hash_bytes(const void *p, size_t n)
{
    if (!hash_key_ready) {
        randombytes_buf(hash_key, sizeof(hash_key));
        hash_key_ready = 1;
    }
    uint64_t h;
    crypto_shorthash((unsigned char *)&h, p, n, hash_key);
    return h;
}

sp_map_t *sp_map_new(sp_map_free_cb free_val)
{
    sp_map_t *m = sp_calloc(1, sizeof(*m));
    m->cap = 16;
    m->slots = sp_calloc(m->cap, sizeof(slot_t));
    m->free_val = free_val;
    return m;
}

void sp_map_free(sp_map_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (s->key && s->key != TOMB) {
            if (m->free_val)
                m->free_val(s->value);
            sp_free(s->key);
        }
    }
    sp_free(m->slots);
    sp_free(m);
}

size_t sp_map_count(const sp_map_t *m)
{
    return m->count;
}

static slot_t *find(const sp_map_t *m, const void *key, size_t klen, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &m->slots[i];
        if (s->key == NULL)
            return NULL;
        if (s->key != TOMB && s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)
            return s;
    }
}

static void grow(sp_map_t *m)
{
    size_t ncap = (m->count + 1) * 10 >= m->cap * 5 ? m->cap * 2 : m->cap;
    slot_t *old = m->slots;
    size_t ocap = m->cap;
    m->slots = sp_calloc(ncap, sizeof(slot_t));
    m->cap = ncap;
    m->used = m->count;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].key && old[i].key != TOMB) {
            size_t j = old[i].hash & (ncap - 1);
            while (m->slots[j].key)
                j = (j + 1) & (ncap - 1);
            m->slots[j] = old[i];
        }
    }
    sp_free(old);
}

void *sp_map_get(const sp_map_t *m, const void *key, size_t klen)
{
    slot_t *s = find(m, key, klen, hash_bytes(key, klen));
    return s ? s->value : NULL;
}

void *sp_map_gets(const sp_map_t *m, const char *key)
{
    return sp_map_get(m, key, strlen(key));
}

void sp_map_set(sp_map_t *m, const void *key, size_t klen, void *value)
{
    uint64_t h = hash_bytes(key, klen);
    slot_t *s = find(m, key, klen, h);
    if (s) {
        if (m->free_val && s->value != value)
            m->free_val(s->value);
        s->value = value;
        return;
    }
    if ((m->used + 1) * 10 >= m->cap * 7)
        grow(m);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMB)
        i = (i + 1) & mask;
    if (m->slots[i].key == NULL)
        m->used++;
    m->slots[i].key = sp_strndup(key, klen);
    m->slots[i].klen = klen;
    m->slots[i].hash = h;
    m->slots[i].value = value;
    m->count++;
}

void sp_map_sets(sp_map_t *m, const char *key, void *value)
{
    sp_map_set(m, key, strlen(key), value);
}

bool sp_map_del(sp_map_t *m, const void *key, size_t klen, void **take)
{
    slot_t *s = find(m, key, klen, hash_bytes(key, klen));
    if (s == NULL)
        return false;
    if (take)
        *take = s->value;
    else if (m->free_val)
        m->free_val(s->value);
    sp_free(s->key);
    s->key = TOMB;
    s->value = NULL;
    m->count--;
    return true;
}

bool sp_map_dels(sp_map_t *m, const char *key, void **take)
{
    return sp_map_del(m, key, strlen(key), take);
}

bool sp_map_next(const sp_map_t *m, size_t *it, const char **key, size_t *klen, void **value)
{
    while (*it < m->cap) {
        slot_t *s = &m->slots[(*it)++];
        if (s->key && s->key != TOMB) {
            if (key)
                *key = s->key;
            if (klen)
                *klen = s->klen;
            if (value)
                *value = s->value;
            return true;
        }
    }
    return false;
}
