// gradsync.c: see gradsync.h.
#include "gradsync.h"

#include <string.h>

#include "comm.h"
#include "optim.h"
#include "util.h"

#define MAX_BUCKETS 1024

void gradsync_init(GradSync *gs, Model *m, double bucket_mb, int header_len) {
    memset(gs, 0, sizeof *gs);
    gs->model = m;
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(&m->shape, ti);
    const int L = m->shape.layers;
    size_t max_elems = (size_t)(bucket_mb * 1048576.0 / sizeof(float));
    if (max_elems < 1024) max_elems = 1024;
    size_t offs[MAX_BUCKETS], counts[MAX_BUCKETS];
    int nb = 0;
    for (int layer = L; layer >= -1; layer--) {
        size_t lo = (size_t)-1, hi = 0;
        for (int k = 0; k < nt; k++)
            if (ti[k].layer == layer) {
                lo = ti[k].offset < lo ? ti[k].offset : lo;
                hi = ti[k].offset + ti[k].count > hi ? ti[k].offset + ti[k].count : hi;
            }
        int g = gs->n_groups++;
        gs->group_of_layer[layer + 1] = g;
        gs->group_off[g] = lo, gs->group_count[g] = hi - lo;
        gs->group_first[g] = nb;
        for (size_t o = lo; o < hi; o += max_elems) {
            if (nb >= MAX_BUCKETS) fatal("comm.bucket_mb=%g makes too many buckets", bucket_mb);
            offs[nb] = o;
            counts[nb++] = (hi - o) < max_elems ? hi - o : max_elems;
        }
        gs->group_n[g] = nb - gs->group_first[g];
    }
    gs->reducer = comm_reducer_create(m->grads, nb, offs, counts, header_len);
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
