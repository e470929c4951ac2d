// bench.c: `trainer bench [--hidden H] [--layers L] ... [--json]`: training throughput of the model of ../shared/bench/torch_lstm.py
// (the PyTorch reference), on the same synthetic data, next to OpenBLAS's sgemm peak.
//
// What it measures: full training steps (forward, backward, gradient allreduce through
// gradsync, Adam) of ModelShape {K types, embedding E, one dense input = log gap, L layers of
// H, B lanes, T steps}, with the lane state carried across windows; events/s over timed
// windows of ~--window-s seconds (median, min..max, aggregate over ranks), model GFLOP/s
// counted as torch_lstm.py's flops_per_event, the share of the same run's 1-thread
// cblas_sgemm N^3 peak, the share of step time blocked in communication, and peak RSS
// against what parameters, gradients, Adam moments, activations and lane state need.
// What it is not: a test of the data pipeline. The streams are generated before timing and
// windows are views into them (as torch slices its tensors), so no batch is built per step.
// One difference from torch that it states in its output: our time head is a log-normal
// (2 outputs: mu, log sigma) where torch's is a 1-output MSE regression.
//
// It times run/step.c's step_run(), the step `trainer train` runs, with batches that are
// views into pre-generated streams instead of the data pipeline. Everything is allocated
// before the first step; the timed loop only indexes into it.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "hash.h"
#include "kernels.h"
#include "model.h"
#include "optim.h"
#include "step.h"
#include "util.h"

#define MAX_WINDOWS      1000
#define MAX_SGEMM_TRIALS 100

typedef struct {
    int hidden, layers, batch, window, types, emb;
    int warmup, windows, max_steps_per_window, stream_windows;
    double window_s, bucket_mb;
    int sgemm_n, sgemm_trials;
    long long seed;
    int json;
    int dp, dp_method; // --dp: also time the DP-SGD step, windows interleaved with the plain one
    int head;          // --head: HEAD_AUTO (as train), HEAD_TILED or HEAD_UNTILED
} BenchOptions;
enum { HEAD_AUTO, HEAD_TILED, HEAD_UNTILED };

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: trainer bench [--hidden H] [--layers L] [--batch B] [--window T] [--types K]\n"
        "                     [--emb E] [--warmup N] [--windows N] [--window-s S]\n"
        "                     [--max-steps-per-window N] [--stream-windows N] [--bucket-mb MB]\n"
        "                     [--sgemm-n N] [--sgemm-trials N] [--seed S] [--json]\n"
        "                     [--dp [--lane-norms ghost|explicit]] [--head auto|tiled|untiled]\n"
        "Trains the model of ../shared/bench/torch_lstm.py on synthetic streams and reports\n"
        "events/s (median of --windows timed windows of ~S seconds), GFLOP/s against a\n"
        "1-thread sgemm N^3 peak measured in the same run, peak RSS against what the model\n"
        "needs and, under mpirun, aggregate events/s and the share of time in communication.\n"
        "defaults: H=128 L=1 B=64 T=64 K=32 E=32, 2 warm-up steps, 5 windows of 1.5 s (at\n"
        "most 50 steps each), streams of 8 windows, sgemm 2048^3 x 5 trials (0: skip).\n"
        "--dp also times the user-level DP-SGD step (privacy.dp: every lane a sampled user\n"
        "from a zero state, per-lane clipping, noise), its windows interleaved with the plain\n"
        "step's, and reports the ratio of their step times.\n"
        "--head: the action head as train builds it (auto: tiled for K > %d without --dp),\n"
        "or forced tiled or untiled (the whole (T*B, K) logits, as before).\n",
        MODEL_HEAD_TILE_MIN_K);
}

static long long parse_int(const char *flag, const char *v, long long lo, long long hi) {
    char *end = NULL;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "error: bench: %s needs an integer in %lld..%lld, got '%s'\n", flag, lo, hi,
                v ? v : "(nothing)");
        exit(EXIT_USAGE);
    }
    return x;
}

static double parse_real(const char *flag, const char *v, double lo, double hi) {
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    if (!v || !*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "error: bench: %s needs a number in %g..%g, got '%s'\n", flag, lo, hi,
                v ? v : "(nothing)");
        exit(EXIT_USAGE);
    }
    return x;
}

static void parse_options(int argc, char **argv, BenchOptions *o) {
    *o = (BenchOptions){.hidden = 128,
                        .layers = 1,
                        .batch = 64,
                        .window = 64,
                        .types = 32,
                        .emb = 32,
                        .warmup = 2,
                        .windows = 5,
                        .max_steps_per_window = 50,
                        .stream_windows = 8,
                        .window_s = 1.5,
                        .bucket_mb = 4,
                        .sgemm_n = 2048,
                        .sgemm_trials = 5,
                        .seed = 0,
                        .json = 0};
    for (int i = 0; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(f, "-h") == 0 || strcmp(f, "--help") == 0) {
            usage(stdout);
            exit(EXIT_OK);
        }
        if (strcmp(f, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(f, "--dp") == 0) {
            o->dp = 1;
            continue;
        }
        i++; // every other option takes a value
        if (strcmp(f, "--hidden") == 0)
            o->hidden = (int)parse_int(f, v, 1, 16384);
        else if (strcmp(f, "--layers") == 0)
            o->layers = (int)parse_int(f, v, 1, MODEL_MAX_LAYERS);
        else if (strcmp(f, "--batch") == 0)
            o->batch = (int)parse_int(f, v, 1, 1 << 16);
        else if (strcmp(f, "--window") == 0 || strcmp(f, "--seq") == 0)
            o->window = (int)parse_int(f, v, 1, 1 << 16);
        else if (strcmp(f, "--types") == 0)
            o->types = (int)parse_int(f, v, 2, 1 << 20);
        else if (strcmp(f, "--emb") == 0)
            o->emb = (int)parse_int(f, v, 1, 4096);
        else if (strcmp(f, "--warmup") == 0)
            o->warmup = (int)parse_int(f, v, 1, 1 << 20);
        else if (strcmp(f, "--windows") == 0)
            o->windows = (int)parse_int(f, v, 1, MAX_WINDOWS);
        else if (strcmp(f, "--window-s") == 0)
            o->window_s = parse_real(f, v, 0, 3600);
        else if (strcmp(f, "--max-steps-per-window") == 0)
            o->max_steps_per_window = (int)parse_int(f, v, 1, 1 << 20);
        else if (strcmp(f, "--stream-windows") == 0)
            o->stream_windows = (int)parse_int(f, v, 1, 1 << 16);
        else if (strcmp(f, "--bucket-mb") == 0)
            o->bucket_mb = parse_real(f, v, 0.001, 4096);
        else if (strcmp(f, "--sgemm-n") == 0)
            o->sgemm_n = (int)parse_int(f, v, 16, 16384);
        else if (strcmp(f, "--sgemm-trials") == 0)
            o->sgemm_trials = (int)parse_int(f, v, 0, MAX_SGEMM_TRIALS);
        else if (strcmp(f, "--seed") == 0)
            o->seed = parse_int(f, v, 0, 1LL << 40);
        else if (strcmp(f, "--lane-norms") == 0 && v &&
                 (strcmp(v, "ghost") == 0 || strcmp(v, "explicit") == 0))
            o->dp_method = strcmp(v, "explicit") == 0 ? LANE_GRAD_EXPLICIT : LANE_GRAD_GHOST;
        else if (strcmp(f, "--head") == 0 && v &&
                 (!strcmp(v, "auto") || !strcmp(v, "tiled") || !strcmp(v, "untiled")))
            o->head = !strcmp(v, "auto") ? HEAD_AUTO : !strcmp(v, "tiled") ? HEAD_TILED : HEAD_UNTILED;
        else {
            fprintf(stderr, "error: bench: unknown option '%s' (see trainer bench --help)\n", f);
            exit(EXIT_USAGE);
        }
    }
    if ((size_t)o->window * (size_t)o->stream_windows * (size_t)o->batch > ((size_t)1 << 31))
        fprintf(stderr, "error: bench: --window x --stream-windows x --batch is too large\n"),
            exit(EXIT_USAGE);
}

// ---------------------------------------------------------------- synthetic streams

// As torch_lstm.py's make_stream: per rank, B lanes of n events from one random Markov
// chain over K types (rows softmax(2 N(0,1))), gap ~ Exponential(rate of the type), rates
// evenly spaced in [0.5, 3]. Time-major: index (t, b) = t * B + b, so a window starting at
// event s is the contiguous slice from s * B, and its targets the slice from (s + 1) * B.
// Row a of the transition matrix is drawn from a stream of its own, so it is drawn again
// where a sample needs it and only its max and normaliser are kept: the (K, K) matrix never
// exists (at K = 10000 it was 800 MB of doubles, more than the model).
typedef struct {
    int n_events, lanes; // n_events = T * windows + 1 per lane
    int32_t *types;      // (n, B)
    float *loggap;       // (n, B) log(gap + 1e-6), gap of the event at that position
    double loggap_mean, loggap_std;
} Streams;

static Rng chain_row_rng(uint64_t seed, int a) {
    return rng_make(seed, ((uint64_t)0xbe7c5 << 32) | (uint64_t)a);
}

// The next type after a, for uniform u: the first k whose cumulative probability exceeds u.
static int32_t chain_next(uint64_t seed, int K, int a, double mx, double z, double u) {
    Rng rr = chain_row_rng(seed, a);
    double acc = 0;
    int k = 0;
    for (; k < K - 1; k++) {
        acc += exp(2.0 * rng_normal(&rr) - mx) / z;
        if (u < acc) break;
    }
    return (int32_t)k;
}

static void streams_make(Streams *st, const BenchOptions *o, uint64_t seed) {
    const int K = o->types, B = o->batch, n = o->window * o->stream_windows + 1;
    st->n_events = n, st->lanes = B;
    st->types = xmalloc(sizeof(int32_t) * (size_t)n * B);
    st->loggap = xmalloc(sizeof(float) * (size_t)n * B);
    Rng r = rng_make(seed, 0xbe7c4);
    double *mx = xmalloc(sizeof(double) * (size_t)K), *z = xmalloc(sizeof(double) * (size_t)K);
    for (int a = 0; a < K; a++) { // online max and sum of exp(x - max) over the row
        Rng rr = chain_row_rng(seed, a);
        double m = -INFINITY, zz = 0;
        for (int k = 0; k < K; k++) {
            double x = 2.0 * rng_normal(&rr);
            if (x > m) zz = zz * exp(m - x), m = x;
            zz += exp(x - m);
        }
        mx[a] = m, z[a] = zz;
    }
    for (int b = 0; b < B; b++) st->types[b] = (int32_t)rng_below(&r, (uint64_t)K);
    for (size_t t = 1; t < (size_t)n; t++)
        for (int b = 0; b < B; b++) {
            const int a = st->types[(t - 1) * B + b];
            st->types[t * B + b] = chain_next(seed, K, a, mx[a], z[a], rng_uniform(&r));
        }
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < (size_t)n * B; i++) {
        double rate = 0.5 + 2.5 * (K > 1 ? (double)st->types[i] / (K - 1) : 0);
        double gap = -log(1.0 - rng_uniform(&r)) / rate;
        double lg = log(gap + 1e-6);
        st->loggap[i] = (float)lg;
        s1 += lg, s2 += lg * lg;
    }
    double cnt = (double)n * B;
    st->loggap_mean = s1 / cnt;
    st->loggap_std = sqrt(fmax(s2 / cnt - st->loggap_mean * st->loggap_mean, 1e-12));
    free(mx), free(z);
}

static void streams_free(Streams *st) {
    free(st->types);
    free(st->loggap);
}

// ---------------------------------------------------------------- helpers

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *x, int n) {
    double s[MAX_WINDOWS > MAX_SGEMM_TRIALS ? MAX_WINDOWS : MAX_SGEMM_TRIALS];
    memcpy(s, x, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void min_max(const double *x, int n, double *lo, double *hi) {
    *lo = *hi = x[0];
    for (int i = 1; i < n; i++) *lo = x[i] < *lo ? x[i] : *lo, *hi = x[i] > *hi ? x[i] : *hi;
}

// Model FLOPs per event exactly as torch_lstm.py's flops_per_event counts them: per layer
// 2 (I_l + H) 4H with I_0 = E + 1, plus a head of K + 1 outputs, times 3 for fwd + bwd.
static double torch_flops_per_event(const BenchOptions *o) {
    double H = o->hidden, f = 0;
    for (int l = 0; l < o->layers; l++) f += 2.0 * ((l == 0 ? o->emb + 1 : H) + H) * 4 * H;
    f += 2.0 * H * (o->types + 1);
    return 3 * f;
}

// CPU seconds of this process (a step-time ratio that holds on a shared, loaded machine).
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// 1-thread (or OPENBLAS_NUM_THREADS) cblas_sgemm of n^3: one warm-up call, then `trials`
// timed calls; fills gflops[trials]. Runs on every rank at once (the cores are as busy as
// in training) after the training measurement, so its buffers do not count in the peak RSS.
// gflops_cpu[trials]: the same per CPU second of this process (robust to a loaded machine).
static void sgemm_peak(int n, int trials, double *gflops, double *gflops_cpu) {
    const size_t nn = (size_t)n * n;
    float *a = xalloc_aligned(nn * sizeof(float)), *b = xalloc_aligned(nn * sizeof(float));
    float *c = xalloc_aligned(nn * sizeof(float));
    Rng r = rng_make(7, 0x5e);
    for (size_t i = 0; i < nn; i++)
        a[i] = (float)rng_uniform(&r) - 0.5f, b[i] = (float)rng_uniform(&r) - 0.5f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    for (int k = 0; k < trials; k++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        gflops[k] = 2.0 * (double)n * n * n / (now_seconds() - t0) / 1e9;
        gflops_cpu[k] = 2.0 * (double)n * n * n / (cpu_seconds() - c0) / 1e9;
    }
    free(a), free(b), free(c);
}

static double mib(double bytes) {
    return bytes / 1048576.0;
}

// ---------------------------------------------------------------- the benchmark

typedef struct {
    ModelShape shape;
    Model *m;
    Optimizer opt;
    Stepper stepper; // run/step.h: the step `trainer train` runs
    Stepper dp_stepper; // --dp: the same step in DP mode
    LaneState state;
    LossConfig lc;
    Streams st;
    uint8_t *keep_reset, *keep_carry; // (T, B): the first window of a stream pass starts afresh
    uint64_t *lane_id;
    int64_t step;
    int n_windows; // windows per stream pass
    int batch, window;
    Batch b;
    double last_loss;
} Bench;

// The step's batch: a view of the streams at window step % n_windows (no data pipeline).
static const Batch *next_bench_batch(void *ctx, int first, int n) {
    Bench *bn = ctx;
    const int B = bn->batch, T = bn->window, w = (int)(bn->step % bn->n_windows);
    const size_t s = (size_t)w * T;
    bn->b = (Batch){.lanes = B,
                    .window = T,
                    .action = bn->st.types + s * B,
                    .dense = bn->st.loggap + s * B,
                    .keep = w == 0 ? bn->keep_reset : bn->keep_carry,
                    .tgt_action = bn->st.types + (s + 1) * B,
                    .tgt_loggap = bn->st.loggap + (s + 1) * B,
                    .lane_id = bn->lane_id};
    return &bn->b;
}


// DP mode: every lane is a sampled user's window from a zero state, all in one chunk.
static const Batch *next_dp_batch(void *ctx, int64_t step, int group, int chunk) {
    Bench *bn = ctx;
    if (chunk > 0) return NULL;
    next_bench_batch(ctx, 0, bn->batch);
    bn->b.keep = bn->keep_reset;
    return &bn->b;
}

static void bench_step_with(Bench *bn, Stepper *st) {
    StepResult r = step_run(st, bn->step, &bn->state, next_bench_batch, bn, NULL);
    if (r.skipped)
        fatal("bench: non-finite loss or gradient at step %lld", (long long)bn->step);
    bn->last_loss = r.h.sums.loss / r.h.sums.n_targets;
    bn->step++;
}

static void bench_step(Bench *bn) {
    bench_step_with(bn, &bn->stepper);
}

// Model, optimizer, the shipped step and the streams of this rank; every rank starts from
// rank 0's parameters and the same data statistics (as the trainer's train-set statistics).
static void bench_setup(Bench *bn, const BenchOptions *o, int rank, int P) {
    memset(bn, 0, sizeof *bn);
    bn->shape = (ModelShape){.n_actions = o->types,
                             .action_embed = o->emb,
                             .n_dense = 1,
                             .hidden = o->hidden,
                             .layers = o->layers,
                             .max_lanes = o->batch,
                             .window = o->window};
    const int tiled = o->head == HEAD_AUTO ? model_head_should_tile(&bn->shape) && !o->dp
                                           : o->head == HEAD_TILED;
    if (tiled && o->dp) fatal("bench: --head tiled does not go with --dp (DP reads the whole dy)");
    bn->m = model_create_head(&bn->shape, tiled); // auto: as train
    Model *m = bn->m;
    if (rank == 0) model_init_params(m, (uint64_t)o->seed, 0);
    comm_bcast(m->params, sizeof(float) * m->n_params, 0);
    OptimConfig oc = {.kind = OPT_ADAM,
                      .schedule = SCHED_CONSTANT,
                      .lr = 1e-3,
                      .beta1 = 0.9,
                      .beta2 = 0.999,
                      .eps = 1e-8};
    optim_init(&bn->opt, &oc, &bn->shape, m->n_params);
    bn->state = lane_state_alloc(&bn->shape, o->batch);
    streams_make(&bn->st, o, (uint64_t)o->seed * 1000 + (uint64_t)rank);
    bn->n_windows = o->stream_windows;
    const size_t TB = (size_t)o->window * o->batch;
    bn->keep_reset = xmalloc(TB), bn->keep_carry = xmalloc(TB);
    memset(bn->keep_carry, 1, TB);
    memset(bn->keep_reset, 1, TB);
    memset(bn->keep_reset, 0, (size_t)o->batch);
    bn->lane_id = xmalloc(sizeof(uint64_t) * (size_t)o->batch);
    for (int b = 0; b < o->batch; b++)
        bn->lane_id[b] = (uint64_t)rank * (uint64_t)o->batch + (uint64_t)b;
    double stats[2] = {bn->st.loggap_mean / P, 0};
    comm_allreduce_sum_f64(stats, 1);
    double var_local = bn->st.loggap_std * bn->st.loggap_std +
                       (bn->st.loggap_mean - stats[0]) * (bn->st.loggap_mean - stats[0]);
    stats[1] = var_local / P;
    comm_allreduce_sum_f64(stats + 1, 1);
    bn->lc = (LossConfig){.w_action = 1,
                          .w_time = 1,
                          .w_eng = 0,
                          .loggap_mean = stats[0],
                          .loggap_std = sqrt(stats[1]),
                          .gap_offset = 1e-6,
                          .top_k = 5};
    bn->batch = o->batch, bn->window = o->window;
    stepper_init(&bn->stepper, m, &bn->opt, &bn->lc, 0, (uint64_t)o->seed, o->bucket_mb,
                 o->batch);
    if (o->dp) {
        stepper_init(&bn->dp_stepper, m, &bn->opt, &bn->lc, 0, (uint64_t)o->seed, o->bucket_mb,
                     o->batch);
        DpConfig dpc = {.clip = 1, .sigma = 1, .expected_lanes = (double)o->batch * P,
                        .method = (LaneGradMethod)o->dp_method, .next = next_dp_batch, .ctx = bn};
        stepper_dp(&bn->dp_stepper, &dpc);
    }
}

static void bench_free(Bench *bn, const BenchOptions *o) {
    free(bn->keep_reset), free(bn->keep_carry), free(bn->lane_id);
    streams_free(&bn->st);
    lane_state_free(&bn->state);
    stepper_free(&bn->stepper);
    if (o->dp) stepper_free(&bn->dp_stepper);
    optim_free(&bn->opt);
    model_free(bn->m);
}

// Warm-up; the steps after the first set the steps per window (as torch_lstm.py), the same
// on every rank.
static int bench_warmup(Bench *bn, const BenchOptions *o, double *first_step_s) {
    comm_barrier();
    double t0 = now_seconds();
    *first_step_s = 0;
    for (int i = 0; i < o->warmup; i++) {
        bench_step(bn);
        if (i == 0) *first_step_s = now_seconds() - t0;
    }
    for (int i = 0; o->dp && i < o->warmup; i++) bench_step_with(bn, &bn->dp_stepper);
    double warm_s = now_seconds() - t0;
    double per_step = o->warmup > 1 ? (warm_s - *first_step_s) / (o->warmup - 1) : warm_s;
    double spw = ceil(o->window_s / fmax(per_step, 1e-6));
    spw = spw < 1 ? 1 : (spw > o->max_steps_per_window ? o->max_steps_per_window : spw);
    comm_allreduce_max_f64(&spw, 1);
    return (int)spw;
}

// What the timed windows measured, reduced over ranks.
typedef struct {
    double rates[MAX_WINDOWS], step_ms[MAX_WINDOWS]; // per window (slowest rank)
    double dp_step_ms[MAX_WINDOWS];                  // --dp: the DP window after each one
    double cpu_ms[MAX_WINDOWS], dp_cpu_ms[MAX_WINDOWS]; // this rank's CPU time per step
    double sums[7];  // comm share, forward/backward/reduce/update shares, RSS, start RSS
    double maxes[3]; // comm share, RSS, start RSS
    double sg_med, sg_lo, sg_hi;
    double sg_cpu_med; // sgemm GFLOP per CPU second (rank 0's median)
    double first_step_s;
    int steps_per_window;
} BenchResult;

static void bench_time(Bench *bn, const BenchOptions *o, int P, double rss_start, BenchResult *r) {
    double comm_local = 0, elapsed_local = 0;
    bn->stepper.t_forward = bn->stepper.t_backward = 0;
    bn->stepper.t_reduce = bn->stepper.t_update = 0;
    Stepper *ds = &bn->dp_stepper;
    ds->t_forward = ds->t_backward = ds->t_reduce = ds->t_update = ds->t_norms = 0;
    ds->t_clipsum = 0;
    const double ev_per_step = (double)o->window * o->batch * P;
    const int spw = r->steps_per_window;
    for (int w = 0; w < o->windows; w++) {
        comm_barrier();
        comm_take_wait_seconds();
        double ts = now_seconds(), cs = cpu_seconds();
        for (int k = 0; k < spw; k++) bench_step(bn);
        double el = now_seconds() - ts;
        r->cpu_ms[w] = 1e3 * (cpu_seconds() - cs) / spw;
        comm_local += comm_take_wait_seconds(), elapsed_local += el;
        comm_allreduce_max_f64(&el, 1);
        r->rates[w] = ev_per_step * spw / el;
        r->step_ms[w] = 1e3 * el / spw;
        if (o->dp) { // a DP window after each plain one
            comm_barrier();
            ts = now_seconds(), cs = cpu_seconds();
            for (int k = 0; k < spw; k++) bench_step_with(bn, ds);
            el = now_seconds() - ts;
            r->dp_cpu_ms[w] = 1e3 * (cpu_seconds() - cs) / spw;
            comm_allreduce_max_f64(&el, 1);
            r->dp_step_ms[w] = 1e3 * el / spw;
        }
    }
    const double rss_train = (double)peak_rss_bytes(); // before the sgemm buffers exist
    // Over ranks: comm share (mean and max), step phases (mean), RSS (max, sum).
    const double sums[7] = {comm_local / elapsed_local,
                            bn->stepper.t_forward / elapsed_local,
                            bn->stepper.t_backward / elapsed_local,
                            bn->stepper.t_reduce / elapsed_local,
                            bn->stepper.t_update / elapsed_local,
                            rss_train,
                            rss_start};
    const double maxes[3] = {comm_local / elapsed_local, rss_train, rss_start};
    memcpy(r->sums, sums, sizeof sums), memcpy(r->maxes, maxes, sizeof maxes);
    comm_allreduce_sum_f64(r->sums, 7);
    comm_allreduce_max_f64(r->maxes, 3);
}

// sgemm peak, every rank at once: the mean over ranks of each rank's median (P = 1: the
// median), and min..max over every trial of every rank.
static void bench_sgemm(const BenchOptions *o, int P, BenchResult *r) {
    if (o->sgemm_trials <= 0) return;
    double sg[MAX_SGEMM_TRIALS], sg_cpu[MAX_SGEMM_TRIALS];
    comm_barrier();
    sgemm_peak(o->sgemm_n, o->sgemm_trials, sg, sg_cpu);
    r->sg_cpu_med = median(sg_cpu, o->sgemm_trials);
    double med = median(sg, o->sgemm_trials), lo, hi;
    min_max(sg, o->sgemm_trials, &lo, &hi);
    double agg[3] = {med / P, -lo, hi};
    comm_allreduce_sum_f64(agg, 1);
    comm_allreduce_max_f64(agg + 1, 2);
    r->sg_med = agg[0], r->sg_lo = -agg[1], r->sg_hi = agg[2];
}

// Derived figures of the report.
typedef struct {
    double ev_med, ev_lo, ev_hi, fpe, gflops, gflops_rank, peak_share, comm_share;
    double ev_cpu, peak_share_cpu; // rank 0's events per CPU second, and its share of sg_cpu_med
    double b_params, b_act, b_state, b_data, need, rss, rss0;
    double dp_med, dp_lo, dp_hi, dp_ratio, dp_cpu_ratio; // --dp
} BenchFigures;

static BenchFigures bench_figures(const Bench *bn, const BenchOptions *o, int P,
                                  const BenchResult *r) {
    BenchFigures f;
    memset(&f, 0, sizeof f);
    f.ev_med = median(r->rates, o->windows);
    min_max(r->rates, o->windows, &f.ev_lo, &f.ev_hi);
    f.fpe = torch_flops_per_event(o), f.gflops = f.ev_med * f.fpe / 1e9;
    f.gflops_rank = f.gflops / P;
    f.peak_share = r->sg_med > 0 ? f.gflops_rank / r->sg_med : 0; // 0: not measured
    f.ev_cpu = (double)o->window * o->batch / (1e-3 * median(r->cpu_ms, o->windows));
    f.peak_share_cpu = r->sg_cpu_med > 0 ? f.ev_cpu * f.fpe / 1e9 / r->sg_cpu_med : 0;
    f.comm_share = r->sums[0] / P;
    const double n = (double)bn->m->n_params, TB = (double)o->window * o->batch;
    f.b_params = 4 * n * sizeof(float); // params, grads, Adam m and v
    f.b_act = (double)bn->m->activation_bytes;
    f.b_state = 2.0 * o->layers * o->batch * o->hidden * sizeof(float);
    f.b_data = (double)bn->st.n_events * o->batch * (sizeof(int32_t) + sizeof(float)) +
               2.0 * TB + sizeof(uint64_t) * o->batch;
    f.need = f.b_params + f.b_act + f.b_state + f.b_data;
    f.rss = r->maxes[1], f.rss0 = r->maxes[2];
    f.dp_med = f.dp_lo = f.dp_hi = f.dp_ratio = f.dp_cpu_ratio = 0;
    if (o->dp) {
        f.dp_med = median(r->dp_step_ms, o->windows);
        f.dp_ratio = f.dp_med / median(r->step_ms, o->windows);
        f.dp_cpu_ratio = median(r->dp_cpu_ms, o->windows) / median(r->cpu_ms, o->windows);
        min_max(r->dp_step_ms, o->windows, &f.dp_lo, &f.dp_hi);
    }
    return f;
}

static void bench_print(FILE *txt, const Bench *bn, const BenchOptions *o, int P, const char *blas,
                        const BenchResult *r, const BenchFigures *f) {
    const char *ct = getenv("OPENBLAS_CORETYPE");
    fprintf(txt,
            "bench: H=%d L=%d K=%d E=%d B=%d T=%d on %d rank%s (%s), %s; OPENBLAS_CORETYPE=%s; "
            "kernels %s (CPU: %s%s); %s head\n",
            o->hidden, o->layers, o->types, o->emb, o->batch, o->window, P, P > 1 ? "s" : "",
            comm_launcher(), blas, ct ? ct : "<unset>", kernels()->name,
            cpu_isa_name(cpu_isa_detected()),
            getenv("LSTM_TRAINER_ISA") ? ", chosen by LSTM_TRAINER_ISA" : "",
            bn->m->head_tiled ? "tiled" : "untiled");
    fprintf(txt, "note: our time head is a log-normal (2 outputs: mu, log sigma); torch_lstm.py's "
                 "is a 1-output MSE. FLOPs are counted as torch_lstm.py counts them.\n");
    fprintf(txt, "params %zu; %d windows of %d steps (~%.2f s); first step %.1f ms\n",
            bn->m->n_params, o->windows, r->steps_per_window, o->window_s, 1e3 * r->first_step_s);
    fprintf(txt, "events/s: %.0f median [%.0f..%.0f]%s; step %.2f ms; final loss %.4f\n",
            f->ev_med, f->ev_lo, f->ev_hi, P > 1 ? " aggregate over ranks" : "",
            median(r->step_ms, o->windows), bn->last_loss);
    fprintf(txt, "model:    %.1f GFLOP/s (%.3f MFLOP/event)", f->gflops, f->fpe / 1e6);
    if (P > 1) fprintf(txt, ", %.1f per rank", f->gflops_rank);
    if (r->sg_med > 0)
        fprintf(txt, " = %.0f%% of the sgemm peak\n", 100 * f->peak_share);
    else
        fprintf(txt, "\n");
    if (r->sg_med > 0)
        fprintf(txt, "sgemm:    %d^3, %d trials%s: %.1f GFLOP/s median [%.1f..%.1f]\n", o->sgemm_n,
                o->sgemm_trials, P > 1 ? " on every rank at once" : "", r->sg_med, r->sg_lo,
                r->sg_hi);
    if (r->sg_med > 0)
        fprintf(txt,
                "cpu time: %.0f events per CPU second%s = %.0f%% of the sgemm peak per CPU second "
                "(%.1f GFLOP/s; both robust to a loaded machine)\n",
                f->ev_cpu, P > 1 ? " (rank 0)" : "", 100 * f->peak_share_cpu, r->sg_cpu_med);
    fprintf(txt,
            "time:     forward %.1f%%, backward %.1f%%, waiting on allreduce %.2f%% (max over "
            "ranks %.2f%%), optimizer %.1f%% of step time\n",
            100 * r->sums[1] / P, 100 * r->sums[2] / P, 100 * f->comm_share, 100 * r->maxes[0],
            100 * r->sums[4] / P);
    if (o->dp) {
        const Stepper *ds = &bn->dp_stepper;
        const double dp_total = ds->t_forward + ds->t_backward + ds->t_norms + ds->t_clipsum +
                                ds->t_reduce + ds->t_update;
        fprintf(txt,
                "dp:       DP-SGD step (privacy.dp; %d lanes sampled, lane norms %s, sigma 1, "
                "clip 1): %.2f ms median [%.2f..%.2f] vs %.2f ms plain, ratio %.2fx; forward "
                "%.1f%%, backward %.1f%%, lane norms %.1f%%, clipped sum %.1f%%, rest %.1f%%%s\n",
                o->batch, o->dp_method == LANE_GRAD_EXPLICIT ? "explicit" : "ghost", f->dp_med,
                f->dp_lo, f->dp_hi, median(r->step_ms, o->windows), f->dp_ratio,
                100 * ds->t_forward / dp_total, 100 * ds->t_backward / dp_total,
                100 * ds->t_norms / dp_total, 100 * ds->t_clipsum / dp_total,
                100 * (ds->t_reduce + ds->t_update) / dp_total, P > 1 ? " (rank 0)" : "");
        fprintf(txt,
                "dp:       CPU time per step (rank 0, robust to a loaded machine): %.2f ms DP vs "
                "%.2f ms plain, ratio %.2fx\n",
                median(r->dp_cpu_ms, o->windows), median(r->cpu_ms, o->windows), f->dp_cpu_ratio);
    }
    fprintf(txt,
            "memory:   peak RSS %.1f MiB%s (%.1f MiB at start); needed %.1f MiB = params, "
            "grads, Adam m+v %.2f + activations %.2f + lane state %.2f + data %.2f: ratio %.2f\n",
            mib(f->rss), P > 1 ? " (max over ranks)" : "", mib(f->rss0), mib(f->need),
            mib(f->b_params), mib(f->b_act), mib(f->b_state), mib(f->b_data), f->rss / f->need);
}

static void bench_json(const Bench *bn, const BenchOptions *o, int P, const char *blas,
                       const BenchResult *r, const BenchFigures *f) {
    const char *ct = getenv("OPENBLAS_CORETYPE");
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    printf("{\"tool\":\"trainer bench\",\"hidden\":%d,\"layers\":%d,\"batch\":%d,\"seq\":%d,"
           "\"types\":%d,\"emb\":%d,\"ranks\":%d,\"launcher\":\"%s\",\"host\":\"%s\","
           "\"params\":%zu,\"steps_per_window\":%d,\"windows\":%d,\"window_s\":%.3f,"
           "\"events_per_s_med\":%.1f,\"events_per_s_min\":%.1f,\"events_per_s_max\":%.1f,"
           "\"step_ms_med\":%.3f,\"first_step_s\":%.4f,\"flops_per_event\":%.0f,"
           "\"flops_per_event_ours\":%.0f,\"gflops_med\":%.3f,\"gflops_per_rank_med\":%.3f,",
           o->hidden, o->layers, o->batch, o->window, o->types, o->emb, P, comm_launcher(), host,
           bn->m->n_params, r->steps_per_window, o->windows, o->window_s, f->ev_med, f->ev_lo,
           f->ev_hi, median(r->step_ms, o->windows), r->first_step_s, f->fpe,
           model_train_flops_per_event(&bn->shape), f->gflops, f->gflops_rank);
    printf("\"sgemm_n\":%d,\"sgemm_trials\":%d,\"sgemm_gflops_med\":%.3f,"
           "\"sgemm_gflops_min\":%.3f,\"sgemm_gflops_max\":%.3f,\"peak_share\":%.4f,"
           "\"comm_share\":%.5f,\"comm_share_max\":%.5f,\"forward_share\":%.4f,"
           "\"backward_share\":%.4f,\"finish_share\":%.4f,\"optim_share\":%.4f,"
           "\"peak_rss_mib\":%.2f,\"peak_rss_mib_sum\":%.2f,\"start_rss_mib\":%.2f,"
           "\"need_mib\":%.3f,\"need_params_grads_adam_mib\":%.3f,\"need_activations_mib\":%.3f,"
           "\"need_lane_state_mib\":%.3f,\"need_data_mib\":%.3f,\"rss_ratio\":%.3f,",
           o->sgemm_n, o->sgemm_trials, r->sg_med, r->sg_lo, r->sg_hi, f->peak_share,
           f->comm_share, r->maxes[0], r->sums[1] / P, r->sums[2] / P, r->sums[3] / P,
           r->sums[4] / P, mib(f->rss), mib(r->sums[5]), mib(f->rss0), mib(f->need),
           mib(f->b_params), mib(f->b_act), mib(f->b_state), mib(f->b_data), f->rss / f->need);
    printf("\"events_per_cpu_s\":%.1f,\"sgemm_gflops_cpu_med\":%.3f,\"peak_share_cpu\":%.4f,",
           f->ev_cpu, r->sg_cpu_med, f->peak_share_cpu);
    printf("\"head\":\"%s\",", bn->m->head_tiled ? "tiled" : "untiled");
    printf("\"isa\":\"%s\",\"isa_detected\":\"%s\",\"isa_env\":\"%s\",", kernels()->name,
           cpu_isa_name(cpu_isa_detected()),
           getenv("LSTM_TRAINER_ISA") ? getenv("LSTM_TRAINER_ISA") : "<unset>");
    printf("\"final_loss\":%.5f,\"blas\":\"%s\",\"openblas_core\":\"%s\","
           "\"openblas_threads\":%d,\"openblas_coretype_env\":\"%s\","
           "\"time_head\":\"lognormal (2 outputs); torch: MSE (1 output)\","
           "\"dp\":%d,\"dp_lane_norms\":\"%s\",\"dp_step_ms_med\":%.3f,\"dp_ratio\":%.4f,"
           "\"dp_cpu_ratio\":%.4f}\n",
           bn->last_loss, blas, openblas_get_corename(), openblas_get_num_threads(),
           ct ? ct : "<unset>", o->dp, o->dp_method == LANE_GRAD_EXPLICIT ? "explicit" : "ghost",
           f->dp_med, f->dp_ratio, f->dp_cpu_ratio);
}

int cmd_bench(int argc, char **argv) {
    BenchOptions o;
    parse_options(argc, argv, &o);
    comm_init(&argc, &argv);
    const int rank = comm_rank(), P = comm_size();
    comm_placement_check(); // warns of ranks bound to shared CPUs
    const char *blas = model_blas_setup();
    const double rss_start = (double)peak_rss_bytes();
    Bench bn;
    bench_setup(&bn, &o, rank, P);
    BenchResult r;
    memset(&r, 0, sizeof r);
    r.steps_per_window = bench_warmup(&bn, &o, &r.first_step_s);
    bench_time(&bn, &o, P, rss_start, &r);
    bench_sgemm(&o, P, &r);
    if (rank == 0) {
        BenchFigures f = bench_figures(&bn, &o, P, &r);
        bench_print(o.json ? stderr : stdout, &bn, &o, P, blas, &r, &f); // stdout: the JSON
        if (o.json) bench_json(&bn, &o, P, blas, &r, &f);
        fflush(stdout);
        fflush(stderr);
    }
    bench_free(&bn, &o);
    comm_finalize();
    return EXIT_OK;
}
