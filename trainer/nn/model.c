// model.c: see model.h. Shapes are in the comments as (rows, cols), row-major.
#include "model.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "hash.h"
#include "head_tiled.h"
#include "kernels.h"
#include "lstm_cell.h"
#include "mathfn.h"
#include "rgemm.h"
#include "time_mix.h"
#include "util.h"

// The recurrent products of one time step, Gt (B, 4H) += hprev_t (B, H) W_hh^T (H, 4H) and
// dh (B, H) = dG_t (B, 4H) W_hh (4H, H): through rgemm.h with W_hh packed once per layer
// pass (recurrent_prepare), or through BLAS where rgemm does not apply (and in double).
static int recurrent_prepare(Model *m, int l, int B, int forward) {
#ifdef MODEL_REAL_DOUBLE
    (void)m, (void)l, (void)B, (void)forward;
    return 0;
#else
    const int H = m->shape.hidden;
    if (!m->use_rgemm || !rgemm_supported(B, forward ? 4 * H : H)) return 0;
    if (forward)
        rgemm_pack_transposed(4 * H, H, m->p.w_hh[l], m->act.wpack);
    else
        rgemm_pack(4 * H, H, m->p.w_hh[l], m->act.wpack);
    return 1;
#endif
}

static void recurrent_forward(Model *m, int l, int B, int fast, const real *hp, real *Gt) {
    const int H = m->shape.hidden;
#ifndef MODEL_REAL_DOUBLE
    if (fast) {
        rgemm(B, 4 * H, H, hp, H, m->act.wpack, Gt, 4 * H, 1);
        return;
    }
#endif
    (void)fast;
    gemm(0, 1, B, 4 * H, H, 1, hp, H, m->p.w_hh[l], H, 1, Gt, 4 * H);
}

static void recurrent_backward(Model *m, int l, int B, int fast, const real *dGt, real *dh) {
    const int H = m->shape.hidden;
#ifndef MODEL_REAL_DOUBLE
    if (fast) {
        rgemm(B, H, 4 * H, dGt, 4 * H, m->act.wpack, dh, H, 0);
        return;
    }
#endif
    (void)fast;
    gemm(0, 0, B, H, 4 * H, 1, dGt, 4 * H, m->p.w_hh[l], H, 0, dh, H);
}

static int layer_input_width(const ModelShape *s, int l) {
    return l == 0 ? model_input_width(s) : s->hidden;
}

// Whether layer l's input projection (forward) and input gradient (backward) go step by step
// through rgemm, given that its recurrent products do: always on AVX-512; on AVX2 while the
// packed W_ih (4H x I floats) is at most 2 MiB. (AVX2 H = 512 L = 2, events per CPU second,
// medians of 4 interleaved runs: step by step 4844 vs one OpenBLAS GEMM 4992 in one trial,
// 4908 vs 5074 in another: within the load's noise, so the BLAS path, as before, stays.)
static int input_steps(const Model *m, int l) {
    const size_t bytes = 4 * (size_t)m->shape.hidden * (size_t)layer_input_width(&m->shape, l) * 4;
    return kernels()->isa == ISA_AVX512 || bytes <= ((size_t)2 << 20);
}

// ---------------------------------------------------------------- parameters

int model_tensors(const ModelShape *s, TensorInfo *out) {
    int n = 0, H = s->hidden;
    size_t off = 0;
#define ADD(nm, r, c_, dec, lay)                                                                   \
    do {                                                                                           \
        TensorInfo *t = &out[n++];                                                                 \
        snprintf(t->name, sizeof t->name, "%s", nm);                                               \
        t->offset = off, t->rows = (r), t->cols = (c_), t->decay = (dec), t->layer = (lay);        \
        t->count = (size_t)(r) * (size_t)(c_);                                                     \
        off += t->count;                                                                           \
    } while (0)
    char name[40];
    // Embeddings first, then layers bottom-up, then the head: backward finishes them in the
    // reverse order, so each gradient bucket is one contiguous range.
    ADD("action_emb", s->n_actions, s->action_embed, 1, -1);
    for (int c = 0; c < s->n_cat; c++) {
        snprintf(name, sizeof name, "cat_emb.%d", c);
        ADD(name, s->cat_vocab[c], s->cat_embed, 1, -1);
    }
    for (int l = 0; l < s->layers; l++) {
        snprintf(name, sizeof name, "lstm.%d.w_ih", l);
        ADD(name, 4 * H, layer_input_width(s, l), 1, l);
        snprintf(name, sizeof name, "lstm.%d.w_hh", l);
        ADD(name, 4 * H, H, 1, l);
        snprintf(name, sizeof name, "lstm.%d.bias", l);
        ADD(name, 4 * H, 1, 0, l);
    }
    ADD("head.w", model_outputs(s), H, 1, s->layers);
    ADD("head.b", model_outputs(s), 1, 0, s->layers);
#undef ADD
    return n;
}

size_t model_param_count(const ModelShape *s) {
    TensorInfo t[MODEL_MAX_TENSORS];
    int n = model_tensors(s, t);
    return t[n - 1].offset + t[n - 1].count;
}

void model_param_views(const ModelShape *s, real *buf, ParamViews *v) {
    TensorInfo t[MODEL_MAX_TENSORS];
    model_tensors(s, t);
    memset(v, 0, sizeof *v);
    int k = 0;
    v->action_emb = buf + t[k++].offset;
    for (int c = 0; c < s->n_cat; c++) v->cat_emb[c] = buf + t[k++].offset;
    for (int l = 0; l < s->layers; l++) {
        v->w_ih[l] = buf + t[k++].offset;
        v->w_hh[l] = buf + t[k++].offset;
        v->bias[l] = buf + t[k++].offset;
    }
    v->w_head = buf + t[k++].offset;
    v->b_head = buf + t[k++].offset;
}

static void check_shape(const ModelShape *s) {
    if (s->layers < 1 || s->layers > MODEL_MAX_LAYERS)
        fatal("model: layers must be 1..%d, got %d", MODEL_MAX_LAYERS, s->layers);
    if (s->n_cat < 0 || s->n_cat > MODEL_MAX_CAT)
        fatal("model: at most %d categorical fields, got %d", MODEL_MAX_CAT, s->n_cat);
    if (s->n_actions < 1 || s->hidden < 1 || s->max_lanes < 1 || s->window < 1 ||
        s->action_embed < 1 || s->n_dense < 0)
        fatal("model: invalid shape (K=%d H=%d B=%d T=%d)", s->n_actions, s->hidden, s->max_lanes,
              s->window);
}

// Every activation buffer is a slice of one arena, each 64-byte aligned.
static real *carve(char *arena, size_t *off, size_t n) {
    real *p = arena ? (real *)(arena + *off) : NULL;
    *off += (n * sizeof(real) + 63) & ~(size_t)63;
    return p;
}

// Lays the activations out in arena (NULL: only counts) and returns the bytes they take.
static size_t activations_layout(Model *m, char *arena) {
    const ModelShape *s = &m->shape;
    const size_t TB = (size_t)s->window * (size_t)s->max_lanes, B = (size_t)s->max_lanes;
    const size_t H = (size_t)s->hidden, I0 = (size_t)model_input_width(s);
    const size_t O = (size_t)model_outputs(s), W = I0 > H ? I0 : H;
    Activations *a = &m->act;
    size_t bytes = 0;
#define ALLOC(ptr, n) ((ptr) = carve(arena, &bytes, (n)))
    ALLOC(a->x0, TB * I0);
    for (int l = 0; l < s->layers; l++) {
        if (l > 0) {
            ALLOC(a->xin[l], TB * H);
            ALLOC(a->mask[l], TB * H);
        }
        ALLOC(a->gates[l], TB * 4 * H);
        ALLOC(a->c[l], TB * H);
        ALLOC(a->tc[l], TB * H);
        ALLOC(a->hout[l], TB * H);
        ALLOC(a->hprev[l], TB * H);
        ALLOC(a->h0[l], B * H);
        ALLOC(a->c0[l], B * H);
    }
    ALLOC(a->mask_in, TB * I0);
    ALLOC(a->mask_out, TB * H);
    ALLOC(a->htop, TB * H);
    if (m->head_tiled) { // never the (TB, O) outputs: one tile of logits at a time
        const size_t Tt = O - (size_t)s->n_actions;
        a->y = a->dy = NULL;
        ALLOC(a->ytail, TB * Tt);
        ALLOC(a->dytail, TB * Tt);
        ALLOC(a->tile, (size_t)HEAD_TILE_ROWS * HEAD_TILE_COLS);
        ALLOC(a->tile_e, (size_t)HEAD_TILE_COLS);
        a->logz = (double *)(void *)carve(arena, &bytes, 2 * TB * sizeof(double) / sizeof(real));
        a->head_rank = (int *)(void *)carve(arena, &bytes, TB * sizeof(int) / sizeof(real) + 1);
    } else {
        ALLOC(a->y, TB * O);
        ALLOC(a->dy, TB * O);
    }
    ALLOC(a->dbuf[0], TB * W);
    ALLOC(a->dbuf[1], TB * W);
    ALLOC(a->dh_rec, B * H);
    ALLOC(a->dc, B * H);
    ALLOC(a->d_dense, TB * (size_t)(s->n_dense ? s->n_dense : 1));
    ALLOC(a->wpack, 4 * H * H);
    ALLOC(a->wpack_ih, 4 * H * W);
    m->use_rgemm = 1;
    // Folded embeddings need one row of 4H per vocabulary entry; worth it (and used) only
    // while the vocabularies are smaller than a batch's rows.
    size_t rows = (size_t)s->n_actions;
    for (int c = 0; c < s->n_cat; c++) rows += (size_t)s->cat_vocab[c];
    if (rows <= TB) {
        m->fold_rows = (int)rows;
        ALLOC(a->table, rows * 4 * H);
        ALLOC(a->dense_acc, (size_t)(s->n_dense ? s->n_dense : 1) * 4 * H);
        ALLOC(a->dense_wt, (size_t)(s->n_dense ? s->n_dense : 1) * 4 * H);
        const size_t ptrs = B * (1 + MODEL_MAX_CAT) * sizeof(real *);
        a->fold_ptr = (real **)(void *)carve(arena, &bytes, ptrs / sizeof(real) + 1);
    }
#undef ALLOC
    return bytes;
}

Model *model_create(const ModelShape *s) { return model_create_head(s, 0); }

Model *model_create_head(const ModelShape *s, int head_tiled) {
    check_shape(s);
    (void)kernels(); // resolve the kernel path (and refuse a bad LSTM_TRAINER_ISA) up front
    Model *m = xcalloc(1, sizeof *m);
    m->shape = *s;
    m->head_tiled = head_tiled != 0;
    m->n_params = model_param_count(s);
    m->params = xalloc_aligned(m->n_params * sizeof(real));
    m->grads = xalloc_aligned(m->n_params * sizeof(real));
    model_param_views(s, m->params, &m->p);
    model_param_views(s, m->grads, &m->g);

    m->activation_bytes = activations_layout(m, NULL);
    m->act_arena = xalloc_aligned(m->activation_bytes);
    activations_layout(m, m->act_arena);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    free(m->act_arena);
    free(m->params);
    free(m->grads);
    free(m);
}

void model_init_params(Model *m, uint64_t seed, double init_scale) {
    const ModelShape *s = &m->shape;
    TensorInfo t[MODEL_MAX_TENSORS];
    int n = model_tensors(s, t);
    double k = init_scale > 0 ? init_scale : 1.0 / sqrt((double)s->hidden);
    for (int i = 0; i < n; i++) {
        // One stream per tensor name: a tensor's values do not depend on the others' sizes.
        Rng r = rng_make(seed, hash_bytes(t[i].name, strlen(t[i].name), 0x1417));
        real *w = m->params + t[i].offset;
        int is_emb = t[i].layer == -1, is_bias = t[i].cols == 1;
        for (size_t j = 0; j < t[i].count; j++) {
            if (is_emb)
                w[j] = (real)rng_normal(&r);
            else if (is_bias)
                w[j] = 0;
            else
                w[j] = (real)((2.0 * rng_uniform(&r) - 1.0) * k);
        }
    }
    for (int l = 0; l < s->layers; l++)
        for (int j = 0; j < s->hidden; j++) m->p.bias[l][s->hidden + j] = 1; // forget gate
}

LaneState lane_state_alloc(const ModelShape *s, int lanes) {
    LaneState st;
    memset(&st, 0, sizeof st);
    for (int l = 0; l < s->layers; l++) {
        st.h[l] = xalloc_aligned((size_t)lanes * (size_t)s->hidden * sizeof(real));
        st.c[l] = xalloc_aligned((size_t)lanes * (size_t)s->hidden * sizeof(real));
    }
    return st;
}

void lane_state_free(LaneState *st) {
    for (int l = 0; l < MODEL_MAX_LAYERS; l++) {
        free(st->h[l]), free(st->c[l]);
        st->h[l] = st->c[l] = NULL;
    }
}

LaneState lane_state_slice(const ModelShape *s, const LaneState *st, int first) {
    LaneState v;
    memset(&v, 0, sizeof v);
    for (int l = 0; l < s->layers; l++) {
        v.h[l] = st->h[l] + (size_t)first * (size_t)s->hidden;
        v.c[l] = st->c[l] + (size_t)first * (size_t)s->hidden;
    }
    return v;
}

// ---------------------------------------------------------------- forward

// x0 (T, B, I0): rows [action_emb[action] | cat_emb[c][cat] ... | dense].
void model_input_rows(const Model *m, const Batch *b, real *x0) {
    const ModelShape *s = &m->shape;
    const int TB = b->window * b->lanes, I0 = model_input_width(s), Ea = s->action_embed;
    const int Ec = s->cat_embed, C = s->n_cat, D = s->n_dense;
    for (int r = 0; r < TB; r++) {
        real *x = x0 + (size_t)r * I0;
        int a = b->action[r];
        if (a < 0 || a >= s->n_actions)
            fatal("model: action id %d out of range 0..%d", a, s->n_actions - 1);
        memcpy(x, m->p.action_emb + (size_t)a * Ea, sizeof(real) * (size_t)Ea);
        x += Ea;
        for (int c = 0; c < C; c++) {
            int v = b->cat[(size_t)r * C + c];
            if (v < 0 || v >= s->cat_vocab[c])
                fatal("model: categorical id %d of field %d out of range", v, c);
            memcpy(x, m->p.cat_emb[c] + (size_t)v * Ec, sizeof(real) * (size_t)Ec);
            x += Ec;
        }
        if (D) memcpy(x, b->dense + (size_t)r * D, sizeof(real) * (size_t)D);
    }
}

// Inverted dropout: out = in * mask over (T, B, W) rows, mask in {0, 1/(1-p)}. Draws depend
// on (seed, step, which, global lane, t, unit) only, so they are the same on any number of
// ranks; which = l for layer l's input, DROP_INPUT for x0, DROP_OUTPUT for the top output.
enum { DROP_INPUT = 1000, DROP_OUTPUT = 1001 };
static void dropout_apply(const Batch *b, const DropoutConfig *dc, double p, uint64_t which,
                          int W, const real *in, real *mask, real *out) {
    const int B = b->lanes, T = b->window;
    const real scale = (real)(1.0 / (1.0 - p));
    uint64_t stream = mix64(dc->step * 0x9e3779b97f4a7c15ULL + which);
    for (int t = 0; t < T; t++)
        for (int lane = 0; lane < B; lane++) {
            size_t row = (size_t)t * B + lane;
            real *mk = mask + row * W, *x = out + row * W;
            const real *h = in + row * W;
            uint64_t base = (b->lane_id[lane] * (uint64_t)0x10000 + (uint64_t)t) * (uint64_t)W;
            for (int j = 0; j < W; j++) {
                double u = rng_uniform_at(dc->seed, stream, base + (uint64_t)j);
                mk[j] = u < p ? (real)0 : scale;
                x[j] = h[j] * mk[j];
            }
        }
}

// Folded embeddings. Layer 0's input row is [emb_a[a] | emb_c[c]... | dense], so its
// projection x W_ih^T is a sum of per-field parts. For an embedded field f with vocabulary
// V_f the part is a row of the table T_f (V_f, 4H) = emb_f (V_f, E_f) W_f^T (E_f, 4H), W_f the
// field's columns of W_ih: computing the tables and gathering rows replaces the narrow
// (TB, I0) x (I0, 4H) GEMM whenever the vocabularies have fewer rows than the batch.
// Backward sums dG's rows per value (S_f, same shape as T_f), then dW_f += S_f^T emb_f and
// d emb_f += S_f W_f: two small GEMMs per field instead of the (TB, 4H) x (4H, I0) ones.
typedef struct {
    int n; // fields: the action, then each categorical column
    int rows[1 + MODEL_MAX_CAT], width[1 + MODEL_MAX_CAT];
    int col[1 + MODEL_MAX_CAT];  // first column of the field in W_ih[0]
    int row0[1 + MODEL_MAX_CAT]; // first row of the field in the table
    real *emb[1 + MODEL_MAX_CAT], *gemb[1 + MODEL_MAX_CAT];
} Fields;

static Fields fields_of(Model *m) {
    const ModelShape *s = &m->shape;
    Fields f;
    f.n = 1 + s->n_cat;
    f.rows[0] = s->n_actions, f.width[0] = s->action_embed, f.col[0] = 0, f.row0[0] = 0;
    f.emb[0] = m->p.action_emb, f.gemb[0] = m->g.action_emb;
    for (int c = 0; c < s->n_cat; c++) {
        f.rows[1 + c] = s->cat_vocab[c], f.width[1 + c] = s->cat_embed;
        f.col[1 + c] = s->action_embed + c * s->cat_embed;
        f.row0[1 + c] = f.row0[c] + f.rows[c];
        f.emb[1 + c] = m->p.cat_emb[c], f.gemb[1 + c] = m->g.cat_emb[c];
    }
    return f;
}

// The row of the table for field k of batch row r.
static inline int table_row(const Fields *f, const Batch *b, int n_cat, int k, int r) {
    int v = k == 0 ? b->action[r] : b->cat[(size_t)r * n_cat + (k - 1)];
    if (v < 0 || v >= f->rows[k])
        fatal("model: id %d of input field %d out of range 0..%d", v, k, f->rows[k] - 1);
    return f->row0[k] + v;
}

// The tables T_f of the fields, and W_d^T (D, 4H) for W_d the dense columns of W_ih (in
// act.dense_wt); once per forward.
static void folded_tables(Model *m) {
    const ModelShape *s = &m->shape;
    const int H4 = 4 * s->hidden, I0 = model_input_width(s), D = s->n_dense;
    const real *W = m->p.w_ih[0];
    real *T = m->act.table;
    Fields f = fields_of(m);
    for (int k = 0; k < f.n; k++) // T_f (V_f, 4H) = emb_f (V_f, E_f) W_f^T
        gemm(0, 1, f.rows[k], H4, f.width[k], 1, f.emb[k], f.width[k], W + f.col[k], I0, 0,
             T + (size_t)f.row0[k] * H4, H4);
    for (int q = 0; q < D; q++)
        for (int j = 0; j < H4; j++)
            m->act.dense_wt[(size_t)q * H4 + j] = W[(size_t)j * I0 + (I0 - D) + q];
}

// Rows [r0, r0 + rows) of G (TB, 4H) = layer-0 input projection, from the tables and the
// dense inputs; called step by step, so each step's rows are in cache for its recurrence.
static void folded_input_rows(Model *m, const Batch *b, int r0, int rows, real *G) {
    const ModelShape *s = &m->shape;
    const int H4 = 4 * s->hidden, D = s->n_dense, C = s->n_cat;
    const real *T = m->act.table;
    const Kernels *k = kernels();
    Fields f = fields_of(m);
    const real *row[1 + MODEL_MAX_CAT];
    for (int r = r0; r < r0 + rows; r++) {
        for (int q = 0; q < f.n; q++) row[q] = T + (size_t)table_row(&f, b, C, q, r) * H4;
        // g = the rows of the fields' tables + dense_r (D) W_d^T (D, 4H).
        k->fold_row(H4, G + (size_t)r * H4, row, f.n, D ? b->dense + (size_t)r * D : NULL,
                    m->act.dense_wt, D);
    }
}

// Layer-0 weight and embedding gradients from dG (TB, 4H), folded path.
static void folded_input_backward(Model *m, const Batch *b, const real *dG) {
    const ModelShape *s = &m->shape;
    const int TB = b->window * b->lanes, H4 = 4 * s->hidden, I0 = model_input_width(s);
    const int D = s->n_dense;
    const real *W = m->p.w_ih[0];
    real *gW = m->g.w_ih[0], *S = m->act.table;
    Fields f = fields_of(m);
    // S holds dG's rows summed per value (accumulated step by step in lstm_layer_backward,
    // while each step's rows are still in cache).
    // The bias gradient: the action rows of S summed (each dG row is in exactly one).
    real *gb = m->g.bias[0];
    for (int v = 0; v < f.rows[0]; v++)
        for (int j = 0; j < H4; j++) gb[j] += S[(size_t)v * H4 + j];
    for (int k = 0; k < f.n; k++) {
        const real *Sk = S + (size_t)f.row0[k] * H4;
        // dW_f (4H, E_f) += S_f^T (4H, V_f) emb_f (V_f, E_f); d emb_f (V_f, E_f) += S_f W_f.
        gemm(1, 0, H4, f.width[k], f.rows[k], 1, Sk, H4, f.emb[k], f.width[k], 1, gW + f.col[k],
             I0);
        gemm(0, 0, f.rows[k], f.width[k], H4, 1, Sk, H4, W + f.col[k], I0, 1, f.gemb[k],
             f.width[k]);
    }
    if (D) {
        // dW_d (4H, D) += dG^T (4H, TB) dense (TB, D), summed step by step (while each step's
        // dG was in cache) into dense_acc = its transpose (D, 4H).
        for (int j = 0; j < H4; j++)
            for (int q = 0; q < D; q++)
                gW[(size_t)j * I0 + (I0 - D) + q] += m->act.dense_acc[(size_t)q * H4 + j];
        if (m->want_input_grad)
            gemm(0, 0, TB, D, H4, 1, dG, H4, W + (I0 - D), I0, 0, m->act.d_dense, D);
    }
}

static void lstm_layer_forward(Model *m, const Batch *b, int l, LaneState *state) {
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int B = b->lanes, T = b->window, H = s->hidden, In = layer_input_width(s, l);
    real *G = a->gates[l];
    const real *x = l == 0 ? a->x0 : (a->dropout_on ? a->xin[l] : a->hout[l - 1]);
    const int fast = recurrent_prepare(m, l, B, 1);
    // With rgemm, the input projection joins each step's recurrent one (one pass over Gt,
    // the packed W_ih^T reused by every step); else it is one GEMM over all T*B events.
    const int fused = fast && !(l == 0 && a->folded) && input_steps(m, l);
    if (l == 0 && a->folded) {
        folded_tables(m); // the rows of G come step by step below
    } else if (fused) {
#ifndef MODEL_REAL_DOUBLE
        rgemm_pack_transposed(4 * H, In, m->p.w_ih[l], a->wpack_ih);
#endif
    } else {
        // G (TB, 4H) = x (TB, I) W_ih^T (I, 4H).
        gemm(0, 1, T * B, 4 * H, In, 1, x, In, m->p.w_ih[l], In, 0, G, 4 * H);
    }
    // The carried state; hprev[0] = keep_0 * h0.
    memcpy(a->h0[l], state->h[l], sizeof(real) * (size_t)B * H);
    memcpy(a->c0[l], state->c[l], sizeof(real) * (size_t)B * H);
    for (int lane = 0; lane < B; lane++) {
        real k = b->keep[lane] ? 1 : 0;
        for (int j = 0; j < H; j++)
            a->hprev[l][(size_t)lane * H + j] = k * a->h0[l][(size_t)lane * H + j];
    }
    for (int t = 0; t < T; t++) {
        real *Gt = G + (size_t)t * B * 4 * H;
        const real *hp = a->hprev[l] + (size_t)t * B * H;
        if (l == 0 && a->folded) folded_input_rows(m, b, t * B, B, G);
        // Recurrent projection of the four gates: Gt (B, 4H) += hprev_t (B, H) W_hh^T (H, 4H)
        // (fused: Gt = x_t (B, I) W_ih^T (I, 4H) + hprev_t W_hh^T).
#ifndef MODEL_REAL_DOUBLE
        if (fused)
            rgemm2(B, 4 * H, In, x + (size_t)t * B * In, In, a->wpack_ih, H, hp, H, a->wpack, Gt,
                   4 * H, 0);
        else
#endif
            recurrent_forward(m, l, B, fast, hp, Gt);
        const real *cprev = t == 0 ? a->c0[l] : a->c[l] + (size_t)(t - 1) * B * H;
        size_t o = (size_t)t * B * H;
        lstm_cell_forward(B, H, Gt, m->p.bias[l], cprev, b->keep + (size_t)t * B,
                          t + 1 < T ? b->keep + (size_t)(t + 1) * B : NULL, a->c[l] + o,
                          a->tc[l] + o, a->hout[l] + o,
                          t + 1 < T ? a->hprev[l] + o + (size_t)B * H : NULL);
    }
    // The state after the window is the last step's (h, c).
    memcpy(state->h[l], a->hout[l] + (size_t)(T - 1) * B * H, sizeof(real) * (size_t)B * H);
    memcpy(state->c[l], a->c[l] + (size_t)(T - 1) * B * H, sizeof(real) * (size_t)B * H);
}

// See model.h.
// The same from yt = y + K.
static double gap_point_tail(const ModelShape *s, const LossConfig *lc, const real *yt) {
    const int M = model_time_mix(s);
    if (M > 1)
        return lc->time_point == TIME_POINT_MEAN
                   ? time_mix_mean_gap(M, yt, lc->loggap_mean, lc->loggap_std, lc->gap_offset)
                   : time_mix_median_gap(M, yt, lc->loggap_mean, lc->loggap_std, lc->gap_offset);
    const double ymu = yt[0], yls = yt[1];
    double logpt = lc->loggap_mean + lc->loggap_std * ymu; // the median's log(gap + delta)
    if (lc->time_point == TIME_POINT_MEAN) {
        const double sd = lc->loggap_std * exp(yls);
        logpt += 0.5 * sd * sd;
    }
    double p = (double)exp_r((real)logpt) - lc->gap_offset;
    return p > 0 ? p : 0;
}

double head_gap_point(const ModelShape *s, const LossConfig *lc, const real *y) {
    return gap_point_tail(s, lc, y + s->n_actions);
}

// The time head of one row, yt = y + K: adds the gap's NLL (density per time unit) to *nll
// and its point prediction (lc->time_point) to *pred; with want_grad writes
// dt (Tw) = w_time * d NLL / d yt.
// M = 1: log(gap + delta) ~ Normal(mu, sigma), predicted in normalised units
// u = (loggap - mean) / std, yt = (mu, log(sigma / std)). M >= 2: time_mix.h.
static void time_head_row(const ModelShape *s, const LossConfig *lc, double log_std,
                          const real *yt, real loggap, int want_grad, real *dt, double *nll,
                          double *pred) {
    const double u = ((double)loggap - lc->loggap_mean) / lc->loggap_std;
    const int M = model_time_mix(s);
    if (M > 1) {
        double post[TIME_MIX_MAX];
        *nll = (double)loggap + log_std + time_mix_nll(M, yt, u, post);
        *pred = gap_point_tail(s, lc, yt);
        if (want_grad) time_mix_backward(M, yt, u, post, lc->w_time, dt);
        return;
    }
    // (exp_r: these run for every scored event; float precision is ample here.)
    const double ymu = yt[0], yls = yt[1], inv_var = (double)exp_r((real)(-2.0 * yls));
    const double diff = u - ymu;
    *nll = (double)loggap + log_std + yls + 0.5 * diff * diff * inv_var + 0.9189385332046727;
    *pred = gap_point_tail(s, lc, yt);
    if (want_grad) {
        dt[0] = (real)(lc->w_time * -diff * inv_var);
        dt[1] = (real)(lc->w_time * (1.0 - diff * diff * inv_var));
    }
}

// See model.h.
double head_tail_row(const ModelShape *s, const LossConfig *lc, double log_std, const real *yt,
                     real *dt, int want_grad, real loggap, real eng, double *pred, double *se_e) {
    const int Jt = model_time_width(s); // the engagement output's index in yt
    double nll_t;
    time_head_row(s, lc, log_std, yt, loggap, want_grad, dt, &nll_t, pred);
    *se_e = 0;
    if (s->engagement) {
        double d = (double)yt[Jt] - (double)eng;
        *se_e = 0.5 * d * d;
        if (want_grad) dt[Jt] = (real)(lc->w_eng * ((double)yt[Jt] - (double)eng));
    }
    return nll_t;
}

// See model.h.
void head_add_sums(LossSums *sums, const LossConfig *lc, double nll_a, double nll_t, double se_e,
                   int rank, double pred, real loggap) {
    double gap = (double)exp_r(loggap) - lc->gap_offset;
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

// See model.h.
void head_loss_row(const ModelShape *s, const LossConfig *lc, double log_std, const real *y,
                   real *e, int want_grad, int tgt, real loggap, real eng, LossSums *sums) {
    const int K = s->n_actions;
    // Next action: softmax cross-entropy.
    double inv_sum;
    const double logz = softmax_row(y, e, K, &inv_sum);
    const double nll_a = logz - (double)y[tgt];
    int rank = 0; // how many logits beat the target's (ties count against it)
    for (int k = 0; k < K; k++) rank += (k != tgt && y[k] >= y[tgt]);
    double pred, se_e;
    const double nll_t =
        head_tail_row(s, lc, log_std, y + K, e + K, want_grad, loggap, eng, &pred, &se_e);
    if (sums) head_add_sums(sums, lc, nll_a, nll_t, se_e, rank, pred, loggap);
    if (want_grad) {
        const real scale = (real)(lc->w_action * inv_sum);
        for (int k = 0; k < K; k++) e[k] *= scale; // w * softmax
        e[tgt] -= (real)lc->w_action;
    }
}

void model_forward(Model *m, const Batch *b, LaneState *state, const LossConfig *lc,
                   const DropoutConfig *dc, LossSums *sums, int want_grad) {
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    if (b->lanes > s->max_lanes || b->window > s->window || b->lanes < 1 || b->window < 1)
        fatal("model: batch (B=%d, T=%d) exceeds the model's buffers (B=%d, T=%d)", b->lanes,
              b->window, s->max_lanes, s->window);
    const int TB = b->window * b->lanes, H = s->hidden, O = model_outputs(s);
    a->dropout_on = dc && dc->p > 0 && s->layers > 1;
    a->dropout_in = dc && dc->p_input > 0 && !m->input_given;
    a->dropout_out = dc && dc->p_output > 0;
    a->folded = !m->input_given && !a->dropout_in && m->fold_rows > 0 &&
                m->fold_rows <= b->window * b->lanes;
    if (!a->folded && !m->input_given) model_input_rows(m, b, a->x0);
    if (a->dropout_in) // in place: x0 becomes the dropped rows, backward needs only the mask
        dropout_apply(b, dc, dc->p_input, DROP_INPUT, model_input_width(s), a->x0, a->mask_in,
                      a->x0);
    for (int l = 0; l < s->layers; l++) {
        if (l > 0 && a->dropout_on)
            dropout_apply(b, dc, dc->p, (uint64_t)l, H, a->hout[l - 1], a->mask[l], a->xin[l]);
        lstm_layer_forward(m, b, l, state);
    }
    // Heads: y (TB, O) = h_top (TB, H) W_head^T (H, O) + b_head.
    const real *htop = a->hout[s->layers - 1];
    if (a->dropout_out) {
        dropout_apply(b, dc, dc->p_output, DROP_OUTPUT, H, htop, a->mask_out, a->htop);
        htop = a->htop;
    }
    if (m->head_tiled) {
        if (!sums && !want_grad) fatal("model: a tiled head has no outputs to leave in act.y");
        head_tiled_forward(m, b, htop, lc, sums, want_grad);
        return;
    }
    for (int r = 0; r < TB; r++) memcpy(a->y + (size_t)r * O, m->p.b_head, sizeof(real) * O);
    gemm(0, 1, TB, O, H, 1, htop, H, m->p.w_head, H, 1, a->y, O);
    if (!sums && !want_grad) return;
    if (want_grad) memset(a->dy, 0, sizeof(real) * (size_t)TB * O);
    const double log_std = log(lc->loggap_std);
    for (int r = 0; r < TB; r++) {
        int tgt = b->tgt_action[r];
        if (tgt < 0) continue;
        if (tgt >= s->n_actions) fatal("model: target action %d out of range", tgt);
        // dy's row is the softmax scratch; rows without a target stay 0 for backward.
        real *e = a->dy + (size_t)r * O;
        head_loss_row(s, lc, log_std, a->y + (size_t)r * O, e, want_grad, tgt, b->tgt_loggap[r],
                      s->engagement ? b->tgt_eng[r] : 0, sums);
        if (!want_grad) memset(e, 0, sizeof(real) * (size_t)O);
    }
}

// ---------------------------------------------------------------- backward

// Backward of layer l given dH (T, B, H) = d loss / d hout[l]. Leaves d loss / d input
// (T, B, I_l) in dx.
// Sums over one step's rows of dG_t (B, 4H), done while they are in cache: the bias
// gradient, and for layer 0 with folded embeddings the per-value sums S (see above).
static void accumulate_step(Model *m, const Batch *b, int l, int t, const real *Gt) {
    const int B = b->lanes, H4 = 4 * m->shape.hidden, C = m->shape.n_cat;
    real *gb = m->g.bias[l];
    if (m->input_grad_only) return;
    if (l != 0 || !m->act.folded) {
        for (int lane = 0; lane < B; lane++) {
            const real *d = Gt + (size_t)lane * H4;
            for (int j = 0; j < H4; j++) gb[j] += d[j];
        }
        return;
    }
    // Folded: every row adds into exactly one row of the action table, so the bias gradient
    // is the sum of that table's rows (folded_input_backward), not summed here.
    Fields f = fields_of(m);
    const int D = m->shape.n_dense;
    real **row = m->act.fold_ptr; // (B, f.n): each lane's rows of the tables
    for (int lane = 0; lane < B; lane++)
        for (int q = 0; q < f.n; q++)
            row[(size_t)lane * f.n + q] =
                m->act.table + (size_t)table_row(&f, b, C, q, t * B + lane) * H4;
    // The table rows S += dG_r; dense_acc (D, 4H) += dense_r^T dG_r: dW_d^T, see
    // folded_input_backward.
    kernels()->fold_rows_backward(H4, B, Gt, row, f.n, D ? b->dense + (size_t)t * B * D : NULL,
                                  m->act.dense_acc, D);
}

static void lstm_layer_backward(Model *m, const Batch *b, int l, const real *dH, real *dx,
                                const BackwardHooks *hooks) {
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int B = b->lanes, T = b->window, H = s->hidden, In = layer_input_width(s, l);
    real *G = a->gates[l];
    const int folded = l == 0 && a->folded;
    memset(a->dc, 0, sizeof(real) * (size_t)B * H);
    if (folded) memset(a->table, 0, sizeof(real) * (size_t)m->fold_rows * 4 * H);
    if (folded && s->n_dense) memset(a->dense_acc, 0, sizeof(real) * (size_t)s->n_dense * 4 * H);
    const int fast = recurrent_prepare(m, l, B, 0);
    // With rgemm, d input comes step by step while dG_t is in cache (W_ih packed once).
    // (DP, skip_param_grads, needs no d input below layer 1.)
    const int dx_steps =
        fast && !folded && rgemm_supported(B, In) && (l > 0 || !m->skip_param_grads) &&
        input_steps(m, l);
#ifndef MODEL_REAL_DOUBLE
    if (dx_steps) rgemm_pack(4 * H, In, m->p.w_ih[l], a->wpack_ih);
#endif
    for (int t = T - 1; t >= 0; t--) {
        size_t o = (size_t)t * B * H;
        const real *cprev = t == 0 ? a->c0[l] : a->c[l] + o - (size_t)B * H;
        real *Gt = G + (size_t)t * B * 4 * H;
        lstm_cell_backward(B, H, Gt, cprev, b->keep + (size_t)t * B, a->tc[l] + o, dH + o,
                           t + 1 < T ? a->dh_rec : NULL,
                           t + 1 < T ? b->keep + (size_t)(t + 1) * B : NULL, a->dc);
        // Gradient into h_{t-1}: dh_rec (B, H) = dG_t (B, 4H) W_hh (4H, H).
        if (t > 0) recurrent_backward(m, l, B, fast, Gt, a->dh_rec);
#ifndef MODEL_REAL_DOUBLE
        // d input_t (B, I) = dG_t (B, 4H) W_ih (4H, I).
        if (dx_steps) rgemm(B, In, 4 * H, Gt, 4 * H, a->wpack_ih, dx + (size_t)t * B * In, In, 0);
#endif
        if (!m->skip_param_grads) accumulate_step(m, b, l, t, Gt);
        if (hooks && hooks->progress && (t & 7) == 0) hooks->progress(hooks->ctx);
    }
    if (m->skip_param_grads) { // dG only (DP: lane_grad.h forms the parameter gradients)
        if (l > 0 && !dx_steps)
            gemm(0, 0, T * B, In, 4 * H, 1, G, 4 * H, m->p.w_ih[l], In, 0, dx, In);
        return;
    }
    // Weight gradients over all time steps at once (dG now holds every step's gradient):
    // dW_hh (4H, H) += dG^T (4H, TB) hprev (TB, H); dW_ih (4H, I) += dG^T x (TB, I).
    if (!m->input_grad_only) { // (explanations need only the input gradient below)
        gemm(1, 0, 4 * H, H, T * B, 1, G, 4 * H, a->hprev[l], H, 1, m->g.w_hh[l], H);
        if (folded) {
            folded_input_backward(m, b, G); // also the embeddings' gradients
        } else {
            const real *x = l == 0 ? a->x0 : (a->dropout_on ? a->xin[l] : a->hout[l - 1]);
            gemm(1, 0, 4 * H, In, T * B, 1, G, 4 * H, x, In, 1, m->g.w_ih[l], In);
        }
    }
    if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, l);
    // d input (TB, I) = dG (TB, 4H) W_ih (4H, I).
    if (!folded && !dx_steps)
        gemm(0, 0, T * B, In, 4 * H, 1, G, 4 * H, m->p.w_ih[l], In, 0, dx, In);
}

void model_backward(Model *m, const Batch *b, const BackwardHooks *hooks) {
    const ModelShape *s = &m->shape;
    Activations *a = &m->act;
    const int TB = b->window * b->lanes, H = s->hidden, O = model_outputs(s);
    const int L = s->layers, I0 = model_input_width(s);
    // Heads: dW_head (O, H) += dy^T (O, TB) h_top (TB, H); dh_top (TB, H) = dy (TB, O) W_head.
    const real *htop = a->dropout_out ? a->htop : a->hout[L - 1];
    real *dH = a->dbuf[0], *dX = a->dbuf[1];
    if (m->head_tiled) {
        head_tiled_backward(m, b, htop, dH); // the head's gradients and dH together
        if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, L);
    } else {
        if (!m->skip_param_grads && !m->input_grad_only) {
            gemm(1, 0, O, H, TB, 1, a->dy, O, htop, H, 1, m->g.w_head, H);
            add_column_sums(m->g.b_head, a->dy, TB, O);
        }
        if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, L);
        gemm(0, 0, TB, H, O, 1, a->dy, O, m->p.w_head, H, 0, dH, H);
    }
    if (a->dropout_out)
        for (size_t i = 0; i < (size_t)TB * H; i++) dH[i] *= a->mask_out[i];
    for (int l = L - 1; l >= 0; l--) {
        lstm_layer_backward(m, b, l, dH, dX, hooks);
        if (l > 0) {
            if (a->dropout_on) {
                const real *mk = a->mask[l];
                for (size_t i = 0; i < (size_t)TB * H; i++) dX[i] *= mk[i];
            }
            real *tmp = dH;
            dH = dX, dX = tmp;
        }
    }
    if (m->skip_param_grads) return;
    if (a->folded) { // the embeddings' gradients came with layer 0's
        if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, -1);
        return;
    }
    a->dx0 = dX; // (TB, I0)
    if (a->dropout_in) // d loss / d x0 before dropout
        for (size_t i = 0; i < (size_t)TB * I0; i++) dX[i] *= a->mask_in[i];
    const int Ea = s->action_embed, Ec = s->cat_embed, C = s->n_cat, D = s->n_dense;
    if (m->want_input_grad)
        for (int r = 0; r < TB; r++)
            memcpy(a->d_dense + (size_t)r * D, dX + (size_t)r * I0 + (I0 - D),
                   sizeof(real) * (size_t)D);
    // Embeddings: scatter-add the input gradient rows (unless the inputs were not rows of
    // the embeddings, see input_given).
    for (int r = 0; r < TB && !m->input_given; r++) {
        const real *d = dX + (size_t)r * I0;
        real *ga = m->g.action_emb + (size_t)b->action[r] * Ea;
        for (int j = 0; j < Ea; j++) ga[j] += d[j];
        d += Ea;
        for (int c = 0; c < C; c++) {
            real *gc = m->g.cat_emb[c] + (size_t)b->cat[(size_t)r * C + c] * Ec;
            for (int j = 0; j < Ec; j++) gc[j] += d[j];
            d += Ec;
        }
    }
    if (hooks && hooks->bucket_ready) hooks->bucket_ready(hooks->ctx, -1);
}

double model_train_flops_per_event(const ModelShape *s) {
    double H = s->hidden, f = 0;
    for (int l = 0; l < s->layers; l++) f += 2.0 * (layer_input_width(s, l) + H) * 4 * H;
    f += 2.0 * H * model_outputs(s);
    return 3 * f;
}

const char *model_blas_setup(void) {
    static char info[128];
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (!env || !*env) openblas_set_num_threads(1);
    snprintf(info, sizeof info, "OpenBLAS %s kernels, %d thread%s%s; %s kernels",
             openblas_get_corename(), openblas_get_num_threads(),
             openblas_get_num_threads() == 1 ? "" : "s",
             getenv("OPENBLAS_CORETYPE") ? "" : " (OPENBLAS_CORETYPE unset)", kernels()->name);
    return info;
}
