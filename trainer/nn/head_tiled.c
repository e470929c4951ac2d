// head_tiled.c: see head_tiled.h. Shapes are (rows, cols), row-major.
#include "head_tiled.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "gemm.h"
#include "lstm_cell.h"
#include "util.h"

static int imin(int a, int b) { return a < b ? a : b; }

static void check_tiled(const Model *m) {
    if (!m->head_tiled || m->skip_param_grads || m->input_given || m->input_grad_only)
        fatal("model: the tiled head needs a model_create_head(s, 1) model with plain gradients");
}

// log(exp(a) + exp(b)), a may be -inf.
static double log_add(double a, double b) {
    if (a == -INFINITY) return b;
    const double mx = a > b ? a : b, mn = a > b ? b : a;
    return mx + log1p(exp(mn - mx));
}

// tile (nr, nk) = htop[r0..] (nr, H) W_head[k0..]^T (H, nk) + b_head[k0..].
static void logits_tile(const Model *m, const real *htop, int r0, int nr, int k0, int nk,
                        real *tile) {
    const int H = m->shape.hidden;
    for (int i = 0; i < nr; i++)
        memcpy(tile + (size_t)i * nk, m->p.b_head + k0, sizeof(real) * (size_t)nk);
    gemm(0, 1, nr, nk, H, 1, htop + (size_t)r0 * H, H, m->p.w_head + (size_t)k0 * H, H, 1, tile,
         nk);
}

// Whether rows [r0, r0 + nr) have a target.
static int any_target(const Batch *b, int r0, int nr) {
    for (int i = 0; i < nr; i++)
        if (b->tgt_action[r0 + i] >= 0) return 1;
    return 0;
}

// The time and engagement outputs: ytail (TB, Tt) = htop W_head[K..]^T + b_head[K..].
static void tail_forward(Model *m, int TB, const real *htop) {
    const int K = m->shape.n_actions, H = m->shape.hidden, Tt = model_outputs(&m->shape) - K;
    real *yt = m->act.ytail;
    for (int r = 0; r < TB; r++)
        memcpy(yt + (size_t)r * Tt, m->p.b_head + K, sizeof(real) * (size_t)Tt);
    gemm(0, 1, TB, Tt, H, 1, htop, H, m->p.w_head + (size_t)K * H, H, 1, yt, Tt);
}

// Per row with a target: logz = -inf, the target's logit (a dot product), rank 0.
static void rows_init(Model *m, const Batch *b, int TB, const real *htop) {
    const int K = m->shape.n_actions, H = m->shape.hidden;
    double *logz = m->act.logz, *ytgt = m->act.logz + TB;
    for (int r = 0; r < TB; r++) {
        const int tgt = b->tgt_action[r];
        m->act.head_rank[r] = 0, logz[r] = -INFINITY, ytgt[r] = 0;
        if (tgt < 0) continue;
        if (tgt >= K) fatal("model: target action %d out of range", tgt);
        const real *h = htop + (size_t)r * H, *w = m->p.w_head + (size_t)tgt * H;
        real d = 0;
        for (int j = 0; j < H; j++) d += h[j] * w[j];
        ytgt[r] = (double)(real)(m->p.b_head[tgt] + d);
    }
}

void head_tiled_forward(Model *m, const Batch *b, const real *htop, const LossConfig *lc,
                        LossSums *sums, int want_grad) {
    check_tiled(m);
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int K = s->n_actions, Tt = model_outputs(s) - K, TB = b->window * b->lanes;
    a->head_w_action = lc->w_action;
    tail_forward(m, TB, htop);
    if (want_grad) memset(a->dytail, 0, sizeof(real) * (size_t)TB * Tt);
    rows_init(m, b, TB, htop);
    double *logz = a->logz, *ytgt = a->logz + TB;
    // Column tiles outside: each W_head tile stays in cache while the rows pass.
    for (int k0 = 0; k0 < K; k0 += HEAD_TILE_COLS) {
        const int nk = imin(HEAD_TILE_COLS, K - k0);
        for (int r0 = 0; r0 < TB; r0 += HEAD_TILE_ROWS) {
            const int nr = imin(HEAD_TILE_ROWS, TB - r0);
            if (!any_target(b, r0, nr)) continue;
            logits_tile(m, htop, r0, nr, k0, nk, a->tile);
            for (int i = 0; i < nr; i++) {
                const int r = r0 + i, tgt = b->tgt_action[r];
                if (tgt < 0) continue;
                const real *row = a->tile + (size_t)i * nk, yt = (real)ytgt[r];
                double inv;
                logz[r] = log_add(logz[r], softmax_row(row, a->tile_e, nk, &inv));
                int n = 0; // logits >= the target's, the target itself excluded below
                for (int k = 0; k < nk; k++) n += row[k] >= yt;
                if (tgt >= k0 && tgt < k0 + nk) n -= row[tgt - k0] >= yt;
                a->head_rank[r] += n;
            }
        }
    }
    const double log_std = log(lc->loggap_std);
    for (int r = 0; r < TB; r++) {
        if (b->tgt_action[r] < 0) continue;
        const real loggap = b->tgt_loggap[r], eng = s->engagement ? b->tgt_eng[r] : 0;
        double pred, se_e;
        const double nll_t =
            head_tail_row(s, lc, log_std, a->ytail + (size_t)r * Tt, a->dytail + (size_t)r * Tt,
                          want_grad, loggap, eng, &pred, &se_e);
        if (sums)
            head_add_sums(sums, lc, logz[r] - ytgt[r], nll_t, se_e, a->head_rank[r], pred, loggap);
    }
    if (!want_grad) memset(a->dytail, 0, sizeof(real) * (size_t)TB * Tt);
}

// The tile of logits (nr, nk) into w_action * (softmax - onehot), rows without a target 0.
static void tile_to_grad(Model *m, const Batch *b, int r0, int nr, int k0, int nk) {
    Activations *a = &m->act;
    const double w = a->head_w_action;
    for (int i = 0; i < nr; i++) {
        const int r = r0 + i, tgt = b->tgt_action[r];
        real *row = a->tile + (size_t)i * nk;
        if (tgt < 0) {
            memset(row, 0, sizeof(real) * (size_t)nk);
            continue;
        }
        double inv;
        const double lt = softmax_row(row, a->tile_e, nk, &inv);
        // exp(y - logz) = e * inv * exp(lt - logz), lt <= logz.
        const real scale = (real)(w * inv * exp(lt - a->logz[r]));
        const real *e = a->tile_e;
        for (int k = 0; k < nk; k++) row[k] = e[k] * scale;
        if (tgt >= k0 && tgt < k0 + nk) row[tgt - k0] -= (real)w;
    }
}

void head_tiled_backward(Model *m, const Batch *b, const real *htop, real *dH) {
    check_tiled(m);
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int K = s->n_actions, H = s->hidden, Tt = model_outputs(s) - K;
    const int TB = b->window * b->lanes;
    // Tail: dH = dytail (TB, Tt) W_head[K..] (Tt, H); dW_head[K..] += dytail^T htop.
    const real *wt = m->p.w_head + (size_t)K * H;
    gemm(0, 0, TB, H, Tt, 1, a->dytail, Tt, wt, H, 0, dH, H);
    gemm(1, 0, Tt, H, TB, 1, a->dytail, Tt, htop, H, 1, m->g.w_head + (size_t)K * H, H);
    add_column_sums(m->g.b_head + K, a->dytail, TB, Tt);
    for (int k0 = 0; k0 < K; k0 += HEAD_TILE_COLS) {
        const int nk = imin(HEAD_TILE_COLS, K - k0);
        real *gw = m->g.w_head + (size_t)k0 * H, *gb = m->g.b_head + k0;
        const real *w = m->p.w_head + (size_t)k0 * H;
        for (int r0 = 0; r0 < TB; r0 += HEAD_TILE_ROWS) {
            const int nr = imin(HEAD_TILE_ROWS, TB - r0);
            if (!any_target(b, r0, nr)) continue;
            logits_tile(m, htop, r0, nr, k0, nk, a->tile);
            tile_to_grad(m, b, r0, nr, k0, nk);
            // dW[k0..] (nk, H) += tile^T (nk, nr) htop[r0..] (nr, H); dH[r0..] += tile W[k0..].
            gemm(1, 0, nk, H, nr, 1, a->tile, nk, htop + (size_t)r0 * H, H, 1, gw, H);
            add_column_sums(gb, a->tile, nr, nk);
            gemm(0, 0, nr, H, nk, 1, a->tile, nk, w, H, 1, dH + (size_t)r0 * H, H);
        }
    }
}
