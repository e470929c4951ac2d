// gradsync.c: see gradsync.h.
#include "gradsync.h"

#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "optim.h"
#include "util.h"

// Elements per bucket for comm.bucket_mb (at least 1024: smaller buckets only add latency).
static size_t bucket_elems(double bucket_mb) {
    size_t n = (size_t)(bucket_mb * 1048576.0 / sizeof(float));
    return n < 1024 ? 1024 : n;
}

// The [lo, hi) element range of a layer's group of tensors.
static void group_range(const TensorInfo *ti, int nt, int layer, size_t *lo, size_t *hi) {
    *lo = (size_t)-1, *hi = 0;
    for (int k = 0; k < nt; k++)
        if (ti[k].layer == layer) {
            *lo = ti[k].offset < *lo ? ti[k].offset : *lo;
            *hi = ti[k].offset + ti[k].count > *hi ? ti[k].offset + ti[k].count : *hi;
        }
}

int gradsync_bucket_count(const ModelShape *s, double bucket_mb) {
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(s, ti);
    const size_t max_elems = bucket_elems(bucket_mb);
    long long nb = 0;
    for (int layer = s->layers; layer >= -1; layer--) {
        size_t lo, hi;
        group_range(ti, nt, layer, &lo, &hi);
        if (hi > lo) nb += (long long)((hi - lo + max_elems - 1) / max_elems);
    }
    return nb > GRADSYNC_MAX_BUCKETS ? GRADSYNC_MAX_BUCKETS + 1 : (int)nb;
}

void gradsync_init(GradSync *gs, Model *m, double bucket_mb, int header_len) {
    memset(gs, 0, sizeof *gs);
    gs->model = m;
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(&m->shape, ti);
    const int L = m->shape.layers;
    const size_t max_elems = bucket_elems(bucket_mb);
    const int max_nb = gradsync_bucket_count(&m->shape, bucket_mb);
    if (max_nb > GRADSYNC_MAX_BUCKETS)
        fatal("comm.bucket_mb=%g makes more than %d buckets", bucket_mb, GRADSYNC_MAX_BUCKETS);
    size_t *offs = xmalloc(sizeof(size_t) * (size_t)(max_nb + 1));
    size_t *counts = xmalloc(sizeof(size_t) * (size_t)(max_nb + 1));
    int nb = 0;
    for (int layer = L; layer >= -1; layer--) {
        size_t lo, hi;
        group_range(ti, nt, layer, &lo, &hi);
        int g = gs->n_groups++;
        gs->group_of_layer[layer + 1] = g;
        gs->group_off[g] = lo, gs->group_count[g] = hi - lo;
        gs->group_first[g] = nb;
        for (size_t o = lo; o < hi; o += max_elems) {
            offs[nb] = o;
            counts[nb++] = (hi - o) < max_elems ? hi - o : max_elems;
        }
        gs->group_n[g] = nb - gs->group_first[g];
    }
    gs->reducer = comm_reducer_create(m->grads, nb, offs, counts, header_len);
    free(offs);
    free(counts);
}

void gradsync_free(GradSync *gs) {
    comm_reducer_free(gs->reducer);
    gs->reducer = NULL;
}

static void on_bucket_ready(void *ctx, int layer) {
    GradSync *gs = ctx;
    int g = gs->group_of_layer[layer + 1];
    // The local sum of squares flags non-finite gradients before they mix with other ranks'.
    gs->local_sumsq += sum_squares(gs->model->grads + gs->group_off[g], gs->group_count[g]);
    for (int b = 0; b < gs->group_n[g]; b++)
        comm_reducer_start(gs->reducer, gs->group_first[g] + b);
}

static void on_progress(void *ctx) {
    comm_reducer_progress(((GradSync *)ctx)->reducer);
}

BackwardHooks gradsync_hooks(GradSync *gs) {
    gs->local_sumsq = 0;
    BackwardHooks h = {on_bucket_ready, on_progress, gs};
    return h;
}

void gradsync_finish(GradSync *gs, double *header) {
    comm_reducer_finish(gs->reducer, header);
}
