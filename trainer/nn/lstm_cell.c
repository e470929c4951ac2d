// lstm_cell.c: see lstm_cell.h.
#include "lstm_cell.h"

#include <math.h>

#include "kernels.h"
#include "mathfn.h"

// The dispatching entry points: the path kernels() selected.
void lstm_cell_forward(int B, int H, real *restrict g, const real *restrict bias,
                       const real *restrict cprev, const uint8_t *keep, const uint8_t *keep_next,
                       real *restrict c, real *restrict tc, real *restrict h,
                       real *restrict hprev_next) {
    kernels()->cell_forward(B, H, g, bias, cprev, keep, keep_next, c, tc, h, hprev_next);
}

void lstm_cell_backward(int B, int H, real *restrict g, const real *restrict cprev,
                        const uint8_t *keep, const real *restrict tc, const real *restrict dh,
                        const real *restrict dh_rec, const uint8_t *keep_next, real *restrict dc) {
    kernels()->cell_backward(B, H, g, cprev, keep, tc, dh, dh_rec, keep_next, dc);
}

double softmax_row(const real *restrict y, real *restrict e, int K, double *inv_sum) {
    return kernels()->softmax_row(y, e, K, inv_sum);
}

// The generic path: plain C (this file is compiled with -fno-trapping-math, so the clamps of
// exp_r vectorise for the baseline ISA).

double softmax_row_generic(const real *restrict y, real *restrict e, int K, double *inv_sum) {
    real mx = y[0];
    for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    for (int k = 0; k < K; k++) e[k] = exp_r(y[k] - mx);
    double z = 0;
    for (int k = 0; k < K; k++) z += (double)e[k];
    *inv_sum = 1.0 / z;
    return log(z) + (double)mx;
}

void lstm_cell_forward_generic(int B, int H, real *restrict g, const real *restrict bias,
                               const real *restrict cprev, const uint8_t *keep,
                               const uint8_t *keep_next, real *restrict c, real *restrict tc,
                               real *restrict h, real *restrict hprev_next) {
    for (int b = 0; b < B; b++) {
        real *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const real *cp = cprev + (size_t)b * H;
        real *cb = c + (size_t)b * H, *tcb = tc + (size_t)b * H, *hb = h + (size_t)b * H;
        const real k = keep[b] ? (real)1 : (real)0;
        for (int j = 0; j < H; j++) {
            real i_ = sigmoid_r(gi[j] + bias[j]);
            real f_ = sigmoid_r(gf[j] + bias[H + j]);
            real g_ = tanh_r(gg[j] + bias[2 * H + j]);
            real o_ = sigmoid_r(go[j] + bias[3 * H + j]);
            real c_ = f_ * (k * cp[j]) + i_ * g_;
            real t_ = tanh_r(c_);
            gi[j] = i_, gf[j] = f_, gg[j] = g_, go[j] = o_;
            cb[j] = c_, tcb[j] = t_, hb[j] = o_ * t_;
        }
        if (hprev_next) {
            real *hn = hprev_next + (size_t)b * H;
            const real kn = keep_next[b] ? (real)1 : (real)0;
            for (int j = 0; j < H; j++) hn[j] = kn * hb[j];
        }
    }
}

void lstm_cell_backward_generic(int B, int H, real *restrict g, const real *restrict cprev,
                                const uint8_t *keep, const real *restrict tc,
                                const real *restrict dh, const real *restrict dh_rec,
                                const uint8_t *keep_next, real *restrict dc) {
    for (int b = 0; b < B; b++) {
        real *gi = g + (size_t)b * 4 * H, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        const real *cp = cprev + (size_t)b * H, *tcb = tc + (size_t)b * H;
        const real *dhb = dh + (size_t)b * H;
        real *dcb = dc + (size_t)b * H;
        const real k = keep[b] ? (real)1 : (real)0;
        const real kn = (dh_rec && keep_next[b]) ? (real)1 : (real)0;
        const real *dr = dh_rec ? dh_rec + (size_t)b * H : dhb; // dhb * 0 when absent
        for (int j = 0; j < H; j++) {
            real i_ = gi[j], f_ = gf[j], g_ = gg[j], o_ = go[j], t_ = tcb[j];
            real dh_ = dhb[j] + kn * dr[j];
            real dc_ = dcb[j] + dh_ * o_ * ((real)1 - t_ * t_);
            real cpj = k * cp[j];
            gi[j] = dc_ * g_ * i_ * ((real)1 - i_);
            gf[j] = dc_ * cpj * f_ * ((real)1 - f_);
            gg[j] = dc_ * i_ * ((real)1 - g_ * g_);
            go[j] = dh_ * t_ * o_ * ((real)1 - o_);
            dcb[j] = k * dc_ * f_;
        }
    }
}
