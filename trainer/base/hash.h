// hash.h: hashing and counter-based random numbers.
//
// hash_bytes: fast 64-bit non-cryptographic hash for checksums and config hashes.
// siphash24: keyed hash (SipHash-2-4) that replaces raw user ids at ingest.
// Random numbers are counter based: a value is a pure function of (seed, stream, counter),
// so any rank can compute the draws of any lane or shard, and a resumed run needs only the
// counters, not a generator state.
#pragma once
#include <stddef.h>
#include <stdint.h>

uint64_t hash_bytes(const void *data, size_t len, uint64_t seed);

// The same hash computed over data that arrives in pieces (hash_bytes = init, update, final).
typedef struct {
    uint64_t h, a, len;
    unsigned char tail[16];
    size_t n_tail;
} Hasher;
void hasher_init(Hasher *s, uint64_t seed);
void hasher_update(Hasher *s, const void *data, size_t len);
uint64_t hasher_final(const Hasher *s);
uint64_t siphash24(const uint8_t key[16], const void *data, size_t len);

static inline uint64_t mix64(uint64_t x) { // splitmix64 finaliser
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Counter-based draw: independent streams by (seed, stream), indexed by counter.
static inline uint64_t rng_at(uint64_t seed, uint64_t stream, uint64_t counter) {
    return mix64(mix64(seed ^ mix64(stream + 0x632be59bd9b4e019ULL)) + counter);
}
static inline double rng_uniform_at(uint64_t seed, uint64_t stream, uint64_t counter) {
    return (double)(rng_at(seed, stream, counter) >> 11) * 0x1.0p-53; // [0, 1)
}

// A small sequential generator for places that draw many values in order (init, synth).
typedef struct {
    uint64_t seed, stream, counter;
} Rng;
static inline Rng rng_make(uint64_t seed, uint64_t stream) {
    Rng r = {seed, stream, 0};
    return r;
}
static inline uint64_t rng_next(Rng *r) {
    return rng_at(r->seed, r->stream, r->counter++);
}
static inline double rng_uniform(Rng *r) {
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}
double rng_normal(Rng *r);
// Uniform integer in [0, n).
static inline uint64_t rng_below(Rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}
