// hash.c: see hash.h.
#include "hash.h"

#include <math.h>
#include <string.h>

static inline void absorb(Hasher *s, const unsigned char *p) {
    uint64_t x, y;
    memcpy(&x, p, 8);
    memcpy(&y, p + 8, 8);
    s->h = (s->h ^ mix64(x)) * 0x100000001b3ULL;
    s->a = (s->a ^ mix64(y + s->a)) * 0xff51afd7ed558ccdULL;
}

void hasher_init(Hasher *s, uint64_t seed) {
    memset(s, 0, sizeof *s);
    s->h = seed ^ 0x9e3779b97f4a7c15ULL;
    s->a = 0x243f6a8885a308d3ULL;
}

void hasher_update(Hasher *s, const void *data, size_t len) {
    const unsigned char *p = data;
    s->len += len;
    if (s->n_tail) {
        size_t take = 16 - s->n_tail < len ? 16 - s->n_tail : len;
        memcpy(s->tail + s->n_tail, p, take);
        s->n_tail += take, p += take, len -= take;
        if (s->n_tail < 16) return;
        absorb(s, s->tail);
        s->n_tail = 0;
    }
    for (; len >= 16; p += 16, len -= 16) absorb(s, p);
    memcpy(s->tail, p, len);
    s->n_tail = len;
}

uint64_t hasher_final(const Hasher *s) {
    Hasher t = *s;
    unsigned char last[16] = {0};
    memcpy(last, t.tail, t.n_tail);
    absorb(&t, last);
    return mix64(t.h ^ (t.a >> 1) ^ (t.a << 63) ^ mix64(t.len));
}

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed) {
    Hasher s;
    hasher_init(&s, seed);
    hasher_update(&s, data, len);
    return hasher_final(&s);
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                                  \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                                  \
    } while (0)

uint64_t siphash24(const uint8_t key[16], const void *data, size_t len) {
    uint64_t k0, k1;
    memcpy(&k0, key, 8);
    memcpy(&k1, key + 8, 8);
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    const unsigned char *p = data;
    size_t left = len;
    while (left >= 8) {
        uint64_t m;
        memcpy(&m, p, 8);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
        p += 8;
        left -= 8;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < left; i++) b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

double rng_normal(Rng *r) {
    // Box-Muller; uses two draws per value (simple, and the draw count stays predictable).
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
