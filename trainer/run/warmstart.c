// warmstart.c: see warmstart.h.
#include "warmstart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

// The keys whose values differ between the checkpoint's model (a) and this one (b), into err.
static int check_arch(const LoadedCheckpoint *ck, const DataMeta *meta, const ModelShape *b,
                      char *err, size_t errlen) {
    const ModelShape *a = &ck->d.shape;
    StrBuf sb = {0};
#define DIFF(cond, key, va, vb)                                                                    \
    if (cond) sb_appendf(&sb, "%s%s (%d there, %d here)", sb.len ? ", " : "", key, (int)(va), (int)(vb))
    DIFF(a->hidden != b->hidden, "model.hidden", a->hidden, b->hidden);
    DIFF(a->layers != b->layers, "model.layers", a->layers, b->layers);
    DIFF(a->action_embed != b->action_embed, "model.action_embed", a->action_embed, b->action_embed);
    DIFF(a->n_cat != b->n_cat, "data.categorical_cols", a->n_cat, b->n_cat);
    DIFF(a->n_cat && b->n_cat && a->cat_embed != b->cat_embed, "model.cat_embed", a->cat_embed,
         b->cat_embed);
    DIFF(a->engagement != b->engagement, "model.engagement_head", a->engagement, b->engagement);
    DIFF(ck->meta.n_num != meta->n_num, "data.numeric_cols", ck->meta.n_num, meta->n_num);
    DIFF(ck->meta.n_num == meta->n_num && a->n_dense != b->n_dense, "data.time_unit", a->n_dense,
         b->n_dense);
#undef DIFF
    for (uint32_t c = 1; a->n_cat == b->n_cat && c <= meta->n_cat + meta->n_num; c++)
        if (ck->meta.n_num == meta->n_num && strcmp(ck->meta.column[c], meta->column[c]) != 0)
            sb_appendf(&sb, "%s%s ('%s' there, '%s' here)", sb.len ? ", " : "",
                       c <= meta->n_cat ? "data.categorical_cols" : "data.numeric_cols",
                       ck->meta.column[c], meta->column[c]);
    int rc = sb.len ? -1 : 0;
    if (rc) snprintf(err, errlen, "its architecture differs: %s", sb.data);
    sb_free(&sb);
    return rc;
}

// map[j] = the checkpoint's id of this data's value j (0 = <unk> -> 0), -1 when new.
static int *vocab_map(const DataMeta *old, const DataMeta *cur, int v, WarmStartCounts *n) {
    int *map = xmalloc(sizeof(int) * (size_t)cur->vocab_size[v]);
    map[0] = 0;
    char *seen = xcalloc((size_t)old->vocab_size[v] + 1, 1);
    for (int j = 1; j < cur->vocab_size[v]; j++) {
        map[j] = -1;
        for (int i = 1; i < old->vocab_size[v] && map[j] < 0; i++)
            if (strcmp(old->vocab[v][i], cur->vocab[v][j]) == 0) map[j] = i, seen[i] = 1;
        if (map[j] < 0) n->added[v]++; else n->kept[v]++;
    }
    for (int i = 1; i < old->vocab_size[v]; i++) n->dropped[v] += !seen[i];
    free(seen);
    return map;
}

// Rows of one tensor: row r of the new one from row map[r] of the old (-1: left as is).
static void copy_rows(float *dst, const float *src, const int *map, int rows, int cols) {
    for (int r = 0; r < rows; r++)
        if (map[r] >= 0)
            memcpy(dst + (size_t)r * cols, src + (size_t)map[r] * cols, sizeof(float) * (size_t)cols);
}

// The row map of tensor `name` (rows of the new model), or NULL for an exact copy.
static int *tensor_map(const char *name, int rows, int old_rows, int *const *vmaps, int K, int K_old) {
    int *map = NULL;
    if (strcmp(name, "action_emb") == 0 || strncmp(name, "cat_emb.", 8) == 0) {
        const int v = name[0] == 'a' ? 0 : 1 + atoi(name + 8);
        map = xmalloc(sizeof(int) * (size_t)rows);
        memcpy(map, vmaps[v], sizeof(int) * (size_t)rows);
    } else if (strncmp(name, "head.", 5) == 0) { // action logits first, then the other heads
        map = xmalloc(sizeof(int) * (size_t)rows);
        for (int r = 0; r < rows; r++) map[r] = r < K ? vmaps[0][r] : r - K + K_old;
        for (int r = 0; r < rows; r++) map[r] = map[r] < old_rows ? map[r] : -1;
    }
    return map;
}

// z_old = ratio * z_new + shift for one standardised input column or output.
typedef struct {
    double ratio, shift;
} Affine;

static Affine affine(double m_old, double s_old, double m_new, double s_new) {
    return (Affine){s_new / s_old, (m_new - m_old) / s_old};
}

// Input column col of w (rows x cols) now receives z_new: fold z_old = ratio z_new + shift
// into the column and the bias (or, for the log-gap column, into the first-event column too:
// that input is 0 on a user's first event, where no shift may apply).
static void fold_input(float *w, float *bias, int rows, int cols, int col, int first_col, Affine f) {
    for (int r = 0; r < rows; r++) {
        float *row = w + (size_t)r * cols;
        const double add = (double)row[col] * f.shift;
        bias[r] = (float)(bias[r] + add);
        if (first_col >= 0) row[first_col] = (float)(row[first_col] - add);
        row[col] = (float)(row[col] * f.ratio);
    }
}

// An output predicted in old standard units: y_new = (y_old - shift) / ratio.
static void fold_output(float *w_row, float *b, int H, Affine f) {
    for (int k = 0; k < H; k++) w_row[k] = (float)(w_row[k] / f.ratio);
    *b = (float)((*b - f.shift) / f.ratio);
}

static void fold_stats(const DataMeta *old, const DataMeta *cur, const ModelShape *s, float *params) {
    ParamViews v;
    model_param_views(s, params, &v);
    const int H = s->hidden, I0 = model_input_width(s), K = s->n_actions;
    const int D0 = s->action_embed + s->n_cat * s->cat_embed, N = (int)cur->n_num;
    for (int k = 0; k < N; k++)
        fold_input(v.w_ih[0], v.bias[0], 4 * H, I0, D0 + k, -1,
                   affine(old->num_mean[k], old->num_std[k], cur->num_mean[k], cur->num_std[k]));
    const Affine g = affine(old->loggap_mean, old->loggap_std, cur->loggap_mean, cur->loggap_std);
    fold_input(v.w_ih[0], v.bias[0], 4 * H, I0, D0 + N, D0 + N + 1, g);
    fold_output(v.w_head + (size_t)K * H, v.b_head + K, H, g); // mu of log gap
    v.b_head[K + 1] = (float)(v.b_head[K + 1] - log(g.ratio)); // log(sigma / std)
    const int e = cur->engagement_index;
    if (s->engagement && e >= 0)
        fold_output(v.w_head + (size_t)(K + 2) * H, v.b_head + K + 2, H,
                    affine(old->num_mean[e], old->num_std[e], cur->num_mean[e], cur->num_std[e]));
}


// The q-mean of the kept rows of a (rows, cols) tensor into row j (q: kept counts / kept).
static void mean_row(float *t, int cols, int j, const int *map, const double *count, int rows,
                     double kept) {
    float *dst = t + (size_t)j * cols;
    for (int c = 0; c < cols; c++) dst[c] = 0;
    for (int r = 0; r < rows; r++) {
        if (map[r] < 0 || count[r] <= 0) continue;
        const float q = (float)(count[r] / kept);
        for (int c = 0; c < cols; c++) dst[c] += q * t[(size_t)r * cols + c];
    }
}

// The rows of vocabulary values new to the checkpoint (map[j] < 0), from this data's training
// counts: the embedding row is the frequency-weighted mean of the kept rows (an "average"
// value rather than noise as large as a trained row); for actions (w_head != NULL) the output
// row is that mean too, and the bias gives the new action its training share f_j next to the
// kept actions' (1 - F, F: all new actions): logit_j - logsumexp(kept logits) = log(f_j / (1 -
// F)), with logsumexp(z) ~ sum_k q_k z_k + H(q) (exact where the model predicts q).
static void init_new_rows(float *emb, int E, float *w_head, float *b_head, int H, const int *map,
                          const double *count, int rows) {
    double kept = 0, added = 0, entropy = 0, mean_bias = 0;
    for (int r = 0; r < rows; r++) *(map[r] >= 0 ? &kept : &added) += count[r];
    if (kept == 0) return; // nothing to average: the fresh initialisation stays
    for (int r = 0; r < rows; r++) {
        const double q = map[r] >= 0 ? count[r] / kept : 0;
        if (q > 0) entropy -= q * log(q), mean_bias += q * (w_head ? b_head[r] : 0);
    }
    const double total = kept + added;
    for (int j = 0; j < rows; j++) {
        if (map[j] >= 0) continue;
        mean_row(emb, E, j, map, count, rows, kept);
        if (!w_head) continue;
        mean_row(w_head, H, j, map, count, rows, kept);
        const double f = count[j] > 0 ? count[j] / total : 0.5 / total;
        b_head[j] = (float)(mean_bias + entropy + log(f / (kept / total)));
    }
}

// Appends the fresh rows of one tensor (map[r] < 0) as (offset, count) spans, merging
// neighbours.
static void add_fresh_spans(WarmStartCounts *n, size_t offset, const int *map, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        if (map[r] >= 0) continue;
        const uint64_t at = offset + (uint64_t)r * (uint64_t)cols;
        uint64_t *last = n->n_fresh ? n->fresh_spans + 2 * (n->n_fresh - 1) : NULL;
        if (last && last[0] + last[1] == at) {
            last[1] += (uint64_t)cols;
            continue;
        }
        if (n->n_fresh == n->cap_fresh) {
            n->cap_fresh = n->cap_fresh ? 2 * n->cap_fresh : 16;
            n->fresh_spans = xrealloc(n->fresh_spans, sizeof(uint64_t) * 2 * n->cap_fresh);
        }
        n->fresh_spans[2 * n->n_fresh] = at, n->fresh_spans[2 * n->n_fresh + 1] = (uint64_t)cols;
        n->n_fresh++;
    }
}

// Tensor tn of this model from tensor to of the checkpoint (rows through map, or a copy).
static void copy_tensor(const LoadedCheckpoint *ck, const TensorInfo *tn, const TensorInfo *to,
                        const int *map, float *params, float *adam_m, float *adam_v,
                        WarmStartCounts *counts) {
    if (!map) {
        memcpy(params + tn->offset, ck->params + to->offset, sizeof(float) * tn->count);
        if (adam_m) memcpy(adam_m + tn->offset, ck->adam_m + to->offset, sizeof(float) * tn->count);
        if (adam_v) memcpy(adam_v + tn->offset, ck->adam_v + to->offset, sizeof(float) * tn->count);
        return;
    }
    const int R = (int)tn->rows, C = (int)tn->cols;
    copy_rows(params + tn->offset, ck->params + to->offset, map, R, C);
    if (adam_m) copy_rows(adam_m + tn->offset, ck->adam_m + to->offset, map, R, C);
    if (adam_v) copy_rows(adam_v + tn->offset, ck->adam_v + to->offset, map, R, C);
    add_fresh_spans(counts, tn->offset, map, R, C);
}

int warmstart_apply(const LoadedCheckpoint *ck, const Config *cfg, const DataMeta *meta,
                    const ModelShape *shape, const double *const *value_counts, float *params,
                    float *adam_m, float *adam_v, WarmStartCounts *counts, char *err,
                    size_t errlen) {
    if (!ck->has_meta) {
        snprintf(err, errlen, "carries no vocabularies (written before train.init_from existed)");
        return -1;
    }
    if (check_arch(ck, meta, shape, err, errlen) != 0) return -1;
    memset(counts, 0, sizeof *counts);
    int *vmaps[1 + CFG_LIST_MAX];
    for (uint32_t v = 0; v <= meta->n_cat; v++) vmaps[v] = vocab_map(&ck->meta, meta, (int)v, counts);
    TensorInfo tn[MODEL_MAX_TENSORS], to[MODEL_MAX_TENSORS];
    const int nn = model_tensors(shape, tn), no = model_tensors(&ck->d.shape, to);
    int rc = 0;
    for (int i = 0; i < nn && rc == 0; i++) {
        int j = 0;
        while (j < no && strcmp(to[j].name, tn[i].name) != 0) j++;
        int *map = j < no ? tensor_map(tn[i].name, (int)tn[i].rows, (int)to[j].rows, vmaps,
                                       shape->n_actions, ck->d.shape.n_actions)
                          : NULL;
        if (j == no || (!map && (tn[i].count != to[j].count || tn[i].cols != to[j].cols)) ||
            (map && tn[i].cols != to[j].cols)) {
            snprintf(err, errlen, "tensor %s does not match this model's", tn[i].name);
            rc = -1;
        } else {
            copy_tensor(ck, &tn[i], &to[j], map, params, adam_m, adam_v, counts);
        }
        free(map);
    }
    ParamViews pv;
    model_param_views(shape, params, &pv);
    for (uint32_t v = 0; rc == 0 && v <= meta->n_cat; v++)
        init_new_rows(v ? pv.cat_emb[v - 1] : pv.action_emb,
                      (int)(v ? shape->cat_embed : shape->action_embed), v ? NULL : pv.w_head,
                      v ? NULL : pv.b_head, shape->hidden, vmaps[v], value_counts[v],
                      meta->vocab_size[v]);
    for (uint32_t v = 0; v <= meta->n_cat; v++) free(vmaps[v]);
    if (rc == 0 && strcmp(cfg->train.init_stats, "keep") == 0)
        fold_stats(&ck->meta, meta, shape, params);
    if (rc != 0) free(counts->fresh_spans), counts->fresh_spans = NULL, counts->n_fresh = 0;
    return rc;
}
