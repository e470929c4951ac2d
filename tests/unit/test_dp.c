// test_dp.c: user-level DP-SGD pieces that are pure functions, and the DP step on one rank.
//
//   - the RDP accountant (run/dp_accountant.c) against tests/fixtures/dp_accountant.txt,
//     written by the independent float64 Python reference tests/tools/make_dp_reference.py: RDP at
//     integer and fractional orders and epsilon by both conversions, relative error < 1e-9;
//     and against TF Privacy's published MNIST values (classic conversion, 2 decimals);
//   - sigma solved from a target epsilon meets it and is the smallest that does (to 1e-3);
//     the default delta (1/users rounded down to a power of ten);
//   - the noise: a pure function of (seed, step, i), mean 0 and variance 1; Poisson sampling
//     draws each user with rate q;
//   - the clipping bound on the DP step of run/step.c with an adversarial user (targets that
//     give a gradient 10^4 times the bound): every user's contribution to the gradient sum is
//     at most C, the adversary's exactly C; with noise on and no user sampled, the update's
//     gradient is exactly the noise sigma C N(0, 1) of dp_noise_at;
//   - group suppression (privacy.min_group_size), consent values, the user-hash set.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "comm.h"
#include "dp.h"
#include "dp_accountant.h"
#include "erasure.h"
#include "groupstat.h"
#include "hash.h"
#include "step.h"

#include "check.h"

static double rel(double a, double b) {
    return fabs(a - b) / (fabs(b) > 1e-300 ? fabs(b) : 1);
}

static void test_accountant(const char *fixture) {
    FILE *f = fopen(fixture, "r");
    CHECK(f != NULL, "cannot open %s", fixture);
    if (!f) return;
    char line[1024];
    int cases = 0, published = 0;
    while (fgets(line, sizeof line, f)) {
        double q, s, delta, ec, eb, r2, r25, r8, r32, pub;
        long long steps;
        if (sscanf(line, "case %lf %lf %lld %lf %lf %lf %lf %lf %lf %lf", &q, &s, &steps, &delta,
                   &ec, &eb, &r2, &r25, &r8, &r32) == 10) {
            cases++;
            const double want[4] = {r2, r25, r8, r32}, orders[4] = {2, 2.5, 8, 32};
            for (int k = 0; k < 4; k++) {
                double got = (double)steps * dp_rdp_order(q, s, orders[k]);
                CHECK(rel(got, want[k]) < 1e-9, "q=%g sigma=%g: RDP at order %g is %.12g, the "
                      "reference %.12g", q, s, orders[k], got, want[k]);
            }
            double gc = dp_epsilon_after(q, s, steps, delta, DP_CONVERT_CLASSIC);
            double gb = dp_epsilon_after(q, s, steps, delta, DP_CONVERT_BALLE);
            CHECK(rel(gc, ec) < 1e-9, "q=%g sigma=%g steps=%lld: classic epsilon %.12g, reference "
                  "%.12g", q, s, steps, gc, ec);
            CHECK(rel(gb, eb) < 1e-9, "q=%g sigma=%g steps=%lld: Balle epsilon %.12g, reference "
                  "%.12g", q, s, steps, gb, eb);
            CHECK(gb < gc, "the Balle et al. conversion must be tighter (%g vs %g)", gb, gc);
        } else if (sscanf(line, "published %lf %lf %lld %lf %lf", &q, &s, &steps, &delta, &pub) ==
                   5) {
            published++;
            double gc = dp_epsilon_after(q, s, steps, delta, DP_CONVERT_CLASSIC);
            // Two decimals as published, plus one unit in the last place (9.753 vs 9.74).
            CHECK(fabs(gc - pub) <= 0.015, "TF Privacy MNIST sigma=%g, %lld steps: epsilon %.4f, "
                  "published %.2f", s, steps, gc, pub);
            printf("  TF Privacy MNIST sigma=%.2f %5lld steps: classic %.4f (published %.2f), "
                   "Balle %.4f\n", s, steps, gc, pub,
                   dp_epsilon_after(q, s, steps, delta, DP_CONVERT_BALLE));
        }
    }
    fclose(f);
    CHECK(cases >= 8 && published == 3, "fixture: %d cases, %d published values", cases, published);
    printf("accountant: %d reference cases, %d published values\n", cases, published);
}

static void test_solve(void) {
    const double q = 0.01, delta = 1e-6;
    const double targets[] = {0.5, 1, 2, 4, 8};
    for (int conv = 0; conv < 2; conv++)
        for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
            double s = dp_solve_sigma(q, 2000, delta, targets[k], (DpConversion)conv);
            CHECK(s > 0, "no sigma for epsilon %g", targets[k]);
            double e = dp_epsilon_after(q, s, 2000, delta, (DpConversion)conv);
            double e_less = dp_epsilon_after(q, s * 0.999, 2000, delta, (DpConversion)conv);
            CHECK(e <= targets[k] && e_less > targets[k],
                  "sigma %g for epsilon %g: gives %g, %g with 0.1%% less noise", s, targets[k], e,
                  e_less);
        }
    CHECK(dp_solve_sigma(q, 2000, delta, 0.01, DP_CONVERT_BALLE) < 0,
          "epsilon 0.01 is below what the orders can show: must be impossible");
    CHECK(dp_default_delta(100000) == 1e-5 && dp_default_delta(120000) == 1e-6 &&
              dp_default_delta(1600) == 1e-4 && dp_default_delta(5) == 0.1,
          "default delta: %g %g %g %g", dp_default_delta(100000), dp_default_delta(120000),
          dp_default_delta(1600), dp_default_delta(5));
}

static void test_noise_and_sampling(void) {
    double s1 = 0, s2 = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = dp_noise_at(7, 12, (uint64_t)i);
        s1 += z, s2 += z * z;
    }
    double mean = s1 / n, var = s2 / n - mean * mean;
    CHECK(fabs(mean) < 0.01 && fabs(var - 1) < 0.02, "noise mean %g, variance %g", mean, var);
    CHECK(dp_noise_at(7, 12, 5) == dp_noise_at(7, 12, 5) &&
              dp_noise_at(7, 12, 5) != dp_noise_at(7, 13, 5) &&
              dp_noise_at(7, 12, 5) != dp_noise_at(8, 12, 5),
          "noise must be a function of (seed, step, i)");
    int hits = 0;
    for (uint32_t u = 0; u < 100000; u++) hits += dp_sampled(3, 9, (int)(u % 16), u, 0.02);
    CHECK(fabs((double)hits - 2000) < 4 * sqrt(2000 * 0.98), "Poisson sampling: %d of 100000 at q=0.02",
          hits);
    printf("noise: mean %.4f variance %.4f; sampling: %d of 100000 at q = 0.02\n", mean, var, hits);
}

// ---------------------------------------------------------------- the DP step, one rank

enum { B = 4, T = 6, K = 5 };

typedef struct {
    int32_t action[T * B], tgt[T * B];
    real dense[T * B], loggap[T * B], eng[T * B];
    uint8_t keep[T * B];
    uint64_t lane_id[B];
    Batch view;
    int only; // -1: all lanes; else a batch of that lane alone; -2: no lanes
} Source;

static const Batch *one_lane(Source *s, int lane);

static const Batch *source_next(void *ctx, int64_t step, int group, int chunk) {
    Source *s = ctx;
    if (s->only == -3) return chunk < B ? one_lane(s, chunk) : NULL; // a chunk per lane
    if (chunk > 0 || s->only == -2) return NULL;
    if (s->only < 0) {
        s->view = (Batch){.lanes = B, .window = T, .action = s->action, .dense = s->dense,
                          .keep = s->keep, .tgt_action = s->tgt, .tgt_loggap = s->loggap,
                          .tgt_eng = s->eng, .lane_id = s->lane_id};
        return &s->view;
    }
    return one_lane(s, s->only);
}

static const Batch *one_lane(Source *s, int lane) {
    static int32_t a1[T], t1[T];
    static real d1[T], g1[T], e1[T];
    static uint8_t k1[T];
    static uint64_t id1[1];
    for (int t = 0; t < T; t++) {
        int r = t * B + lane;
        a1[t] = s->action[r], t1[t] = s->tgt[r], d1[t] = s->dense[r], g1[t] = s->loggap[r];
        e1[t] = s->eng[r], k1[t] = s->keep[r];
    }
    id1[0] = s->lane_id[lane];
    s->view = (Batch){.lanes = 1, .window = T, .action = a1, .dense = d1, .keep = k1,
                      .tgt_action = t1, .tgt_loggap = g1, .tgt_eng = e1, .lane_id = id1};
    return &s->view;
}

static void test_step_clipping(void) {
    ModelShape shape = {.n_actions = K, .action_embed = 3, .n_dense = 1, .hidden = 6,
                        .layers = 1, .engagement = 0, .max_lanes = B, .window = T};
    Model *m = model_create(&shape);
    model_init_params(m, 5, 0);
    OptimConfig oc = {.kind = OPT_SGD, .schedule = SCHED_CONSTANT, .lr = 0, .momentum = 0};
    Optimizer opt;
    optim_init(&opt, &oc, &shape, m->n_params);
    LossConfig lc = {.w_action = 1, .w_time = 1, .loggap_mean = 0, .loggap_std = 1,
                     .gap_offset = 1e-3, .top_k = 2};
    Source src;
    memset(&src, 0, sizeof src);
    Rng r = rng_make(17, 1);
    for (int i = 0; i < T * B; i++) {
        src.action[i] = (int32_t)rng_below(&r, K), src.tgt[i] = (int32_t)rng_below(&r, K);
        src.dense[i] = (real)rng_normal(&r), src.loggap[i] = (real)(rng_normal(&r) + 1);
        src.keep[i] = i >= B;
    }
    for (int l = 0; l < B; l++) src.lane_id[l] = 10 + (uint64_t)l;
    // Lane 2 is the adversary: log-gap targets of 10^4 make its time loss gradient huge.
    for (int t = 0; t < T; t++) src.loggap[t * B + 2] = (real)1e4;
    const double C = 0.5;
    Stepper st;
    stepper_init(&st, m, &opt, &lc, 0, 99, 4, B);
    DpConfig dpc = {.clip = C, .sigma = 0, .expected_lanes = B, .method = LANE_GRAD_GHOST,
                    .next = source_next, .ctx = &src};
    stepper_dp(&st, &dpc);
    // Unclipped norm of the adversary's mean-loss gradient (a clip far above it).
    st.dpc.clip = 1e30;
    src.only = 2;
    step_run(&st, 0, NULL, NULL, NULL, NULL);
    const double adv = sqrt(sum_squares(m->grads, m->n_params));
    CHECK(adv > 1e3 * C, "the adversary's gradient norm is only %g", adv);
    st.dpc.clip = C;
    for (int lane = 0; lane < B; lane++) {
        src.only = lane;
        StepResult res = step_run(&st, 1, NULL, NULL, NULL, NULL);
        double norm = sqrt(sum_squares(m->grads, m->n_params));
        CHECK(!res.skipped && norm <= C * (1 + 1e-5), "lane %d contributes %.9g > C = %g", lane,
              norm, C);
        if (lane == 2)
            CHECK(fabs(norm - C) < 1e-5 * C, "the adversary contributes %.9g, not C", norm);
        printf("  lane %d: contribution %.6g (C = %g)%s\n", lane, norm, C,
               lane == 2 ? "  <- adversary" : "");
    }
    src.only = -1;
    StepResult all = step_run(&st, 1, NULL, NULL, NULL, NULL);
    CHECK(!all.skipped && all.h.dp_lanes == B && all.h.dp_clipped >= 1,
          "all lanes: %g sampled, %g clipped", all.h.dp_lanes, all.h.dp_clipped);
    // The same lanes as B chunks of one lane (more sampled users than a chunk holds): the
    // same clipped sum up to float rounding.
    real *one = malloc(sizeof(real) * m->n_params);
    memcpy(one, m->grads, sizeof(real) * m->n_params);
    src.only = -3;
    StepResult chunks = step_run(&st, 1, NULL, NULL, NULL, NULL);
    double d2 = 0, n2 = 0;
    for (size_t i = 0; i < m->n_params; i++)
        d2 += (m->grads[i] - one[i]) * (m->grads[i] - one[i]), n2 += (double)one[i] * one[i];
    CHECK(!chunks.skipped && chunks.h.dp_lanes == B && sqrt(d2) <= 1e-5 * sqrt(n2),
          "%d chunks of one lane vs one chunk: relative difference %g", B, sqrt(d2 / n2));
    free(one);
    // Noise on, nobody sampled: the gradient sum is the noise and nothing else.
    st.dpc.sigma = 1.3;
    src.only = -2;
    StepResult none = step_run(&st, 7, NULL, NULL, NULL, NULL);
    double worst = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        double want = 1.3 * C * dp_noise_at(99, 7, i);
        worst = fmax(worst, fabs(m->grads[i] - want));
    }
    CHECK(!none.skipped && worst < 1e-6, "noise-only step: gradient differs from the noise by %g",
          worst);
    printf("DP step: adversary's unclipped norm %.4g, clipped to %g; noise-only step matches "
           "dp_noise_at (worst %.2g)\n", adv, C, worst);
    stepper_free(&st);
    optim_free(&opt);
    model_free(m);
}

static void test_groups_and_consent(void) {
    GroupGuard g;
    group_guard_init(&g, 10);
    char a[64], b[64], c[64];
    int shown9 = group_shown(&g, 9), shown10 = group_shown(&g, 10), shown0 = group_shown(&g, 0);
    CHECK(!shown9 && shown10 && !shown0 && g.suppressed == 2 && g.groups == 3,
          "min_group_size 10: shown(9)=%d shown(10)=%d shown(0)=%d, %lld of %lld suppressed",
          shown9, shown10, shown0, (long long)g.suppressed, (long long)g.groups);
    CHECK(strcmp(group_value(&g, 9, 1.5, "%.2f", a, sizeof a), "suppressed (< 10 users)") == 0 &&
              strcmp(group_value(&g, 12, 1.5, "%.2f", b, sizeof b), "1.50") == 0,
          "group_value: '%s', '%s'", a, b);
    CHECK(strcmp(group_count(&g, 3, a, sizeof a), "<10") == 0 &&
              strcmp(group_count(&g, 30, b, sizeof b), "30") == 0 &&
              strcmp(group_json(&g, 3, 2.0, c, sizeof c), "null") == 0,
          "group_count/json: '%s' '%s' '%s'", a, b, c);
    const char *yes[] = {"true", "TRUE", "1", "yes", "Y", "on"};
    const char *no[] = {"false", "0", "No", "n", "off", ""};
    for (size_t i = 0; i < 6; i++)
        CHECK(consent_value(yes[i]) == 1 && consent_value(no[i]) == 0, "consent '%s'/'%s'",
              yes[i], no[i]);
    CHECK(consent_value("maybe") == -1 && consent_value("2") == -1, "consent: bad values");
    U64Set set = {0};
    for (uint64_t i = 0; i < 5000; i++) u64set_add(&set, (i * 7919) % 3001);
    CHECK(set.n == 3001, "U64Set: %zu distinct of 3001", set.n);
    u64set_free(&set);
    // Membership-inference metrics on hand-counted cases.
    const double mem[] = {3, 4, 5}, non[] = {1, 2, 3};
    double auc = mia_auc(mem, 3, non, 3), tpr = mia_tpr_at_fpr(mem, 3, non, 3, 0.001);
    CHECK(fabs(auc - 8.5 / 9) < 1e-12 && fabs(tpr - 2.0 / 3) < 1e-12, "AUC %g (want %g), TPR %g",
          auc, 8.5 / 9, tpr);
    const double same[] = {1, 1, 1};
    CHECK(mia_auc(same, 3, same, 3) == 0.5 && mia_tpr_at_fpr(same, 3, same, 3, 0.001) == 0,
          "ties: AUC %g", mia_auc(same, 3, same, 3));
    double big_non[2000], big_mem[10];
    for (int i = 0; i < 2000; i++) big_non[i] = i;
    for (int i = 0; i < 10; i++) big_mem[i] = 1996.5 + 0.1 * i;
    // At 0.1% of 2000, 2 non-members (1998, 1999) may exceed the threshold, 1997: the members
    // 1997.1 .. 1997.4 do, 4 of 10.
    CHECK(fabs(mia_tpr_at_fpr(big_mem, 10, big_non, 2000, 0.001) - 0.4) < 1e-12,
          "TPR at 0.1%% FPR: %g", mia_tpr_at_fpr(big_mem, 10, big_non, 2000, 0.001));
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    model_blas_setup();
    test_accountant(argc > 1 ? argv[1] : "tests/fixtures/dp_accountant.txt");
    test_solve();
    test_noise_and_sampling();
    test_step_clipping();
    test_groups_and_consent();
    comm_finalize();
    if (g_failures) printf("%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
