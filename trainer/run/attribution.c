// attribution.c: see attribution.h. Shapes as (rows, cols); a batch is time-major, row
// (t, lane) = t * lanes + lane.
#include "attribution.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

static int add_group(FeatureGroups *fg, const char *name) {
    for (int g = 0; g < fg->n_groups; g++)
        if (strcmp(fg->name[g], name) == 0) { // a column named like a fixed group
            snprintf(fg->name[fg->n_groups], sizeof fg->name[0], "column:%s", name);
            return fg->n_groups++;
        }
    snprintf(fg->name[fg->n_groups], sizeof fg->name[0], "%s", name);
    return fg->n_groups++;
}

void feature_groups_init(FeatureGroups *fg, const DataMeta *meta, const ModelShape *s) {
    memset(fg, 0, sizeof *fg);
    fg->fs = feature_spec(meta);
    const int I0 = model_input_width(s), C = s->n_cat, Ec = s->cat_embed;
    if (I0 > (int)(sizeof fg->col_group / sizeof fg->col_group[0]))
        fatal("explain: the model's input has %d columns, at most %d are supported", I0,
              (int)(sizeof fg->col_group / sizeof fg->col_group[0]));
    fg->n_cols = I0;
    fg->action_group = add_group(fg, "action");
    fg->gap_group = add_group(fg, "gap");
    fg->tod_group = fg->fs.calendar ? add_group(fg, "time_of_day") : -1;
    fg->dow_group = fg->fs.calendar ? add_group(fg, "day_of_week") : -1;
    for (int c = 0; c < C; c++) fg->cat_group[c] = add_group(fg, meta->column[1 + c]);
    for (int k = 0; k < fg->fs.n_num; k++) fg->num_group[k] = add_group(fg, meta->column[1 + C + k]);
    int col = 0;
    for (int j = 0; j < s->action_embed; j++) fg->col_group[col++] = fg->action_group;
    for (int c = 0; c < C; c++)
        for (int j = 0; j < Ec; j++) fg->col_group[col++] = fg->cat_group[c];
    // Dense: [numerics | log gap, first-event flag | sin, cos time of day | sin, cos day of week
    // | log1p gap (model.gap_input)].
    for (int k = 0; k < fg->fs.n_num; k++) fg->col_group[col++] = fg->num_group[k];
    fg->col_group[col++] = fg->gap_group;
    fg->col_group[col++] = fg->gap_group;
    for (int j = 0; j < 4 && fg->fs.calendar; j++)
        fg->col_group[col++] = j < 2 ? fg->tod_group : fg->dow_group;
    if (fg->fs.gap_input) fg->col_group[col++] = fg->gap_group; // log1p of the gap
    if (col != I0) fatal("explain: internal: %d input columns grouped, the model has %d", col, I0);
}

void attr_item_alloc(AttrItem *it, const ModelShape *s, int W, int n_groups) {
    memset(it, 0, sizeof *it);
    const size_t LH = (size_t)s->layers * (size_t)s->hidden;
    it->h0 = xcalloc(LH, sizeof(real));
    it->c0 = xcalloc(LH, sizeof(real));
    it->action = xcalloc((size_t)W, sizeof(int32_t));
    it->cat = xcalloc((size_t)W * (size_t)(s->n_cat ? s->n_cat : 1), sizeof(int32_t));
    it->dense = xcalloc((size_t)W * (size_t)(s->n_dense ? s->n_dense : 1), sizeof(real));
    it->time = xcalloc((size_t)W, sizeof(double));
    it->res.attr = xcalloc((size_t)W * (size_t)n_groups, sizeof(double));
    it->top_row = it->random_row = -1;
}

void attr_item_free(AttrItem *it) {
    free(it->h0), free(it->c0), free(it->action), free(it->cat), free(it->dense);
    free(it->time), free(it->res.attr);
    memset(it, 0, sizeof *it);
}

// The baseline row: mean of each embedding table over ids 1..V-1 (all ids when V = 1), then
// zeros for the dense columns.
static void baseline_row(const Model *m, real *row) {
    const ModelShape *s = &m->shape;
    memset(row, 0, sizeof(real) * (size_t)model_input_width(s));
    const real *tab[1 + MODEL_MAX_CAT];
    int rows[1 + MODEL_MAX_CAT], width[1 + MODEL_MAX_CAT], col = 0;
    tab[0] = m->p.action_emb, rows[0] = s->n_actions, width[0] = s->action_embed;
    for (int c = 0; c < s->n_cat; c++)
        tab[1 + c] = m->p.cat_emb[c], rows[1 + c] = s->cat_vocab[c], width[1 + c] = s->cat_embed;
    for (int f = 0; f < 1 + s->n_cat; f++) {
        int first = rows[f] > 1 ? 1 : 0;
        for (int j = 0; j < width[f]; j++) {
            double sum = 0;
            for (int v = first; v < rows[f]; v++) sum += tab[f][(size_t)v * width[f] + j];
            row[col + j] = (real)(sum / (rows[f] - first));
        }
        col += width[f];
    }
}

Attributor *attributor_create(const ModelShape *s, const float *params, const FeatureGroups *fg,
                              AttrKind kind, double loggap_mean, double loggap_std, int steps,
                              int max_steps, int lanes, int window, int max_items) {
    Attributor *at = xcalloc(1, sizeof *at);
    ModelShape sh = *s;
    sh.max_lanes = lanes, sh.window = window;
    at->m = model_create(&sh);
    for (size_t i = 0; i < at->m->n_params; i++) at->m->params[i] = (real)params[i];
    at->m->input_given = 1, at->m->input_grad_only = 1;
    at->fg = fg, at->kind = kind;
    at->loggap_mean = loggap_mean, at->loggap_std = loggap_std;
    at->steps = steps, at->max_steps = max_steps > steps ? max_steps : steps;
    at->max_items = max_items;
    const size_t I0 = (size_t)model_input_width(s), TB = (size_t)lanes * (size_t)window;
    at->base_row = xmalloc(sizeof(real) * I0);
    baseline_row(at->m, at->base_row);
    at->st = lane_state_alloc(&sh, lanes);
    at->keep = xcalloc(TB, 1);
    at->zeros = xcalloc(TB * (size_t)(s->n_cat ? s->n_cat : 1) + TB, sizeof(int32_t));
    at->gsum = xcalloc((size_t)max_items * (size_t)window * I0, sizeof(double));
    at->xbuf = xmalloc(sizeof(real) * (size_t)(3 * max_items) * (size_t)window * I0);
    at->scratch_dense = xmalloc(sizeof(real) * (size_t)window * (size_t)(s->n_dense + 1));
    at->scratch_ids = xmalloc(sizeof(int32_t) * (size_t)window * (size_t)(s->n_cat + 1));
    return at;
}

void attributor_free(Attributor *at) {
    if (!at) return;
    model_free(at->m);
    lane_state_free(&at->st);
    free(at->base_row), free(at->keep), free(at->zeros), free(at->gsum), free(at->xbuf);
    free(at->scratch_dense), free(at->scratch_ids);
    free(at);
}

// ---------------------------------------------------------------- one batch of lanes

// A lane: window rows x (n, I0) of an item at path point alpha (alpha = 1: x itself, the
// deletion lanes), and where its gradient goes (gsum, weight; gsum NULL: forward only).
typedef struct {
    const AttrItem *it;
    const real *x;
    int n;
    double alpha, weight;
    double *gsum; // (n, I0)
    double *f;    // receives f at the lane's last event (or NULL)
} Lane;

// f of one output row y (O) and, if dy != NULL, d f / d y into dy.
static double target_value(const Attributor *at, const real *y, int cls, real *dy) {
    const int K = at->m->shape.n_actions;
    if (at->kind == ATTR_GAP) {
        if (dy) dy[K] = (real)at->loggap_std;
        return at->loggap_mean + at->loggap_std * (double)y[K];
    }
    double mx = y[0], z = 0;
    for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    for (int k = 0; k < K; k++) z += exp((double)y[k] - mx);
    const double lse = mx + log(z);
    if (dy) {
        for (int k = 0; k < K; k++) dy[k] = (real)(-exp((double)y[k] - lse));
        dy[cls] += 1;
    }
    return (double)y[cls] - lse;
}

// Fills x0, keep and the carried state of nl lanes for a window of T steps, in a batch of
// nb >= nl lanes (the rest: padding, reset at every step).
static void build_lanes(Attributor *at, const Lane *ln, int nl, int nb, int T) {
    Model *m = at->m;
    const ModelShape *s = &m->shape;
    const int I0 = model_input_width(s), H = s->hidden;
    const real *base = at->base_row;
    for (int k = 0; k < nb; k++) {
        const Lane *l = k < nl ? &ln[k] : NULL;
        for (int t = 0; t < T; t++) {
            real *x = m->act.x0 + ((size_t)t * nb + k) * I0;
            at->keep[(size_t)t * nb + k] = l && t < l->n && (t > 0 || l->it->carried);
            if (!l || t >= l->n) {
                memset(x, 0, sizeof(real) * (size_t)I0);
                continue;
            }
            const real *src = l->x + (size_t)t * I0;
            if (l->alpha == 1)
                memcpy(x, src, sizeof(real) * (size_t)I0);
            else
                for (int j = 0; j < I0; j++)
                    x[j] = (real)((double)base[j] + l->alpha * ((double)src[j] - (double)base[j]));
        }
        for (int L = 0; L < s->layers && l; L++) {
            memcpy(at->st.h[L] + (size_t)k * H, l->it->h0 + (size_t)L * H, sizeof(real) * H);
            memcpy(at->st.c[L] + (size_t)k * H, l->it->c0 + (size_t)L * H, sizeof(real) * H);
        }
    }
}

// Forward over nl lanes; with grad, backward from d f / d y and the weighted input
// gradients added to each lane's gsum. The batch is padded to a multiple of 8 lanes, where
// the recurrent GEMM has its fast kernel (nn/kernels/rgemm.h).
static void run_lanes(Attributor *at, const Lane *ln, int nl, int grad) {
    Model *m = at->m;
    const ModelShape *s = &m->shape;
    const int I0 = model_input_width(s), O = model_outputs(s);
    const int nb = (nl + 7) / 8 * 8 <= s->max_lanes ? (nl + 7) / 8 * 8 : nl;
    int T = 1;
    for (int k = 0; k < nl; k++) T = ln[k].n > T ? ln[k].n : T;
    build_lanes(at, ln, nl, nb, T);
    Batch b = {.lanes = nb, .window = T, .action = at->zeros, .cat = at->zeros + (size_t)nb * T,
               .keep = at->keep};
    model_forward(m, &b, &at->st, NULL, NULL, NULL, 0);
    if (grad) memset(m->act.dy, 0, sizeof(real) * (size_t)T * nb * O);
    for (int k = 0; k < nl; k++) {
        const size_t r = (size_t)(ln[k].n - 1) * nb + k;
        double f = target_value(at, m->act.y + r * O, ln[k].it->cls,
                                grad ? m->act.dy + r * O : NULL);
        if (ln[k].f) *ln[k].f = f;
    }
    if (!grad) return;
    at->lane_steps += (int64_t)nl * T;
    model_backward(m, &b, NULL); // input gradients only (input_grad_only)
    const real *dx = m->act.dx0; // (T, nb, I0)
    for (int k = 0; k < nl; k++)
        for (int t = 0; t < ln[k].n; t++) {
            const real *d = dx + ((size_t)t * nb + k) * I0;
            double *g = ln[k].gsum + (size_t)t * I0;
            for (int j = 0; j < I0; j++) g[j] += ln[k].weight * (double)d[j];
        }
}

// Runs a list of lanes in batches of at most the model's lanes.
static void run_all(Attributor *at, const Lane *ln, int n, int grad) {
    const int cap = at->m->shape.max_lanes;
    for (int i = 0; i < n; i += cap) run_lanes(at, ln + i, n - i < cap ? n - i : cap, grad);
}

// ---------------------------------------------------------------- integrated gradients

// attr = (x - x') G / m per column, summed per group; the completeness error.
static void finalize(const Attributor *at, const AttrItem *it, const real *x, const double *G,
                     int m, AttrResult *res) {
    const int I0 = model_input_width(&at->m->shape), NG = at->fg->n_groups;
    memset(res->attr, 0, sizeof(double) * (size_t)it->n * NG);
    double sum = 0;
    for (int t = 0; t < it->n; t++)
        for (int j = 0; j < I0; j++) {
            size_t o = (size_t)t * I0 + j;
            double a = ((double)x[o] - (double)at->base_row[j]) * G[o] / m;
            res->attr[(size_t)t * NG + at->fg->col_group[j]] += a;
            sum += a;
        }
    res->attr_sum = sum, res->steps = m;
    const double delta = res->f_input - res->f_baseline;
    res->rel_err = fabs(sum - delta) / fmax(fabs(delta), ATTR_REL_FLOOR);
}

// The window of it without row q into (act, cat, dense): the event after q now follows the
// one before q (or the event before the window; or it becomes the user's first event).
static void remove_event(const Attributor *at, const AttrItem *it, int q, int32_t *act,
                         int32_t *cat, real *dense) {
    const FeatureSpec *fs = &at->fg->fs;
    const int C = at->m->shape.n_cat, D = at->m->shape.n_dense;
    for (int t = 0, o = 0; t < it->n; t++) {
        if (t == q) continue;
        act[o] = it->action[t];
        memcpy(cat + (size_t)o * C, it->cat + (size_t)t * C, sizeof(int32_t) * (size_t)C);
        memcpy(dense + (size_t)o * D, it->dense + (size_t)t * D, sizeof(real) * (size_t)D);
        o++;
    }
    if (q == it->n - 1) return;
    real *d = dense + (size_t)q * D + fs->n_num; // [log gap, first-event flag] of old row q + 1
    if (q == 0 && !it->carried) {
        d[0] = 0, d[1] = 1;
        return;
    }
    double prev = q > 0 ? it->time[q - 1] : it->prev_time;
    double gap = it->time[q + 1] - prev;
    d[0] = (real)((log(gap + fs->gap_offset) - fs->loggap_mean) / fs->loggap_std);
    d[1] = 0;
}

static void input_rows_of(Attributor *at, int n, const int32_t *act, const int32_t *cat,
                          const real *dense, real *x) {
    Batch b = {.lanes = 1, .window = n, .action = act, .cat = cat, .dense = dense};
    model_input_rows(at->m, &b, x);
}

// Removes the top-attributed event and a random other one; measures |f change|.
static void deletion_check(Attributor *at, AttrItem **items, int n, AttrResult **res) {
    const int I0 = model_input_width(&at->m->shape), W = at->m->shape.window;
    const int NG = at->fg->n_groups, C = at->m->shape.n_cat;
    Lane *ln = xcalloc((size_t)(2 * n + 1), sizeof(Lane));
    double *f = xcalloc((size_t)(2 * n + 1), sizeof(double));
    int nl = 0;
    for (int i = 0; i < n; i++) {
        AttrItem *it = items[i];
        it->top_row = it->random_row = -1;
        it->del_top = it->del_random = NAN;
        if (it->n < 2) continue;
        double best = -1;
        for (int t = 0; t < it->n; t++) {
            double e = 0;
            for (int g = 0; g < NG; g++) e += res[i]->attr[(size_t)t * NG + g];
            if (fabs(e) > best) best = fabs(e), it->top_row = t;
        }
        Rng r = rng_make(it->seed, 0xde1e7e);
        it->random_row = (int)rng_below(&r, (uint64_t)(it->n - 1));
        if (it->random_row >= it->top_row) it->random_row++;
        for (int w = 0; w < 2; w++) {
            real *x = at->xbuf + ((size_t)at->max_items + 2 * (size_t)i + w) * W * I0;
            int32_t *act = at->scratch_ids, *cat = at->scratch_ids + W;
            remove_event(at, it, w ? it->random_row : it->top_row, act, cat, at->scratch_dense);
            input_rows_of(at, it->n - 1, act, C ? cat : act, at->scratch_dense, x);
            ln[nl] = (Lane){.it = it, .x = x, .n = it->n - 1, .alpha = 1, .f = &f[nl]};
            nl++;
        }
    }
    run_all(at, ln, nl, 0);
    for (int i = 0, k = 0; i < n; i++) {
        if (items[i]->top_row < 0) continue;
        items[i]->del_top = fabs(f[k++] - res[i]->f_input);
        items[i]->del_random = fabs(f[k++] - res[i]->f_input);
    }
    free(ln), free(f);
}

void attributor_run(Attributor *at, AttrItem **items, int n, int deletion, AttrResult **out) {
    if (n > at->max_items) fatal("explain: internal: %d items, at most %d", n, at->max_items);
    const int I0 = model_input_width(&at->m->shape), W = at->m->shape.window;
    AttrResult **res = xmalloc(sizeof(AttrResult *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        AttrItem *it = items[i];
        if (it->n < 1 || it->n > W) fatal("explain: internal: window of %d events", it->n);
        res[i] = out ? out[i] : &it->res;
        input_rows_of(at, it->n, it->action, it->cat, it->dense, at->xbuf + (size_t)i * W * I0);
    }
    memset(at->gsum, 0, sizeof(double) * (size_t)n * W * I0);
    Lane *ln = xmalloc(sizeof(Lane) * (size_t)n * (size_t)(at->max_steps + 1));
    int *steps = xmalloc(sizeof(int) * (size_t)n), *redo = xcalloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) steps[i] = at->steps, redo[i] = 1;
    // First pass: points k/m, k = 0..m (trapezoid weights); then, for each target still
    // above the tolerance, the midpoints of twice the steps (the points it has are reused).
    for (int pass = 0;; pass++) {
        int nl = 0;
        for (int i = 0; i < n; i++) {
            if (!redo[i]) continue;
            const int m = steps[i];
            const real *x = at->xbuf + (size_t)i * W * I0;
            double *G = at->gsum + (size_t)i * W * I0;
            for (int k = pass ? 1 : 0; k <= m; k += pass ? 2 : 1)
                ln[nl++] = (Lane){.it = items[i], .x = x, .n = items[i]->n,
                                  .alpha = (double)k / m,
                                  .weight = (k == 0 || k == m) && !pass ? 0.5 : 1,
                                  .gsum = G,
                                  .f = pass ? NULL
                                       : k == 0 ? &res[i]->f_baseline
                                       : k == m ? &res[i]->f_input
                                                : NULL};
        }
        if (nl == 0) break;
        run_all(at, ln, nl, 1);
        for (int i = 0; i < n; i++) {
            if (!redo[i]) continue;
            finalize(at, items[i], at->xbuf + (size_t)i * W * I0, at->gsum + (size_t)i * W * I0,
                     steps[i], res[i]);
            redo[i] = res[i]->rel_err > ATTR_TOLERANCE && 2 * steps[i] <= at->max_steps;
            if (redo[i]) steps[i] *= 2;
        }
    }
    if (deletion) deletion_check(at, items, n, res);
    free(ln), free(steps), free(redo), free(res);
}

// ---------------------------------------------------------------- sanity

static int by_value(const void *a, const void *b) {
    double x = **(const double *const *)a, y = **(const double *const *)b;
    return x < y ? -1 : x > y;
}

static void ranks_abs(const double *v, int n, double *rank, double *absv, const double **ptr) {
    for (int i = 0; i < n; i++) absv[i] = fabs(v[i]), ptr[i] = &absv[i];
    qsort(ptr, (size_t)n, sizeof *ptr, by_value);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && *ptr[j + 1] == *ptr[i]) j++;
        for (int k = i; k <= j; k++) rank[ptr[k] - absv] = 0.5 * (i + j);
        i = j + 1;
    }
}

double spearman_abs(const double *a, const double *b, int n) {
    if (n < 2) return NAN;
    double *ra = xmalloc(sizeof(double) * (size_t)n * 4), *rb = ra + n, *abs_a = rb + n,
           *abs_b = abs_a + n;
    const double **ptr = xmalloc(sizeof(double *) * (size_t)n);
    ranks_abs(a, n, ra, abs_a, ptr);
    ranks_abs(b, n, rb, abs_b, ptr);
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) ma += ra[i], mb += rb[i];
    ma /= n, mb /= n;
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma), sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra), free(ptr);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}
