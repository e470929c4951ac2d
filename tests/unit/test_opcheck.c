// test_opcheck.c: finite-difference checks of the model's pieces one op at a time (as ggml's
// test-backend-ops does), besides the whole-model check of test_gradcheck.c: when that one
// fails, these say which op is wrong.
//
//   lstm_cell_backward: dG (the pre-activation gradients of the four gates) and the cell
//     gradient into the previous step, for L = sum(wh * h) + sum(wc * c) with random wh, wc,
//     lanes that reset (keep = 0) and that carry, with and without the recurrent gradient.
//   head_loss_row: d loss / d y of one output row (action softmax CE, log-normal time NLL,
//     engagement squared error), for several targets and loss weights, with the single
//     log-normal and with mixtures of M log-normals (time_mix.h) as the time head; and its
//     top-1 / top-k counts, ties counting against the target (equal logits: not correct).
//   time_mix: a mixture with one component equals the single log-normal (NLL, mean, median);
//     its median has CDF 1/2 and its mean matches numerical integration; NLL, gradient, mean
//     and median agree with the float64 Python reference (tools/make_time_mix_reference.py,
//     fixture argv[1]) to 1e-9 relative.
// Double precision (nn_f64): central differences with h = 1e-6 are good to ~1e-9. Prints the
// normalised error |a - n| / (|a| + |n|) (norms over the checked vector); fails above 1e-7.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "lstm_cell.h"
#include "model.h"
#include "time_mix.h"

enum { B = 3, H = 5 };
#define TOL 1e-7
#define STEP 1e-6

static double norm_err(const double *a, const double *n, int len) {
    double d = 0, sa = 0, sn = 0;
    for (int i = 0; i < len; i++) {
        d += (a[i] - n[i]) * (a[i] - n[i]);
        sa += a[i] * a[i], sn += n[i] * n[i];
    }
    return sqrt(d) / (sqrt(sa) + sqrt(sn) + 1e-300);
}

typedef struct {
    real pre[B * 4 * H], bias[4 * H], cprev[B * H], wh[B * H], wc[B * H], dr[B * H];
    uint8_t keep[B], keep_next[B];
    int with_rec;
} CellCase;

// L of the cell's outputs for pre-activations pre and previous cell state cprev.
static double cell_loss(const CellCase *k, const real *pre, const real *cprev) {
    real g[B * 4 * H], c[B * H], tc[B * H], h[B * H];
    memcpy(g, pre, sizeof g);
    lstm_cell_forward(B, H, g, k->bias, cprev, k->keep, k->keep_next, c, tc, h, NULL);
    double L = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) {
            int i = b * H + j;
            double wh = k->wh[i] + (k->with_rec && k->keep_next[b] ? k->dr[i] : 0);
            L += wh * h[i] + k->wc[i] * c[i];
        }
    return L;
}

static void check_cell(int with_rec) {
    CellCase k;
    memset(&k, 0, sizeof k);
    Rng r = rng_make(5, (uint64_t)with_rec);
    for (int i = 0; i < B * 4 * H; i++) k.pre[i] = (real)(1.5 * rng_normal(&r));
    for (int i = 0; i < 4 * H; i++) k.bias[i] = (real)(0.5 * rng_normal(&r));
    for (int i = 0; i < B * H; i++) {
        k.cprev[i] = (real)rng_normal(&r), k.wh[i] = (real)rng_normal(&r);
        k.wc[i] = (real)rng_normal(&r), k.dr[i] = (real)rng_normal(&r);
    }
    const uint8_t keep[B] = {1, 0, 1}, keep_next[B] = {1, 1, 0};
    memcpy(k.keep, keep, B), memcpy(k.keep_next, keep_next, B);
    k.with_rec = with_rec;
    // Analytic: forward, then backward with dh = wh, dh_rec = dr, dc = wc (from step t+1).
    real g[B * 4 * H], c[B * H], tc[B * H], h[B * H], dc[B * H];
    memcpy(g, k.pre, sizeof g);
    lstm_cell_forward(B, H, g, k.bias, k.cprev, k.keep, k.keep_next, c, tc, h, NULL);
    memcpy(dc, k.wc, sizeof dc);
    lstm_cell_backward(B, H, g, k.cprev, k.keep, tc, k.wh, with_rec ? k.dr : NULL, k.keep_next,
                       dc);
    double a_g[B * 4 * H], n_g[B * 4 * H], a_c[B * H], n_c[B * H];
    for (int i = 0; i < B * 4 * H; i++) {
        real p[B * 4 * H];
        memcpy(p, k.pre, sizeof p);
        p[i] += STEP;
        double up = cell_loss(&k, p, k.cprev);
        p[i] -= 2 * STEP;
        n_g[i] = (up - cell_loss(&k, p, k.cprev)) / (2 * STEP), a_g[i] = g[i];
    }
    for (int i = 0; i < B * H; i++) {
        real cp[B * H];
        memcpy(cp, k.cprev, sizeof cp);
        cp[i] += STEP;
        double up = cell_loss(&k, k.pre, cp);
        cp[i] -= 2 * STEP;
        n_c[i] = (up - cell_loss(&k, k.pre, cp)) / (2 * STEP), a_c[i] = dc[i];
    }
    double eg = norm_err(a_g, n_g, B * 4 * H), ec = norm_err(a_c, n_c, B * H);
    printf("  lstm_cell_backward%s: dG %.2e, dc_prev %.2e\n", with_rec ? " (+ recurrent dh)" : "",
           eg, ec);
    CHECK(eg < TOL, "cell dG normalised error %.3e", eg);
    CHECK(ec < TOL, "cell dc_prev normalised error %.3e", ec);
    // A reset lane passes no gradient into the previous step's cell.
    for (int j = 0; j < H; j++) CHECK(dc[1 * H + j] == 0, "reset lane has dc_prev %g", dc[H + j]);
}

static double row_loss(const ModelShape *s, const LossConfig *lc, const real *y, int tgt,
                       real loggap, real eng) {
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    real e[64];
    head_loss_row(s, lc, log(lc->loggap_std), y, e, 0, tgt, loggap, eng, &sums);
    return sums.loss;
}

static void check_head(int engagement, int tgt, double w_a, double w_t, double w_e, int M) {
    ModelShape s = {.n_actions = 6, .engagement = engagement, .time_mix = M};
    const int O = model_outputs(&s);
    LossConfig lc = {.w_action = w_a, .w_time = w_t, .w_eng = w_e, .loggap_mean = 2.5,
                     .loggap_std = 1.7, .gap_offset = 1e-3, .top_k = 3};
    Rng r = rng_make(11, (uint64_t)(tgt * 2 + engagement + 100 * M));
    real y[64], e[64];
    for (int o = 0; o < O; o++) y[o] = (real)rng_normal(&r);
    const real loggap = (real)(2.5 + 1.7 * rng_normal(&r)), eng = (real)rng_normal(&r);
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    head_loss_row(&s, &lc, log(lc.loggap_std), y, e, 1, tgt, loggap, eng, &sums);
    double a[64], n[64];
    for (int o = 0; o < O; o++) {
        real yp[64];
        memcpy(yp, y, sizeof yp);
        yp[o] += STEP;
        double up = row_loss(&s, &lc, yp, tgt, loggap, eng);
        yp[o] -= 2 * STEP;
        n[o] = (up - row_loss(&s, &lc, yp, tgt, loggap, eng)) / (2 * STEP), a[o] = e[o];
    }
    double err = norm_err(a, n, O);
    printf("  head_loss_row (K=6, M=%d, E=%d, target %d, w %.1f/%.1f/%.1f): dy %.2e\n", M,
           engagement, tgt, w_a, w_t, w_e, err);
    CHECK(err < TOL, "head dy normalised error %.3e", err);
    CHECK(fabs(sums.loss - row_loss(&s, &lc, y, tgt, loggap, eng)) < 1e-12,
          "loss with and without want_grad differ");
}

// top1/topk of one row whose action logits are y4 (K = 4, top_k = 2).
static void check_rank(const real *y4, int tgt, double want1, double wantk, const char *what) {
    ModelShape s = {.n_actions = 4};
    LossConfig lc = {.w_action = 1, .w_time = 1, .loggap_mean = 0, .loggap_std = 1, .top_k = 2};
    real y[8] = {0}, e[8];
    memcpy(y, y4, sizeof(real) * 4);
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    head_loss_row(&s, &lc, 0, y, e, 0, tgt, 0, 0, &sums);
    printf("  top-1/top-2 (%s): %.0f/%.0f\n", what, sums.top1, sums.topk);
    CHECK(sums.top1 == want1 && sums.topk == wantk, "%s: top1 %g top2 %g, want %g %g", what,
          sums.top1, sums.topk, want1, wantk);
}

// M = 1 through time_mix.h: the same NLL, mean and median as the single log-normal.
static void check_mix_one(void) {
    const real y1[3] = {0.7, -0.4, 0.3}; // (logit, mu, ls) and the single head's (mu, ls)
    const double u = 0.25, s = exp(0.3), z = (u + 0.4) / s, mean = 2.5, sd = 1.7, d = 1e-3;
    double post[1];
    const double nll = time_mix_nll(1, y1, u, post);
    const double want = 0.3 + 0.5 * z * z + 0.9189385332046727;
    const double med = exp(mean - sd * 0.4) - d, avg = exp(mean - sd * 0.4 + 0.5 * sd * sd * s * s) - d;
    const double gm = time_mix_median_gap(1, y1, mean, sd, d), ga = time_mix_mean_gap(1, y1, mean, sd, d);
    printf("  time_mix M=1 vs log-normal: nll %.2e, median %.2e, mean %.2e\n", fabs(nll - want),
           fabs(gm - med) / med, fabs(ga - avg) / avg);
    CHECK(fabs(nll - want) < 1e-12 && fabs(post[0] - 1) < 1e-12, "M=1 nll %.17g vs %.17g", nll, want);
    CHECK(fabs(gm - med) < 1e-9 * med, "M=1 median %.17g vs %.17g", gm, med);
    CHECK(fabs(ga - avg) < 1e-12 * avg, "M=1 mean %.17g vs %.17g", ga, avg);
}

// M = 3: F(median) = 1/2, and the closed-form mean against the trapezoid rule over u.
static void check_mix_points(void) {
    const real y[9] = {0.2, -1.0, 0.5, -1.2, 0.3, 1.4, -0.6, -0.1, -1.1};
    const double mean = -3.0, sd = 1.3, d = 1e-4;
    const double um = time_mix_quantile(3, y, 0.5), F = time_mix_cdf(3, y, um);
    double integral = 0, post[3];
    const double du = 1e-4;
    for (double u = -15; u < 15; u += du) // E[exp(mean + sd u)] = int exp(..) p(u) du
        integral += exp(mean + sd * u - time_mix_nll(3, y, u, post)) * du;
    const double ga = time_mix_mean_gap(3, y, mean, sd, d);
    const double gm = time_mix_median_gap(3, y, mean, sd, d);
    printf("  time_mix M=3: |F(median) - 1/2| %.2e, mean vs quadrature %.2e\n", fabs(F - 0.5),
           fabs(ga - (integral - d)) / ga);
    CHECK(fabs(F - 0.5) < 1e-10, "F(median) = %.17g", F);
    CHECK(fabs(ga - (integral - d)) < 1e-6 * ga, "mean %.17g vs quadrature %.17g", ga, integral - d);
    CHECK(fabs(gm - (exp(mean + sd * um) - d)) < 1e-12, "median gap");
}

static double rel(double a, double b) {
    return fabs(a - b) / (fabs(a) + fabs(b) + 1e-300);
}

// Every case of the Python reference: NLL, d NLL / d y, mean and median gap.
static void check_mix_reference(const char *path) {
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[256];
    int cases = 0, M;
    double worst = 0, u, mean, sd, d;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "case %d %lf %lf %lf %lf", &M, &u, &mean, &sd, &d) != 5) continue;
        real y[3 * TIME_MIX_MAX], dy[3 * TIME_MIX_MAX];
        double want[3], g, post[TIME_MIX_MAX];
        for (int i = 0; i < 3 * M; i++) CHECK(fscanf(f, "%lf", &y[i]) == 1, "fixture y");
        CHECK(fscanf(f, "%lf %lf %lf", &want[0], &want[1], &want[2]) == 3, "fixture values");
        const double nll = time_mix_nll(M, y, u, post);
        time_mix_backward(M, y, u, post, 1.0, dy);
        worst = fmax(worst, rel(nll, want[0]));
        worst = fmax(worst, rel(time_mix_mean_gap(M, y, mean, sd, d), want[1]));
        worst = fmax(worst, rel(time_mix_median_gap(M, y, mean, sd, d), want[2]));
        for (int i = 0; i < 3 * M; i++) {
            CHECK(fscanf(f, "%lf", &g) == 1, "fixture gradient");
            worst = fmax(worst, fabs(dy[i] - g) / (fabs(g) + 1e-6));
        }
        cases++;
    }
    fclose(f);
    printf("  time_mix vs the float64 Python reference: %d cases, worst relative error %.2e\n",
           cases, worst);
    CHECK(cases >= 10, "only %d cases in %s", cases, path);
    CHECK(worst < 1e-9, "time_mix differs from the reference by %.3e", worst);
}

int main(int argc, char **argv) {
    printf("per-op finite-difference checks (double, h=%g, tolerance %g)\n", STEP, TOL);
    check_cell(0);
    check_cell(1);
    check_head(0, 0, 1, 1, 0, 1);
    check_head(1, 5, 1, 1, 1, 1);
    check_head(1, 2, 0.3, 2.0, 0.5, 1);
    check_head(0, 3, 1, 1, 0, 2);
    check_head(1, 1, 0.5, 1.5, 0.5, 5);
    check_rank((const real[]){0.1, 0.9, 0.2, 0.3}, 1, 1, 1, "target highest");
    check_rank((const real[]){0.1, 0.5, 0.9, 0.3}, 1, 0, 1, "target second");
    check_rank((const real[]){0.1, 0.9, 0.9, 0.3}, 1, 0, 1, "target tied first");
    check_rank((const real[]){0.5, 0.5, 0.5, 0.5}, 2, 0, 0, "all tied");
    check_mix_one();
    check_mix_points();
    check_mix_reference(argc > 1 ? argv[1] : "tests/fixtures/time_mix_reference.txt");
    if (g_failures) printf("%d check(s) failed\n", g_failures);
    else printf("all per-op checks passed\n");
    return g_failures ? 1 : 0;
}
