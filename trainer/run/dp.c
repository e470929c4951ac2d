// dp.c: see dp.h.
#include "dp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "erasure.h"
#include "hash.h"
#include "util.h"

#define STREAM_NOISE  0x6e6f697365ULL // "noise"
#define STREAM_SAMPLE 0x73616d706cULL // "sampl"
#define STREAM_WINDOW 0x77696e646fULL // "windo"

double dp_noise_at(uint64_t seed, int64_t step, uint64_t i) {
    const uint64_t stream = mix64((uint64_t)step ^ STREAM_NOISE);
    const double u1 = 1.0 - rng_uniform_at(seed, stream, 2 * i); // (0, 1]
    const double u2 = rng_uniform_at(seed, stream, 2 * i + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static uint64_t user_key(int vshard, uint32_t u) {
    return ((uint64_t)(uint32_t)vshard << 32) | u;
}

int dp_sampled(uint64_t seed, int64_t step, int vshard, uint32_t u, double q) {
    return rng_uniform_at(seed, mix64((uint64_t)step ^ STREAM_SAMPLE), user_key(vshard, u)) < q;
}

void dp_sampler_init(DpSampler *sp, const Dataset *ds, BatchBuf *bb, double q, uint64_t seed,
                     int reproducible, int chunk_lanes, int window) {
    memset(sp, 0, sizeof *sp);
    sp->ds = ds, sp->bb = bb, sp->q = q, sp->seed = seed;
    sp->reproducible = reproducible, sp->chunk_lanes = chunk_lanes, sp->window = window;
    sp->built_step = -1;
    uint64_t n = 0;
    for (int s = 0; s < ds->n_shards; s++) n += ds->shards[SPLIT_TRAIN][s].hdr.n_users;
    sp->list = xmalloc(sizeof(UserWindow) * (size_t)(n ? n : 1));
}

void dp_sampler_free(DpSampler *sp) {
    free(sp->list);
    memset(sp, 0, sizeof *sp);
}

// The sampled users of one step and group, each with a window drawn uniformly among the
// user's windows of T target positions (the whole user when shorter).
static void build_list(DpSampler *sp, int64_t step, int group) {
    const Dataset *ds = sp->ds;
    const int s0 = sp->reproducible ? group : 0, s1 = sp->reproducible ? group + 1 : ds->n_shards;
    const uint64_t wstream = mix64((uint64_t)step ^ STREAM_WINDOW);
    sp->n_list = 0;
    for (int s = s0; s < s1; s++) {
        const Shard *sh = &ds->shards[SPLIT_TRAIN][s];
        const int vs = ds->first_shard + s;
        for (uint32_t u = 0; u < (uint32_t)sh->hdr.n_users; u++) {
            if (!dp_sampled(sp->seed, step, vs, u, sp->q)) continue;
            const int64_t targets = (int64_t)sh->users[u].n_events - 1;
            const int64_t starts = targets > sp->window ? targets - sp->window + 1 : 1;
            const uint64_t key = user_key(vs, u);
            UserWindow *w = &sp->list[sp->n_list++];
            w->shard = s, w->user = (int32_t)u, w->lane_id = key;
            w->start = (int32_t)(((unsigned __int128)rng_at(sp->seed, wstream, key) *
                                  (uint64_t)starts) >> 64);
        }
    }
    sp->built_step = step, sp->built_group = group;
}

const Batch *dp_sampler_next(void *ctx, int64_t step, int group, int chunk) {
    DpSampler *sp = ctx;
    if (sp->built_step != step || sp->built_group != group) build_list(sp, step, group);
    const int64_t first = (int64_t)chunk * sp->chunk_lanes;
    if (first >= sp->n_list) return NULL;
    int64_t n = sp->n_list - first;
    if (n > sp->chunk_lanes) n = sp->chunk_lanes;
    batch_fill_windows(sp->bb, sp->ds, SPLIT_TRAIN, (int)n, sp->list + first);
    return &sp->bb->view;
}

int dp_run_resolve(DpRun *d, const Config *cfg, uint64_t n_users, int verbose) {
    memset(d, 0, sizeof *d);
    if (cfg->data.exclude_users[0]) { // which erasure list the model honours (checkpoints)
        UserKey key;
        userkey_load(cfg, &key);
        Erasure er;
        erasure_load(&er, cfg, &key);
        d->exclusion_digest = er.digest, d->excluded_listed = (uint64_t)er.lines;
        erasure_free(&er);
    }
    d->on = cfg->privacy.dp;
    if (!d->on) return 0;
    const double E = (double)cfg->train.batch_size;
    d->users = n_users, d->clip = cfg->privacy.clip, d->expected_lanes = E;
    d->conv = strcmp(cfg->privacy.accountant, "classic") == 0 ? DP_CONVERT_CLASSIC
                                                                : DP_CONVERT_BALLE;
    if ((double)n_users < E) {
        if (verbose)
            fprintf(stderr,
                    "error: train.batch_size: %lld expected users per step is more than the %llu "
                    "training users (privacy.dp samples each user with rate batch_size/users)\n",
                    (long long)cfg->train.batch_size, (unsigned long long)n_users);
        return -1;
    }
    d->q = E / (double)n_users;
    d->delta = cfg->privacy.delta > 0 ? cfg->privacy.delta : dp_default_delta(n_users);
    if (cfg->privacy.noise_multiplier > 0) {
        d->sigma = cfg->privacy.noise_multiplier;
        return 0;
    }
    d->sigma = dp_solve_sigma(d->q, cfg->train.steps, d->delta, cfg->privacy.target_epsilon,
                              d->conv);
    if (d->sigma < 0) {
        if (verbose)
            fprintf(stderr,
                    "error: privacy.target_epsilon: %g cannot be met within train.steps=%lld at "
                    "q=%.3g, delta=%.3g: even noise_multiplier=%g gives epsilon %.4g; raise the "
                    "target, or lower train.steps or train.batch_size\n",
                    cfg->privacy.target_epsilon, (long long)cfg->train.steps, d->q, d->delta,
                    DP_SIGMA_MAX,
                    dp_epsilon_after(d->q, DP_SIGMA_MAX, cfg->train.steps, d->delta, d->conv));
        return -1;
    }
    return 0;
}

double dp_run_epsilon(const DpRun *d, int64_t steps) {
    return d->on ? dp_epsilon_after(d->q, d->sigma, steps, d->delta, d->conv) : 0;
}

CkptPrivacy dp_run_record(const DpRun *d, int64_t steps) {
    CkptPrivacy p;
    memset(&p, 0, sizeof p);
    p.exclusion_digest = d->exclusion_digest, p.excluded_users = d->excluded_listed;
    if (!d->on) return p;
    p.dp = 1, p.epsilon = dp_run_epsilon(d, steps), p.delta = d->delta, p.sigma = d->sigma;
    p.q = d->q, p.clip = d->clip;
    snprintf(p.accountant, sizeof p.accountant, "%s",
             d->conv == DP_CONVERT_CLASSIC ? "classic" : "balle");
    return p;
}

int dp_chunk_lanes(double expected) {
    return (int)ceil(expected + 4 * sqrt(expected) + 1);
}
