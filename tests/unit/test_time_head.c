// test_time_head.c: model.time_mixture 1 (the default) is the log-normal time head that came
// before the mixture, bit for bit (float build, as training runs it).
//
// old_head_loss_row below is head_loss_row as it was before model.time_mixture existed
// (git show 9a52589:trainer/nn/model.c), verbatim but for its name. Over many random rows,
// targets and loss weights, the current head_loss_row with time_mix 0 and 1 must give the
// same bits: every LossSums field and every entry of d loss / d y. (That whole training runs
// are bitwise unchanged was also checked against the previous binary with ckpt_compare:
// README "Real logs: results".)
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "hash.h"
#include "lstm_cell.h"
#include "mathfn.h"
#include "model.h"

static void old_head_loss_row(const ModelShape *s, const LossConfig *lc, double log_std,
                              const real *y, real *e, int want_grad, int tgt, real loggap, real eng,
                              LossSums *sums) {
    const int K = s->n_actions;
    // Next action: softmax cross-entropy.
    double inv_sum;
    const double logz = softmax_row(y, e, K, &inv_sum);
    const double nll_a = logz - (double)y[tgt];
    int rank = 0; // how many logits beat the target's (ties count against it)
    for (int k = 0; k < K; k++) rank += (k != tgt && y[k] >= y[tgt]);
    // Next gap: log(gap + delta) ~ Normal(mu, sigma), predicted in normalised units:
    // u = (loggap - mean) / std, y_mu, y_ls = log(sigma / std). NLL is a density per time unit.
    const double u = ((double)loggap - lc->loggap_mean) / lc->loggap_std;
    // (exp_r: these run for every scored event; float precision is ample here.)
    const double ymu = y[K], yls = y[K + 1], inv_var = (double)exp_r((real)(-2.0 * yls));
    const double diff = u - ymu;
    double nll_t =
        (double)loggap + log_std + yls + 0.5 * diff * diff * inv_var + 0.9189385332046727;
    double gap = (double)exp_r(loggap) - lc->gap_offset;
    double pred = (double)exp_r((real)(lc->loggap_mean + lc->loggap_std * ymu)) - lc->gap_offset;
    pred = pred > 0 ? pred : 0;
    double se_e = 0;
    if (s->engagement) {
        double d = (double)y[K + 2] - (double)eng;
        se_e = 0.5 * d * d;
    }
    if (sums) {
        sums->n_targets += 1;
        sums->action_nll += nll_a;
        sums->time_nll += nll_t;
        sums->eng_se += se_e;
        sums->loss += lc->w_action * nll_a + lc->w_time * nll_t + lc->w_eng * se_e;
        sums->top1 += rank == 0;
        sums->topk += rank < lc->top_k;
        sums->gap_abs_err += fabs(pred - gap);
        sums->gap_sq_err += (pred - gap) * (pred - gap);
    }
    if (want_grad) {
        const real scale = (real)(lc->w_action * inv_sum);
        for (int k = 0; k < K; k++) e[k] *= scale; // w * softmax
        e[tgt] -= (real)lc->w_action;
        e[K] = (real)(lc->w_time * -diff * inv_var);
        e[K + 1] = (real)(lc->w_time * (1.0 - diff * diff * inv_var));
        if (s->engagement) e[K + 2] = (real)(lc->w_eng * ((double)y[K + 2] - (double)eng));
    }
}

static int same_bits(const void *a, const void *b, size_t n) {
    return memcmp(a, b, n) == 0;
}

int main(void) {
    int rows = 0, differ = 0;
    Rng r = rng_make(3, 4);
    for (int c = 0; c < 4000; c++) {
        const int E = c & 1, K = 2 + (int)rng_below(&r, 30);
        ModelShape s0 = {.n_actions = K, .engagement = E}, s1 = s0;
        s1.time_mix = c % 3 == 0 ? 0 : 1;
        LossConfig lc = {.w_action = rng_uniform(&r) * 2,
                         .w_time = rng_uniform(&r) * 2,
                         .w_eng = rng_uniform(&r),
                         .loggap_mean = 4 * rng_normal(&r),
                         .loggap_std = 0.2 + 2 * rng_uniform(&r),
                         .gap_offset = 1e-3,
                         .top_k = 1 + (int)rng_below(&r, 5)};
        const double log_std = log(lc.loggap_std);
        real y[40], e0[40], e1[40];
        for (int o = 0; o < model_outputs(&s0); o++) y[o] = (real)(2 * rng_normal(&r));
        const int tgt = (int)rng_below(&r, (uint64_t)K), want_grad = c % 5 != 0;
        const real loggap = (real)(lc.loggap_mean + lc.loggap_std * 1.5 * rng_normal(&r));
        const real eng = (real)rng_normal(&r);
        LossSums a, b;
        memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
        memset(e0, 0, sizeof e0), memset(e1, 0, sizeof e1);
        old_head_loss_row(&s0, &lc, log_std, y, e0, want_grad, tgt, loggap, eng, &a);
        head_loss_row(&s1, &lc, log_std, y, e1, want_grad, tgt, loggap, eng, &b);
        const int ok = same_bits(&a, &b, sizeof a) &&
                       same_bits(e0, e1, sizeof(real) * (size_t)model_outputs(&s0));
        differ += !ok, rows++;
        if (!ok && differ <= 3)
            printf("  row %d (K=%d E=%d): loss %.9g vs %.9g, abs err %.9g vs %.9g\n", c, K, E,
                   a.loss, b.loss, a.gap_abs_err, b.gap_abs_err);
    }
    printf("time_mixture 1 vs the previous head: %d rows, %d differ in any bit\n", rows, differ);
    CHECK(differ == 0, "%d of %d rows differ", differ, rows);
    return g_failures ? 1 : 0;
}
