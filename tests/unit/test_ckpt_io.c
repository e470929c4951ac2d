// test_ckpt_io.c: unit tests of the checkpoint file code (trainer/checkpoint.c) that a
// training run cannot reach on purpose.
//
//   test_ckpt_io [ITERATIONS]     (default 10000 fuzz iterations: ~0.2 s, ~1 s under ASan)
//
// 1. Round trip: a small checkpoint written and read back is identical, field by field.
// 2. A model with a non-finite parameter or moment is never written: -1 naming the reason,
//    no step file, no temp file, the previous checkpoint untouched.
// 3. Fuzz: random mutations of a valid checkpoint through checkpoint_parse (in memory): bit
//    flips, byte overwrites, truncations, and mutations of one record's message with its
//    hash and the footer recomputed, so that they get past the hashes into the protobuf
//    decoder and the header's sanity checks. Each must be rejected with a message or be
//    accepted as a consistent checkpoint; never crash, never exit (fatal), never allocate
//    more than the file could describe (outside ASan the address space is capped at 4 GiB,
//    so such an allocation ends the test; under ASan + UBSan memory errors and UB do).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "check.h"
#include "hash.h"
#include "util.h"


// ---------------------------------------------------------------- a small checkpoint

typedef struct {
    CheckpointData d;
    float *params, *m, *v, *h, *c;
    ShardCursor shards[4];
    LaneCursor lanes[8];
} Fixture;

static void fixture_make(Fixture *f) {
    memset(f, 0, sizeof *f);
    ModelShape s = {.n_actions = 7,
                    .action_embed = 3,
                    .n_cat = 2,
                    .cat_vocab = {5, 3},
                    .cat_embed = 2,
                    .n_dense = 4,
                    .hidden = 6,
                    .layers = 2,
                    .engagement = 1,
                    .window = 5};
    const size_t n = model_param_count(&s), nl = (size_t)s.layers * 8 * (size_t)s.hidden;
    f->params = xmalloc(n * sizeof(float)), f->m = xmalloc(n * sizeof(float));
    f->v = xmalloc(n * sizeof(float));
    f->h = xmalloc(nl * sizeof(float)), f->c = xmalloc(nl * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        f->params[i] = (float)sin((double)i) * 0.3f;
        f->m[i] = (float)cos((double)i) * 1e-3f;
        f->v[i] = (float)(i % 17) * 1e-6f;
    }
    for (size_t i = 0; i < nl; i++)
        f->h[i] = (float)i / (float)nl - 0.5f, f->c[i] = (float)i * 0.01f;
    for (int v = 0; v < 4; v++) f->shards[v] = (ShardCursor){v + 1, 10 * v + 3};
    for (int l = 0; l < 8; l++) f->lanes[l] = (LaneCursor){l % 3 - 1, l * 2};
    f->d = (CheckpointData){.step = 42,
                            .skipped_steps = 2,
                            .events_seen = 1234.0,
                            .epoch = 0.75,
                            .seed = 99,
                            .config_text = "train:\n  steps: 100\n",
                            .config_hash = 0x1234,
                            .data_hash = 0xabcdef,
                            .world_size = 4,
                            .shape = s,
                            .n_params = n,
                            .params = f->params,
                            .adam_m = f->m,
                            .adam_v = f->v,
                            .n_vshards = 4,
                            .n_lanes = 8,
                            .lanes_per_shard = 2,
                            .shards = f->shards,
                            .lanes = f->lanes,
                            .lane_h = f->h,
                            .lane_c = f->c,
                            .has_metrics = 1};
    f->d.last_valid.action_nll = 1.5, f->d.last_valid.n_targets = 77;
}

static void fixture_free(Fixture *f) {
    free(f->params), free(f->m), free(f->v), free(f->h), free(f->c);
}

static int same_floats(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_round_trip(const char *path, const Fixture *f) {
    LoadedCheckpoint c;
    char err[1024];
    CHECK(checkpoint_read_file(path, &c, err, sizeof err) == 0, "read back: %s", err);
    const CheckpointData *d = &c.d, *w = &f->d;
    const size_t nl = (size_t)w->shape.layers * 8 * (size_t)w->shape.hidden;
    CHECK(d->step == w->step && d->skipped_steps == w->skipped_steps && d->seed == w->seed &&
              d->events_seen == w->events_seen && d->epoch == w->epoch &&
              d->config_hash == w->config_hash && d->data_hash == w->data_hash &&
              d->world_size == w->world_size && strcmp(d->config_text, w->config_text) == 0,
          "round trip: counters or metadata differ");
    CHECK(memcmp(&d->shape, &w->shape, sizeof d->shape) == 0, "round trip: shape differs");
    CHECK(d->n_params == w->n_params && same_floats(d->params, w->params, w->n_params) &&
              same_floats(d->adam_m, w->adam_m, w->n_params) &&
              same_floats(d->adam_v, w->adam_v, w->n_params),
          "round trip: parameters or moments differ");
    CHECK(d->n_lanes == 8 && d->n_vshards == 4 && d->lanes_per_shard == 2 &&
              same_floats(d->lane_h, w->lane_h, nl) && same_floats(d->lane_c, w->lane_c, nl) &&
              memcmp(d->lanes, w->lanes, sizeof f->lanes) == 0 &&
              memcmp(d->shards, w->shards, sizeof f->shards) == 0,
          "round trip: data cursor or lane state differs");
    CHECK(d->has_metrics && d->last_valid.action_nll == 1.5 && d->last_valid.n_targets == 77,
          "round trip: metrics differ");
    checkpoint_free(&c);
}

static void test_nonfinite(const char *dir, Fixture *f, const char *good) {
    char path[512], tmp[600], err[1024];
    float *bufs[3] = {f->params, f->m, f->v};
    const float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/step-%08d.ckpt", dir, 50 + k);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        float keep = bufs[k][5];
        bufs[k][5] = bad[k];
        err[0] = 0;
        int rc = checkpoint_write_file(path, &f->d, err, sizeof err);
        bufs[k][5] = keep;
        CHECK(rc == -1 && strstr(err, "non-finite"), "non-finite %s written (rc %d, \"%s\")",
              k == 0   ? "param"
              : k == 1 ? "adam_m"
                       : "adam_v",
              rc, err);
        CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "a refused write left %s", path);
    }
    LoadedCheckpoint c;
    CHECK(checkpoint_read_file(good, &c, err, sizeof err) == 0, "the previous checkpoint: %s", err);
    checkpoint_free(&c);
}

// ---------------------------------------------------------------- fuzz

// Record k of a checkpoint file: [pos, pos + 12 + len).
typedef struct {
    size_t pos, len;
} Rec;

static int list_records(const unsigned char *buf, size_t size, Rec *out, int cap) {
    size_t pos = 8;
    int n = 0;
    while (pos + 12 <= size && n < cap) {
        uint32_t len;
        memcpy(&len, buf + pos, 4);
        if (pos + 12 + len > size) break;
        out[n++] = (Rec){pos, len};
        pos += 12 + len;
    }
    return n;
}

static void put_varint(unsigned char **p, uint64_t v) {
    while (v >= 0x80) *(*p)++ = (unsigned char)(v | 0x80), v >>= 7;
    *(*p)++ = (unsigned char)v;
}

// Rebuilds a file from records (message bytes given), with fresh hashes and a fresh footer
// (the records' own last one is dropped and re-encoded: field 1 varint, field 2 fixed64).
static size_t assemble(unsigned char *out, unsigned char **msgs, const size_t *lens, int n) {
    unsigned char *p = out;
    memcpy(p, "LSTMCKPT", 8), p += 8;
    Hasher rh;
    hasher_init(&rh, 0);
    for (int k = 0; k < n; k++) {
        uint32_t l32 = (uint32_t)lens[k];
        uint64_t h = hash_bytes(msgs[k], lens[k], 0);
        memcpy(p, &l32, 4), memcpy(p + 4, &h, 8), memcpy(p + 12, msgs[k], lens[k]);
        p += 12 + lens[k];
        hasher_update(&rh, &h, sizeof h);
    }
    unsigned char foot[32], *q = foot;
    *q++ = 0x08, put_varint(&q, (uint64_t)n);
    uint64_t rhash = hasher_final(&rh);
    *q++ = 0x11, memcpy(q, &rhash, 8), q += 8;
    uint32_t fl = (uint32_t)(q - foot);
    uint64_t fh = hash_bytes(foot, fl, 0);
    memcpy(p, &fl, 4), memcpy(p + 4, &fh, 8), memcpy(p + 12, foot, fl);
    return (size_t)(p + 12 + fl - out);
}

static const char *const kinds[] = {"bit flips",       "byte writes",
                                    "truncation",      "rehashed message bytes",
                                    "rehashed varint", "rehashed record order"};

static void fuzz(const unsigned char *file, size_t size, int iterations) {
    Rec recs[256];
    const int nrec = list_records(file, size, recs, 256);
    CHECK(nrec >= 3, "the fixture has %d records", nrec);
    if (nrec < 3) return;
    unsigned char *buf = xmalloc(size + 4096), *out = xmalloc(2 * size + 4096);
    unsigned char **msgs = xcalloc((size_t)nrec + 1, sizeof *msgs);
    size_t *lens = xcalloc((size_t)nrec + 1, sizeof *lens);
    Rng rng = rng_make(2024, 1);
    int accepted[6] = {0}, tried[6] = {0};
    for (int it = 0; it < iterations; it++) {
        const int kind = (int)rng_below(&rng, 6);
        size_t n = size;
        unsigned char *input = buf;
        memcpy(buf, file, size);
        if (kind == 0) { // 1..8 bit flips anywhere
            for (int k = 1 + (int)rng_below(&rng, 8); k > 0; k--) {
                size_t at = rng_below(&rng, size);
                buf[at] ^= (unsigned char)(1u << rng_below(&rng, 8));
            }
        } else if (kind == 1) { // a few bytes set to extreme or random values
            static const unsigned char vals[] = {0x00, 0xff, 0x7f, 0x80, 0x01};
            for (int k = 1 + (int)rng_below(&rng, 4); k > 0; k--)
                buf[rng_below(&rng, size)] =
                    rng_below(&rng, 2) ? vals[rng_below(&rng, 5)] : (unsigned char)rng_next(&rng);
        } else if (kind == 2) { // cut anywhere
            n = rng_below(&rng, size);
        } else { // structure-aware: edit one record's message (or the order), rehash all
            int nm = nrec - 1; // without the footer
            for (int k = 0; k < nm; k++) {
                lens[k] = recs[k].len;
                msgs[k] = xmalloc(recs[k].len + 16);
                memcpy(msgs[k], file + recs[k].pos + 12, recs[k].len);
            }
            // The header (record 0) most of the time: that is where sizes come from.
            int r = rng_below(&rng, 3) ? 0 : (int)rng_below(&rng, (uint64_t)nm);
            if (kind == 3 && lens[r] > 0) {
                for (int k = 1 + (int)rng_below(&rng, 3); k > 0; k--)
                    msgs[r][rng_below(&rng, lens[r])] = (unsigned char)rng_next(&rng);
            } else if (kind == 4 && lens[r] > 0) {
                // Overwrite a varint-looking byte run with a large or negative value.
                size_t at = rng_below(&rng, lens[r]);
                unsigned char big[10], *q = big;
                const uint64_t choices[] = {0,          1,          0x7fffffffULL, 0xffffffffULL,
                                            1ULL << 34, UINT64_MAX, 1ULL << 20,    (uint64_t)-2};
                put_varint(&q, choices[rng_below(&rng, 8)]);
                size_t bl = (size_t)(q - big);
                if (at + bl > lens[r]) at = lens[r] > bl ? lens[r] - bl : 0;
                memcpy(msgs[r] + at, big, bl < lens[r] ? bl : lens[r]);
            } else { // drop, duplicate or swap records
                int a = (int)rng_below(&rng, (uint64_t)nm), b = (int)rng_below(&rng, (uint64_t)nm);
                int op = (int)rng_below(&rng, 3);
                if (op == 0 && nm > 1) {
                    free(msgs[a]);
                    memmove(msgs + a, msgs + a + 1, sizeof *msgs * (size_t)(nm - a - 1));
                    memmove(lens + a, lens + a + 1, sizeof *lens * (size_t)(nm - a - 1));
                    nm--;
                } else if (op == 1) {
                    msgs[nm] = xmalloc(lens[a] + 16);
                    memcpy(msgs[nm], msgs[a], lens[a]);
                    lens[nm] = lens[a];
                    nm++;
                } else {
                    unsigned char *t = msgs[a];
                    size_t tl = lens[a];
                    msgs[a] = msgs[b], lens[a] = lens[b], msgs[b] = t, lens[b] = tl;
                }
            }
            n = assemble(out, msgs, lens, nm);
            input = out;
            for (int k = 0; k < nm; k++) free(msgs[k]);
        }
        LoadedCheckpoint c;
        char err[1024] = "";
        tried[kind]++;
        if (checkpoint_parse(input, n, &c, err, sizeof err) == 0) {
            accepted[kind]++;
            // Accepted: it must be a consistent checkpoint the rest of the program can use.
            checkpoint_print(&c, "fuzzed");
            CHECK(c.d.n_params == model_param_count(&c.d.shape) && c.params && c.lane_h &&
                      c.shards && c.lanes,
                  "iteration %d (%s): accepted but inconsistent", it, kinds[kind]);
            checkpoint_free(&c);
        } else {
            CHECK(err[0] != 0 && strlen(err) < 300 && !strchr(err, '\n'),
                  "iteration %d (%s): rejected without a one-line reason: \"%s\"", it, kinds[kind],
                  err);
        }
    }
    fprintf(stderr, "fuzz: %d iterations; accepted/tried per kind:", iterations);
    for (int k = 0; k < 6; k++) fprintf(stderr, " %s %d/%d;", kinds[k], accepted[k], tried[k]);
    fprintf(stderr, "\n");
    free(buf), free(out), free(msgs), free(lens);
}

int main(int argc, char **argv) {
    int iterations = argc > 1 ? atoi(argv[1]) : 10000;
    char dir[] = "/tmp/test_ckpt_io.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    Fixture f;
    fixture_make(&f);
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/step-%08d.ckpt", dir, 42);
    CHECK(checkpoint_write_file(path, &f.d, err, sizeof err) == 0, "write: %s", err);
    test_round_trip(path, &f);
    test_nonfinite(dir, &f, path);
    size_t size = 0;
    unsigned char *file = (unsigned char *)read_file(path, &size);
    CHECK(file != NULL, "cannot read %s back", path);
    // checkpoint_print of accepted mutants goes to stdout: keep the test's output short.
    // Outside ASan (which reserves terabytes of address space), cap the address space: a
    // reader that believes a mutated header and allocates gigabytes fails (fatal exit).
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit lim = {(rlim_t)4 << 30, (rlim_t)4 << 30};
    CHECK(setrlimit(RLIMIT_AS, &lim) == 0, "setrlimit");
#endif
    if (file && freopen("/dev/null", "w", stdout)) fuzz(file, size, iterations);
    free(file);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    fixture_free(&f);
    fprintf(stderr, g_failures ? "%d check(s) failed\n" : "all checks passed\n", g_failures);
    return g_failures ? 1 : 0;
}
