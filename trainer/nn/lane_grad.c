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

static inline void gemm_beta(int ta, int tb, int M, int N, int K, const real *A, int lda,
                             const real *B, int ldb, real beta, real *C, int ldc) {
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
         1, A, lda, B, ldb, beta, C, ldc);
}

static inline void gemm(int ta, int tb, int M, int N, int K, const real *A, int lda, const real *B,
                        int ldb, real *C, int ldc) {
    gemm_beta(ta, tb, M, N, K, A, lda, B, ldb, 0, C, ldc);
}

static double sum_sq(const real *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
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
    lg->max_lanes = s->max_lanes;
    lg->dx = xalloc_aligned(sizeof(real) * (size_t)T * s->max_lanes * (lg->I_emb ? lg->I_emb : 1));
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

// <Ga, Gb> of two symmetric (T, T) matrices of which syrk filled the upper triangles.
static double sym_dot(const real *ga, const real *gb, int T) {
    double s = 0;
    for (int i = 0; i < T; i++) {
        const real *a = ga + (size_t)i * T, *b = gb + (size_t)i * T;
        s += 0.5 * (double)a[i] * (double)b[i];
        for (int j = i + 1; j < T; j++) s += (double)a[j] * (double)b[j];
    }
    return 2 * s;
}

static void gram(int T, int K, const real *A, int lda, real *G) { // G (T, T) = A A^T, upper
#ifdef MODEL_REAL_DOUBLE
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, K, 1, A, lda, 0, G, T);
#else
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, T, K, 1, A, lda, 0, G, T);
#endif
}

// Whether the Gram route is cheaper for an (M, N) outer-product sum over T rows: two
// syrk's, T^2 (M + N) flops, against the explicit (M, N) product, 2 T M N.
static int ghost_pays(int T, int M, int N) {
    return (double)T * (M + N) < 2.0 * M * N;
}

// ||A^T X||_F^2 for A (T, M) and X (T, N), lane rows with leading dimensions lda, ldx. Ghost:
// <A A^T, X X^T>, with A A^T already in gram_a when have_a (returns whether it is now).
static double outer_sq(LaneGrad *lg, int T, int M, int N, const real *A, int lda, const real *X,
                       int ldx, int *have_a) {
    if (lg->method == LANE_GRAD_EXPLICIT || (!*have_a && !ghost_pays(T, M, N))) {
        gemm(1, 0, M, N, T, A, lda, X, ldx, lg->work, N);
        return sum_sq(lg->work, (size_t)M * N);
    }
    if (!*have_a) gram(T, M, A, lda, lg->gram_a);
    *have_a = 1;
    gram(T, N, X, ldx, lg->gram_b);
    return sym_dot(lg->gram_a, lg->gram_b, T);
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
        const real *d = lg->dx + r * lg->I_emb + col;
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
    int have = 0;
    double q = outer_sq(lg, T, O, H, dy, B * O, ht, B * H, &have) + colsum_sq(lg, T, O, dy, B * O);
    for (int l = 0; l < L; l++) {
        const real *dG = a->gates[l] + (size_t)lane * H4;
        const real *hp = a->hprev[l] + (size_t)lane * H;
        int have_dg = 0;
        q += outer_sq(lg, T, H4, H, dG, B * H4, hp, B * H, &have_dg);
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
        q += outer_sq(lg, T, H4, In, dG, B * H4, x, ldx, &have_dg);
        q += colsum_sq(lg, T, H4, dG, B * H4);
        if (l == 0 && lg->I_emb > 0) {
            q += field_sq(lg, b, s->n_cat, lane, 0, 0, s->action_embed);
            for (int c = 0; c < s->n_cat; c++)
                q += field_sq(lg, b, s->n_cat, lane, 1 + c, s->action_embed + c * s->cat_embed,
                              s->cat_embed);
        }
    }
    return q;
}

void lane_grad_norms_sq(Model *m, const Batch *b, LaneGrad *lg, double *sq) {
    if (b->window > lg->T || b->lanes > lg->max_lanes)
        fatal("internal: lane_grad: batch (%d, %d) > (%d, %d)", b->lanes, b->window,
              lg->max_lanes, lg->T);
    // Every row's embedding-input gradient at once: dx (TB, I_emb) = dG_0 W_ih[0][:, :I_emb]
    // (lane_grad_clipped_sum reuses it, scaled per lane).
    if (lg->I_emb > 0)
        gemm(0, 0, b->window * b->lanes, lg->I_emb, 4 * m->shape.hidden, m->act.gates[0],
             4 * m->shape.hidden, m->p.w_ih[0], lg->I0, lg->dx, lg->I_emb);
    for (int lane = 0; lane < b->lanes; lane++) sq[lane] = lane_sq(m, b, lg, lane);
}

// ---------------------------------------------------------------- the clipped sum

// x0 (T, B, I0) = every row's layer-0 input (the model skips it when it folds embeddings).
static void all_inputs(Model *m, const Batch *b) {
    const ModelShape *s = &m->shape;
    const int B = b->lanes, I0 = model_input_width(s), Ea = s->action_embed, Ec = s->cat_embed;
    const int C = s->n_cat, D = s->n_dense;
    for (size_t r = 0; r < (size_t)b->window * B; r++) {
        real *x = m->act.x0 + r * I0;
        memcpy(x, m->p.action_emb + (size_t)b->action[r] * Ea, sizeof(real) * Ea);
        x += Ea;
        for (int c = 0; c < C; c++, x += Ec)
            memcpy(x, m->p.cat_emb[c] + (size_t)b->cat[r * C + c] * Ec, sizeof(real) * Ec);
        if (D) memcpy(x, b->dense + r * D, sizeof(real) * D);
    }
}

static void add_colsums(real *out, const real *x, size_t rows, int N) {
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < N; j++) out[j] += x[r * N + j];
}

void lane_grad_clipped_sum(Model *m, const Batch *b, const LaneGrad *lg, const double *scale) {
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int B = b->lanes, TB = b->window * B, H = s->hidden, H4 = 4 * H, O = model_outputs(s);
    const int L = s->layers, I0 = model_input_width(s), I_emb = I0 - s->n_dense;
    // Every gradient below is linear in dy through the stored forward: scaling a lane's rows
    // of dy and of each layer's dG scales that lane's share of every tensor.
    for (int r = 0; r < TB; r++) {
        const real f = (real)scale[r % B];
        for (int k = 0; k < O; k++) a->dy[(size_t)r * O + k] *= f;
        for (int l = 0; l < L; l++)
            for (int j = 0; j < H4; j++) a->gates[l][(size_t)r * H4 + j] *= f;
    }
    // Head: dW_head (O, H) += dy^T h_top; db_head += column sums of dy.
    gemm_beta(1, 0, O, H, TB, a->dy, O, a->hout[L - 1], H, 1, m->g.w_head, H);
    add_colsums(m->g.b_head, a->dy, (size_t)TB, O);
    if (a->folded) all_inputs(m, b);
    for (int l = 0; l < L; l++) {
        const real *G = a->gates[l];
        const int In = l == 0 ? I0 : H;
        const real *x = l == 0 ? a->x0 : (a->dropout_on ? a->xin[l] : a->hout[l - 1]);
        // dW_hh (4H, H) += dG^T hprev; dW_ih (4H, I) += dG^T x; dbias += column sums of dG.
        gemm_beta(1, 0, H4, H, TB, G, H4, a->hprev[l], H, 1, m->g.w_hh[l], H);
        gemm_beta(1, 0, H4, In, TB, G, H4, x, In, 1, m->g.w_ih[l], In);
        add_colsums(m->g.bias[l], G, (size_t)TB, H4);
    }
    if (I_emb == 0) return;
    // Embeddings: the unscaled dx rows of lane_grad_norms_sq, scaled and scattered by id.
    const int Ea = s->action_embed, Ec = s->cat_embed, C = s->n_cat;
    for (int r = 0; r < TB; r++) {
        const real *d = lg->dx + (size_t)r * I_emb, f = (real)scale[r % B];
        real *ga = m->g.action_emb + (size_t)b->action[r] * Ea;
        for (int j = 0; j < Ea; j++) ga[j] += f * d[j];
        d += Ea;
        for (int c = 0; c < C; c++, d += Ec) {
            real *gc = m->g.cat_emb[c] + (size_t)b->cat[(size_t)r * C + c] * Ec;
            for (int j = 0; j < Ec; j++) gc[j] += f * d[j];
        }
    }
}
