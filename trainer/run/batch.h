// batch.h: lanes of user streams and the truncated-BPTT windows built from them.
//
// Training: each virtual shard feeds batch_size / V lanes. A shard's users are shuffled
// per epoch of that shard (the permutation depends only on the run seed, the shard and the
// epoch) and its lanes take the next user whenever theirs ends, so the stream of every lane
// is a function of the data and the seed alone, never of the number of ranks. A lane whose
// user ends inside a window starts the next user at once, with its (h, c) reset there.
// Evaluation: a rank's users are dealt to its lanes in order, each scored exactly once; a
// lane with no user left is padded (no targets) until every lane is done.
//
// Per position the model gets: the event's action and categorical ids, and dense features
// [normalised numerics | normalised log(gap + delta) since the user's previous event | first
// event flag | sin, cos of time of day | sin, cos of day of week] (calendar features only
// when data.time_unit is known); targets are the next event's action, log(gap + delta) and
// normalised engagement.
#pragma once
#include <stdint.h>

#include "dataset.h"
#include "model.h"

typedef struct {
    int32_t user; // index into the shard's user table (eval: into the rank's user list); -1: none
    int32_t pos;  // next input event within the user
} LaneCursor;

typedef struct {
    int64_t epoch; // completed passes over this shard's users
    int64_t next;  // next position in this epoch's permutation
} ShardCursor;

typedef struct {
    int n_dense, n_num, n_cat, calendar, engagement_index;
    double unit_seconds, gap_offset, loggap_mean, loggap_std;
    int log1p;
    double num_mean[CFG_LIST_MAX], num_std[CFG_LIST_MAX];
    int gap_input; // model.gap_input: the last dense input is log1p(previous gap / gap_scale)
    double gap_scale; // exp(loggap_mean): the train set's geometric-mean gap (+ delta), time units
} FeatureSpec;

FeatureSpec feature_spec(const DataMeta *meta);

// Buffers of one batch (time-major) and the Batch view the model reads.
typedef struct {
    int max_lanes, window, n_cat, n_dense;
    int32_t *action, *cat, *tgt_action;
    real *dense, *tgt_loggap, *tgt_eng;
    uint8_t *keep;
    uint64_t *lane_id;
    int32_t *slot_user, *slot_pos; // (T, B) eval streams: rank-local user and event; -1: pad
    Batch view;
    int64_t n_targets;
} BatchBuf;

void batchbuf_init(BatchBuf *bb, int max_lanes, int window, int n_cat, int n_dense);
// The inputs of slot r (= t * lanes + lane) from one event record (shards.h layout);
// prev_time: the user's previous event time, NAN for its first event (state reset).
// Targets are not touched. Shared by the batch streams and `trainer serve`.
void batch_fill_input(BatchBuf *bb, const FeatureSpec *fs, const uint8_t *event, double prev_time,
                      size_t r);
// The time inputs of an event at time t_e (after the numeric columns in a dense row): the
// normalised log gap and first-event flag, calendar features, the gap input. prev_time: NAN
// for a user's first event. (Also for events the model predicted, run/nextk.c.)
void feature_time_inputs(const FeatureSpec *fs, real *d, double t_e, double prev_time);
// A numeric column's value as the model sees it (transform, train-set normalisation).
double feature_norm_num(const FeatureSpec *fs, int k, double x);
void batchbuf_free(BatchBuf *bb);

// One user's window (DP-SGD: a lane holds one user only): local shard, user index, first
// event, and the global lane id that dropout draws depend on.
typedef struct {
    int32_t shard, user, start;
    uint64_t lane_id;
} UserWindow;
// Lanes [0, n) of bb get one window each: window positions from event `start` on while the
// user has targets, padded (no targets) after. The lanes' (h, c) should start from zero.
void batch_fill_windows(BatchBuf *bb, const Dataset *ds, int split, int n, const UserWindow *w);

// Training stream over this rank's shards of the train split.
typedef struct {
    const Dataset *ds;
    FeatureSpec fs;
    uint64_t seed;
    int lanes_per_shard, n_lanes; // n_lanes = n_shards * lanes_per_shard (this rank)
    int first_lane;               // global index of this rank's first lane
    ShardCursor *shard;           // this rank's shards
    LaneCursor *lane;             // this rank's lanes
    uint32_t **perm;              // current permutation per local shard
    int64_t *perm_epoch;          // which epoch each perm was built for
} TrainStream;

void train_stream_init(TrainStream *ts, const Dataset *ds, int lanes_per_shard, uint64_t seed);
void train_stream_free(TrainStream *ts);
// Fills bb with the next window of lanes [first, first + n) (local indices).
void train_stream_next(TrainStream *ts, int first, int n, BatchBuf *bb);
// Events of the train split consumed per epoch (all ranks), for progress reports.
double train_stream_epoch(const TrainStream *ts);

// Evaluation stream over this rank's users of one split.
typedef struct {
    const Dataset *ds;
    FeatureSpec fs;
    int split, n_lanes;
    int include_last; // predict: also feed each user's last event (it has no target)
    int64_t n_users, next_user;
    int32_t *user_shard, *user_index; // rank-local user list
    LaneCursor *lane;
} EvalStream;

void eval_stream_init(EvalStream *es, const Dataset *ds, int split, int n_lanes, int include_last);
// The user behind a rank-local user index of the stream.
const ShardUser *eval_stream_user(const EvalStream *es, int32_t user, const Shard **shard);
void eval_stream_free(EvalStream *es);
// Fills bb with the next window; returns 0 when every user has been scored (bb untouched).
int eval_stream_next(EvalStream *es, BatchBuf *bb);
