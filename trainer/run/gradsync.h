// gradsync.h: the gradient allreduce of a model, in buckets that start as backward finishes
// each layer (so communication overlaps the rest of backward), plus the step header.
//
// The model's tensors are grouped by layer (head, layer L-1, ..., layer 0, embeddings: the
// order backward finishes them); each group is cut into buckets of at most comm.bucket_mb.
// hooks() gives the BackwardHooks that start a group's buckets and let them progress.
#pragma once
#include "model.h"

typedef struct GradReducer GradReducer;

typedef struct {
    Model *model;
    GradReducer *reducer;
    int n_groups;
    int group_first[MODEL_MAX_LAYERS + 2], group_n[MODEL_MAX_LAYERS + 2];
    int group_of_layer[MODEL_MAX_LAYERS + 2]; // by layer + 1 (embeddings are layer -1)
    size_t group_off[MODEL_MAX_LAYERS + 2], group_count[MODEL_MAX_LAYERS + 2];
    double local_sumsq; // of this rank's gradient sums since the last reset (non-finite check)
} GradSync;

// Buckets per step are bounded so that a tiny comm.bucket_mb on a large model is refused at
// set-up (exit 2 naming the key) rather than flooding MPI with requests.
#define GRADSYNC_MAX_BUCKETS 4096
// Buckets the model's gradients need at this size (GRADSYNC_MAX_BUCKETS + 1 when too many).
int gradsync_bucket_count(const ModelShape *s, double bucket_mb);
void gradsync_init(GradSync *gs, Model *m, double bucket_mb, int header_len);
void gradsync_free(GradSync *gs);
BackwardHooks gradsync_hooks(GradSync *gs);
// Waits for every bucket and reduces the header (all but the last two entries summed, the
// last two with MAX); the model's gradients then hold the global sums.
void gradsync_finish(GradSync *gs, double *header);
