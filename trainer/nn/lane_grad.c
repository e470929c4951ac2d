// lane_grad.c: see lane_grad.h. Shapes are (rows, cols), row-major; a lane's rows of a
// (T, B, N) activation are a (T, N) matrix with leading dimension B * N.
#include "lane_grad.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef MODEL_REAL_DOUBLE
#define GEMM cblas_dgemm
#else
#define GEMM cblas_sgemm
#endif

static inline void gemm(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B,
                        int ldb, real *C, int ldc) {
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
         1, A, lda, B, ldb, 0, C, ldc);
}

static double sum_sq(const real *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

static double dot(const real *a, const real *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

void lane_grad_init(LaneGrad *lg, const ModelShape *s, LaneGradMethod method) {
    memset(lg, 0, sizeof *lg);
    const int H = s->hidden, O = model_outputs(s), T = s->window;
    lg->method = method;
    lg->T = T, lg->I0 = model_input_width(s), lg->I_emb = lg->I0 - s->n_dense;
    int wide = lg->I0 > H ? lg->I0 : H;
    size_t work = (size_t)4 * H * wide > (size_t)O * H ? (size_t)4 * H * wide : (size_t)O * H;
    lg->work = xalloc_aligned(sizeof(real) * work);
    lg->gram_a = xalloc_aligned(sizeof(real) * (size_t)T * T);
    lg->gram_b = xalloc_aligned(sizeof(real) * (size_t)T * T);
    lg->x0 = xalloc_aligned(sizeof(real) * (size_t)T * lg->I0);
    lg->dx = xalloc_aligned(sizeof(real) * (size_t)T * (lg->I_emb ? lg->I_emb : 1));
    int rows = s->n_actions, width = s->action_embed;
    for (int c = 0; c < s->n_cat; c++) {
        if (s->cat_vocab[c] > rows) rows = s->cat_vocab[c];
        if (s->cat_embed > width) width = s->cat_embed;
    }
    lg->rows = rows;
    lg->table = xalloc_aligned(sizeof(real) * (size_t)rows * width); // zeroed
    lg->touched = xmalloc(sizeof(int32_t) * (size_t)T);
    lg->colsum = xmalloc(sizeof(double) * (size_t)(4 * H > O ? 4 * H : O));
}

void lane_grad_free(LaneGrad *lg) {
    free(lg->work), free(lg->gram_a), free(lg->gram_b), free(lg->x0), free(lg->dx);
    free(lg->table), free(lg->touched), free(lg->colsum);
    memset(lg, 0, sizeof *lg);
}

// ||A^T X||_F^2 for A (T, M) and X (T, N), lane rows with leading dimensions lda, ldx. Ghost:
// <A A^T, X X^T>, with A A^T already in gram_a when have_a.
static double outer_sq(LaneGrad *lg, int T, int M, int N, const real *A, int lda, const real *X,
                       int ldx, int have_a) {
    if (lg->method == LANE_GRAD_EXPLICIT) {
        gemm(1, 0, M, N, T, A, lda, X, ldx, lg->work, N);
        return sum_sq(lg->work, (size_t)M * N);
    }
    if (!have_a) gemm(0, 1, T, T, M, A, lda, A, lda, lg->gram_a, T);
    gemm(0, 1, T, T, N, X, ldx, X, ldx, lg->gram_b, T);
    return dot(lg->gram_a, lg->gram_b, (size_t)T * T);
}

// ||sum_t rows_t||^2 of a lane's (T, N) rows.
static double colsum_sq(LaneGrad *lg, int T, int N, const real *A, int lda) {
    double *s = lg->colsum;
    for (int j = 0; j < N; j++) s[j] = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < N; j++) s[j] += (double)A[(size_t)t * lda + j];
    double q = 0;
    for (int j = 0; j < N; j++) q += s[j] * s[j];
    return q;
}

// Layer-0 input rows of lane `lane` (as model.c's input_forward builds them) into lg->x0.
static void lane_inputs(const Model *m, const Batch *b, int lane, LaneGrad *lg) {
    const ModelShape *s = &m->shape;
    const int B = b->lanes, Ea = s->action_embed, Ec = s->cat_embed, C = s->n_cat, D = s->n_dense;
    for (int t = 0; t < b->window; t++) {
        const size_t r = (size_t)t * B + lane;
        real *x = lg->x0 + (size_t)t * lg->I0;
        memcpy(x, m->p.action_emb + (size_t)b->action[r] * Ea, sizeof(real) * Ea);
        x += Ea;
        for (int c = 0; c < C; c++, x += Ec)
            memcpy(x, m->p.cat_emb[c] + (size_t)b->cat[r * C + c] * Ec, sizeof(real) * Ec);
        if (D) memcpy(x, b->dense + r * D, sizeof(real) * D);
    }
}

// Squared norm of one field's embedding gradient for a lane: its rows of lg->dx (columns
// col .. col + E) summed per id in lg->table, whose touched rows are zeroed again after.
static double field_sq(LaneGrad *lg, const Batch *b, int n_cat, int lane, int field, int col,
                       int E) {
    const int T = b->window, B = b->lanes;
    int n_touched = 0;
    for (int t = 0; t < T; t++) {
        const size_t r = (size_t)t * B + lane;
        const int v = field == 0 ? b->action[r] : b->cat[r * n_cat + (field - 1)];
        real *row = lg->table + (size_t)v * E;
        const real *d = lg->dx + (size_t)t * lg->I_emb + col;
        int seen = 0;
        for (int k = 0; k < n_touched && !seen; k++) seen = lg->touched[k] == v;
        if (!seen) lg->touched[n_touched++] = v;
        for (int j = 0; j < E; j++) row[j] += d[j];
    }
    double q = 0;
    for (int k = 0; k < n_touched; k++) {
        real *row = lg->table + (size_t)lg->touched[k] * E;
        q += sum_sq(row, (size_t)E);
        memset(row, 0, sizeof(real) * (size_t)E);
    }
    return q;
}

// Squared norm of one lane's gradient.
static double lane_sq(Model *m, const Batch *b, LaneGrad *lg, int lane) {
    const ModelShape *s = &m->shape;
    const Activations *a = &m->act;
    const int B = b->lanes, T = b->window, H = s->hidden, H4 = 4 * H, O = model_outputs(s);
    const int L = s->layers;
    // Head: dW_head = dy_b^T h_top,b; db_head = column sums of dy_b.
    const real *dy = a->dy + (size_t)lane * O, *ht = a->hout[L - 1] + (size_t)lane * H;
    double q = outer_sq(lg, T, O, H, dy, B * O, ht, B * H, 0) + colsum_sq(lg, T, O, dy, B * O);
    for (int l = 0; l < L; l++) {
        const real *dG = a->gates[l] + (size_t)lane * H4;
        const real *hp = a->hprev[l] + (size_t)lane * H;
        q += outer_sq(lg, T, H4, H, dG, B * H4, hp, B * H, 0);
        const real *x;
        int In, ldx;
        if (l == 0) {
            In = lg->I0;
            if (a->folded) {
                lane_inputs(m, b, lane, lg);
                x = lg->x0, ldx = In;
            } else {
                x = a->x0 + (size_t)lane * In, ldx = B * In;
            }
        } else {
            In = H, ldx = B * H;
            x = (a->dropout_on ? a->xin[l] : a->hout[l - 1]) + (size_t)lane * H;
        }
        // W_ih shares dG's Gram matrix with W_hh (ghost).
        q += outer_sq(lg, T, H4, In, dG, B * H4, x, ldx, 1);
        q += colsum_sq(lg, T, H4, dG, B * H4);
        if (l == 0 && lg->I_emb > 0) {
            // The lane's embedding-input gradient dx (T, I_emb) = dG_b W_ih[0][:, :I_emb].
            gemm(0, 0, T, lg->I_emb, H4, dG, B * H4, m->p.w_ih[0], lg->I0, lg->dx, lg->I_emb);
            q += field_sq(lg, b, s->n_cat, lane, 0, 0, s->action_embed);
            for (int c = 0; c < s->n_cat; c++)
                q += field_sq(lg, b, s->n_cat, lane, 1 + c, s->action_embed + c * s->cat_embed,
                              s->cat_embed);
        }
    }
    return q;
}

void lane_grad_norms_sq(Model *m, const Batch *b, LaneGrad *lg, double *sq) {
    if (b->window > lg->T) fatal("internal: lane_grad: window %d > %d", b->window, lg->T);
    for (int lane = 0; lane < b->lanes; lane++) sq[lane] = lane_sq(m, b, lg, lane);
}
