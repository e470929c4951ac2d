// user_features.h: one feature vector per user, for segmentation (`trainer segment`, `predict
// --segments`).
//
// Model features: the top LSTM layer's hidden state h_t (t = each event of the user's whole
// history, fed through the model by the scoring pass), summarised per user as
//   last       h after the user's last event              (H values)
//   mean       the mean of h over all the user's events    (H values)
//   last+mean  both                                        (2H values)
// Accumulated per lane while the pass runs (memory: lanes x dim, not users x events); a
// user's vector is complete once the pass has fed its last event.
//
// Handmade features (what an analyst builds without a model), from the user's events:
//   action=<a>       share of the user's events with each action      (K values)
//   hour=<h>         share of events in each hour of day, UTC          (24, when time has a unit)
//   weekday=<d>      share of events on each day of week               (7, when time has a unit)
//   <col>=<v>        share of events with each value of every categorical column
//   log_gap_mean, log_gap_std   of log(gap + model.gap_offset) between consecutive events
//   <num>_mean, <num>_std       of every numeric column (after data.numeric_transform)
//   log_events       log of the user's event count
#pragma once
#include <stdint.h>

#include "batch.h"
#include "model.h"
#include "shards.h"

enum { EMB_LAST, EMB_MEAN, EMB_LAST_MEAN, N_EMBEDDINGS };
extern const char *const EMBEDDING_NAMES[N_EMBEDDINGS]; // "last", "mean", "last+mean"
int embedding_from_name(const char *name);                // -1 if unknown

typedef struct {
    int embedding, hidden, dim, lanes;
    double *acc; // (lanes, dim): the lane's current user so far
} ModelEmbedder;

void model_embedder_init(ModelEmbedder *e, const ModelShape *s, int lanes, int embedding);
void model_embedder_free(ModelEmbedder *e);
// Called once a user's vector is complete: user = rank-local index of the EvalStream, slot =
// the (t, b) slot of its last event in the window.
typedef void (*EmbedDone)(void *ctx, int32_t user, const ShardUser *u, const Shard *sh,
                          const float *vec, int slot);
// Folds the window just run through the model (its top-layer states in m->act) into the
// lanes' accumulators; calls done for every user whose last event was in this window.
void model_embedder_visit(ModelEmbedder *e, const Model *m, const EvalStream *es,
                          const BatchBuf *bb, EmbedDone done, void *ctx);

typedef struct {
    int dim, n_actions, calendar, n_cat, n_num;
    int cat_vocab[CFG_LIST_MAX];
    int log1p;
    double unit_seconds, gap_offset;
    char (*names)[64]; // (dim) feature names
    // Offsets of the groups in a vector (-1: absent).
    int off_action, off_hour, off_weekday, off_cat[CFG_LIST_MAX], off_gap, off_num, off_events;
} HandmadeSpec;

void handmade_init(HandmadeSpec *h, const DataMeta *meta);
void handmade_free(HandmadeSpec *h);
// The features of one user (out: dim floats).
void handmade_user(const HandmadeSpec *h, const Shard *sh, const ShardUser *u, float *out);
