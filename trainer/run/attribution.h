// attribution.h: integrated gradients (Sundararajan et al. 2017) of one model output with
// respect to the inputs of every event in a window, summed per feature group.
//
// The explained output f of the prediction made after the window's last event is one of
//   ATTR_PREDICTED / ATTR_ACTION  log p(class) of the next action (class: the model's top-1
//                                 prediction, or a named action), in nats;
//   ATTR_GAP                      the predicted median of log(gap + delta) of the next gap
//                                 (the log-normal's mu), in log time units.
// Inputs are the layer-0 rows x of the window's events (embedded action, embedded
// categoricals, dense features), as the model sees them. Baseline x': per event, the mean
// of each embedding table over its known values (ids 1..V-1; id 0 is "<unk>") and 0 for
// every dense feature (a normalised numeric or log gap of 0 is the train-set mean; the
// first-event flag off; sin = cos = 0 of time of day / week: no calendar information).
// Events before the window act through the carried state, which input and baseline share.
//
// Path: x(a) = x' + a (x - x'), a = k/m, k = 0..m, trapezoid rule, so with g(a) = df/dx:
// attr_ij = (x_ij - x'_ij) * mean_trapezoid(g_ij) and the sum of attributions approximates
// f(x) - f(x') (completeness). The m + 1 path points of a target are lanes of one batch
// (several targets per batch), one forward and one backward of the model each: the model's
// own backward, started from d f / d y (see model.h), with input_given so that act.dx0 is
// d f / d x0. Relative completeness error |sum - (f(x) - f(x'))| / max(|f(x) - f(x')|, 1e-2)
// (the floor: when the output barely moves from the baseline, the attributions cancel and
// their float32 rounding, ~1e-5 absolute, is all that is left); where it exceeds 1%, the
// target is redone with twice the steps (reusing the points it has: only the new midpoints
// are computed), up to max_steps.
//
// Deletion check: per target, the event with the largest |sum of its attributions| and a
// uniformly random other event of the window are each removed from the history (the next
// event's gap is recomputed, the event before the window stays in the state) and the change
// |f(without it) - f(x)| is measured, forward only.
#pragma once
#include <stdint.h>

#include "batch.h"
#include "model.h"
#include "shards.h"

#define ATTR_MAX_GROUPS (4 + 2 * CFG_LIST_MAX)
#define ATTR_REL_FLOOR  1e-2 // nats or log time units: the floor of the completeness denominator
#define ATTR_TOLERANCE  0.01 // relative completeness error a target must reach

typedef enum { ATTR_PREDICTED, ATTR_ACTION, ATTR_GAP } AttrKind;

// Which input columns (of I0) belong to which group: "action", each categorical column,
// each numeric column (by its CSV name), "gap" (log gap and the first-event flag),
// "time_of_day" and "day_of_week" (when the data has a time unit).
typedef struct {
    int n_groups;
    char name[ATTR_MAX_GROUPS][CFG_NAME_LEN + 8];
    int n_cols;                   // I0
    int col_group[8192];          // group of each input column
    int action_group, gap_group;  // indices of "action" and "gap"
    int tod_group, dow_group;     // -1 without calendar features
    int cat_group[CFG_LIST_MAX];  // of categorical column c
    int num_group[CFG_LIST_MAX];  // of numeric column k
    FeatureSpec fs;               // the dense layout (gap feature at dense index fs.n_num)
} FeatureGroups;

// Fatal if the model's input is wider than col_group holds.
void feature_groups_init(FeatureGroups *fg, const DataMeta *meta, const ModelShape *s);

typedef struct {
    double *attr; // (n, G): row t = the window's event t (offset n - t), group g
    double f_input, f_baseline, attr_sum, rel_err;
    int steps; // m used (after any doubling)
} AttrResult;

// One prediction to explain: the events of its window, oldest first (the last one is the
// event after which the prediction is made), and the state before the window.
typedef struct {
    int n;          // events in the window, 1..W
    int carried;    // 1: h0/c0 hold the state after the event before the window
    real *h0, *c0;  // (L, H) each
    int32_t *action; // (n)
    int32_t *cat;    // (n, C)
    real *dense;     // (n, D) as the batcher built them
    double *time;    // (n) event times; prev_time: the event before the window (if carried)
    double prev_time;
    int cls;        // the class of ATTR_PREDICTED / ATTR_ACTION
    uint64_t seed;  // of the random event of the deletion check
    AttrResult res;
    int top_row, random_row;   // deletion check rows (-1: window of one event)
    double del_top, del_random; // |f change| when removing them
} AttrItem;

// An item sized for windows of up to W events (free with attr_item_free).
void attr_item_alloc(AttrItem *it, const ModelShape *s, int W, int n_groups);
void attr_item_free(AttrItem *it);

typedef struct {
    Model *m; // input_given, max_lanes lanes, window W; its params are the caller's to set
    const FeatureGroups *fg;
    AttrKind kind;
    double loggap_mean, loggap_std;
    int steps, max_steps;
    real *base_row; // (I0) the baseline of one event
    LaneState st;
    uint8_t *keep;
    int32_t *zeros; // (W * lanes * max(1, C)) ids the model does not read
    double *gsum;   // (items per call, W, I0) path sums of the gradient
    real *xbuf;     // (3 * items per call, W, I0) inputs, then the deletion check's inputs
    real *scratch_dense;   // (W, D) one window with an event removed
    int32_t *scratch_ids;  // (W, 1 + C)
    int max_items;
    int64_t lane_steps; // lanes x time steps run (forward + backward), for cost reports
} Attributor;

// params: the model's flat parameters (copied). lanes: path points per batch.
Attributor *attributor_create(const ModelShape *s, const float *params, const FeatureGroups *fg,
                              AttrKind kind, double loggap_mean, double loggap_std, int steps,
                              int max_steps, int lanes, int window, int max_items);
void attributor_free(Attributor *at);
// Explains n <= max_items items: fills it->res (and, if deletion, the deletion fields).
void attributor_run(Attributor *at, AttrItem **items, int n, int deletion, AttrResult **out);
// Spearman rank correlation of |a| and |b| over n cells (ties get mean ranks).
double spearman_abs(const double *a, const double *b, int n);
