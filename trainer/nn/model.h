// model.h: the next-event LSTM: inputs, L stacked LSTM layers, three heads and their losses.
//
// Per event the input row is [action embedding | categorical embeddings | dense features]
// (dense = normalised numeric columns and time features, built by the batcher). L layers of
// width H with forget-gate bias 1 and inverted dropout between layers. One head matrix maps
// the top layer to O = K + Tw + E outputs: K next-action logits, the time head (Tw = 2:
// (mu, log sigma) of the log-normal on the next gap; with a mixture of M >= 2 log-normals,
// Tw = 3M, see time_mix.h), and E (0 or 1) next-engagement values.
//
// All parameters live in one flat buffer (gradients, Adam moments: same layout), with a
// struct of named views. Forward and backward are plain functions on raw buffers; every
// buffer is allocated in model_create(), nothing in a step allocates. The model knows
// nothing of MPI, files or YAML. Built twice: float (training) and double (gradient checks,
// -DMODEL_REAL_DOUBLE), so `real` is float or double.
//
// Speed: per layer one GEMM projects the inputs of all T*B events at once, one GEMM per time
// step adds the recurrent projection of all four gates for the B lanes, the gate math is
// one fused loop, and BPTT accumulates the weight gradients with one GEMM each over all
// time steps. dG overwrites the gate activations in place. Large action vocabularies
// (K > MODEL_HEAD_TILE_MIN_K; training and eval's loss sums): the head is tiled
// (head_tiled.h), so no (T*B, K) logits exist; see model_create_head().
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef MODEL_REAL_DOUBLE
typedef double real;
#else
typedef float real;
#endif

#define MODEL_MAX_LAYERS  8
#define MODEL_MAX_CAT     8
#define MODEL_MAX_TENSORS (3 + MODEL_MAX_CAT + 3 * MODEL_MAX_LAYERS)

typedef struct {
    int n_actions;    // K: action vocabulary including the "unknown" id 0
    int action_embed; // Ea
    int n_cat;        // C further categorical fields
    int cat_vocab[MODEL_MAX_CAT];
    int cat_embed;  // Ec
    int n_dense;    // D dense inputs per event
    int hidden;     // H
    int layers;     // L
    int engagement; // E: 1 if the engagement head exists
    int time_mix;   // M: log-normal components of the time head; 0 or 1: the single one
    int max_lanes;  // B: activations are sized for up to this many lanes
    int window;     // T: ... and this many time steps
} ModelShape;

static inline int model_input_width(const ModelShape *s) {
    return s->action_embed + s->n_cat * s->cat_embed + s->n_dense;
}
// M, the time head's components (0 in a shape means 1).
static inline int model_time_mix(const ModelShape *s) {
    return s->time_mix > 1 ? s->time_mix : 1;
}
// Tw, the time head's outputs at y + K.
static inline int model_time_width(const ModelShape *s) {
    return s->time_mix > 1 ? 3 * s->time_mix : 2;
}
// Index of the engagement output in a row y (when E = 1).
static inline int model_eng_index(const ModelShape *s) {
    return s->n_actions + model_time_width(s);
}
static inline int model_outputs(const ModelShape *s) {
    return s->n_actions + model_time_width(s) + s->engagement;
}

typedef struct {
    real *action_emb;             // (K, Ea)
    real *cat_emb[MODEL_MAX_CAT]; // (V_c, Ec)
    real *w_ih[MODEL_MAX_LAYERS]; // (4H, I_l), gate rows ordered i, f, g, o (as PyTorch)
    real *w_hh[MODEL_MAX_LAYERS]; // (4H, H)
    real *bias[MODEL_MAX_LAYERS]; // (4H) one bias (PyTorch's b_ih + b_hh)
    real *w_head;                 // (O, H)
    real *b_head;                 // (O)
} ParamViews;

// One named tensor of the flat buffer (for checkpoints, tests and gradient buckets).
typedef struct {
    char name[40];
    size_t offset, count; // in elements
    int rows, cols;       // cols = 1 for vectors
    int decay;            // 1: weight decay applies (matrices, embeddings)
    int layer;            // LSTM layer, -1 for embeddings, L for the head
} TensorInfo;

size_t model_param_count(const ModelShape *s);
void model_param_views(const ModelShape *s, real *buf, ParamViews *v);
int model_tensors(const ModelShape *s, TensorInfo *out); // returns the count

// One batch of truncated-BPTT windows, laid out time-major: index (t, b) = t * lanes + b.
typedef struct {
    int lanes, window;         // B <= max_lanes, T <= window of the shape
    const int32_t *action;     // (T, B) input action id
    const int32_t *cat;        // (T, B, C) input categorical ids
    const real *dense;         // (T, B, D)
    const uint8_t *keep;       // (T, B) 1: carry (h, c) from the lane's previous event; 0: reset
    const int32_t *tgt_action; // (T, B) next action id; -1: no target at this position
    const real *tgt_loggap;    // (T, B) log(gap + delta) of the next event, gap in time units
    const real *tgt_eng;       // (T, B) normalised next engagement (unused when E = 0)
    const uint64_t *lane_id;   // (B) global lane ids: dropout draws depend on them, not on rank
} Batch;

typedef struct {
    double w_action, w_time, w_eng; // loss weights
    double loggap_mean, loggap_std; // train-set statistics of log(gap + delta)
    double gap_offset;              // delta, time units
    int top_k;
    int time_point; // the gap's point prediction (MAE, RMSE): TIME_POINT_MEDIAN or _MEAN
} LossConfig;
enum { TIME_POINT_MEDIAN = 0, TIME_POINT_MEAN = 1 };

typedef struct {
    double p;      // dropout probability between layers; 0 (or eval): none
    uint64_t seed; // run seed
    uint64_t step; // optimizer step: a new mask every step
    double p_input;  // on layer 0's input rows x0 (embeddings and dense inputs; no folding)
    double p_output; // on the top layer's output, before the heads
} DropoutConfig;

// Sums over scored targets (doubles so that large evaluations stay exact enough).
typedef struct {
    double n_targets;
    double loss;                    // weighted sum: w_a*action + w_t*time + w_e*eng
    double action_nll;              // sum of -log p(next action)
    double time_nll;                // sum of -log p(next gap), density per time unit
    double eng_se;                  // sum of 0.5 * squared error of the normalised engagement
    double top1, topk;              // correct counts
    double gap_abs_err, gap_sq_err; // of the point prediction (lc->time_point), time units
} LossSums;
#define LOSS_SUMS_LEN 9 // doubles in LossSums, for reductions

// Lane state carried across windows: h and c per layer, (max_lanes, H) each.
typedef struct {
    real *h[MODEL_MAX_LAYERS];
    real *c[MODEL_MAX_LAYERS];
} LaneState;

typedef struct {
    real *x0;                      // (T, B, I0) layer-0 inputs
    real *xin[MODEL_MAX_LAYERS];   // (T, B, H) inputs of layer l > 0 after dropout
    real *mask[MODEL_MAX_LAYERS];  // (T, B, H) dropout scale of layer l > 0
    real *gates[MODEL_MAX_LAYERS]; // (T, B, 4H) gate activations; dG after backward
    real *c[MODEL_MAX_LAYERS];     // (T, B, H) cell state
    real *tc[MODEL_MAX_LAYERS];    // (T, B, H) tanh(c)
    real *hout[MODEL_MAX_LAYERS];  // (T, B, H) layer outputs
    real *hprev[MODEL_MAX_LAYERS]; // (T, B, H) keep * h of the previous step (GEMM input)
    real *h0[MODEL_MAX_LAYERS];    // (B, H) carried state at the window start
    real *c0[MODEL_MAX_LAYERS];    // (B, H)
    real *mask_in;                 // (T, B, I0) dropout scale of x0, if dropout_in
    real *mask_out;                // (T, B, H) dropout scale of the top output, if dropout_out
    real *htop;                    // (T, B, H) the top output after dropout, if dropout_out
    real *y;                       // (T, B, O) head outputs (NULL with a tiled head)
    real *dy;                      // (T, B, O) d loss / d y (unnormalised sums; NULL if tiled)
    // Tiled head only (head_tiled.h): the outputs after the K logits, Tt = Tw + E per row.
    real *ytail;                   // (T, B, Tt) time and engagement outputs
    real *dytail;                  // (T, B, Tt) d loss / d ytail
    real *tile;                    // (HEAD_TILE_ROWS, HEAD_TILE_COLS) one tile of logits
    real *tile_e;                  // (HEAD_TILE_COLS) softmax numerators of one tile row
    double *logz;                  // (2, T, B) log-sum-exp of each row's K logits; target logit
    int *head_rank;                // (T, B) logits >= the target's, summed over tiles
    double head_w_action;          // lc->w_action of the last forward (for backward)
    real *dbuf[2];                 // (T, B, max(I0, H)) ping-pong input/output gradients
    real *dx0;                     // (T, B, I0) d loss / d layer-0 input (unfolded path)
    real *table;                   // (sum of vocabularies, 4H): folded embeddings, see model.c
    real *dense_acc;               // (D, 4H) folded layer 0's dense-column gradient, transposed
    real *dense_wt;                // (D, 4H) folded layer 0's dense columns of W_ih, transposed
    real **fold_ptr;               // (B, fields) one step's table rows, folded layer 0
    real *d_dense;                 // (T, B, D) d loss / d dense inputs, if want_input_grad
    real *wpack;                   // (4H * H) a layer\'s W_hh packed for rgemm.h
    real *wpack_ih;                // (4H * max(I0, H)) a layer\'s W_ih packed for rgemm.h
    real *dh_rec;                  // (B, H) recurrent gradient into the previous step
    real *dc;                      // (B, H) cell gradient into the previous step
    int dropout_on;                // whether the last forward used dropout between layers
    int dropout_in, dropout_out;   // ... on x0, on the top layer's output
    int folded;                    // whether the last forward folded the embeddings
} Activations;

typedef struct {
    ModelShape shape;
    size_t n_params;
    real *params, *grads; // flat, n_params each
    ParamViews p, g;
    Activations act;        // views into act_arena
    char *act_arena;        // one allocation for every activation buffer
    size_t activation_bytes;
    int fold_rows;       // rows of act.table: K + sum of categorical vocabularies (0: none)
    int want_input_grad; // backward also fills act.d_dense (tests; training needs no input grads)
    // 1: forward takes layer-0 inputs from act.x0 as the caller wrote them (T, B, I0), e.g.
    // points on a path between two inputs (run/attribution.c), instead of looking up the
    // embeddings of b->action and b->cat (which it then ignores); it never folds. Backward
    // leaves d f / d x0 in act.dx0 and adds nothing to the embeddings' gradients.
    int input_given;
    // 1: backward computes gradients with respect to activations and inputs only (act.dx0),
    // skipping the weight-gradient GEMMs: m->grads is left untouched (explanations; with
    // input_given, since folded embeddings get their input gradient from those GEMMs).
    int input_grad_only;
    int use_rgemm;       // 1 (default): recurrent steps use rgemm.h where it applies
    int skip_param_grads; // backward leaves m->grads alone: only dy and every layer's dG
                          // (DP-SGD: lane_grad.h forms the clipped parameter gradients)
    // 1: the action head is tiled (head_tiled.h): act.y and act.dy do not exist; forward
    // needs sums or want_grad, and skip_param_grads, input_given and input_grad_only stay 0.
    int head_tiled;
} Model;

// Called during backward: bucket_ready(ctx, layer) once the gradients of `layer` are final
// (layer L = the head first, then L-1 .. 0; layer -1 = the embeddings last), and
// progress(ctx) every few time steps so non-blocking communication can advance.
typedef struct {
    void (*bucket_ready)(void *ctx, int layer);
    void (*progress)(void *ctx);
    void *ctx;
} BackwardHooks;

Model *model_create(const ModelShape *s);
// The same with head_tiled = 1 or 0 (model_create: 0). A tiled head never holds more than
// one (HEAD_TILE_ROWS, HEAD_TILE_COLS) tile of logits: for training and its validation
// (loss sums); commands that read act.y (predict, score, explain, ...) use model_create.
Model *model_create_head(const ModelShape *s, int head_tiled);
// Whether a training model of this shape should tile its head: K > MODEL_HEAD_TILE_MIN_K.
#define MODEL_HEAD_TILE_MIN_K 1024
static inline int model_head_should_tile(const ModelShape *s) {
    return s->n_actions > MODEL_HEAD_TILE_MIN_K;
}
void model_free(Model *m);
// PyTorch-like init: LSTM and head weights U(-k, k), k = init_scale or 1/sqrt(H); embeddings
// N(0, 1); biases 0 but the forget gate's, which is 1. Deterministic in seed.
void model_init_params(Model *m, uint64_t seed, double init_scale);

LaneState lane_state_alloc(const ModelShape *s, int lanes);
void lane_state_free(LaneState *st);
// A view of lanes [first, first + n) of a state (for per-shard passes).
LaneState lane_state_slice(const ModelShape *s, const LaneState *st, int first);

// Forward over one batch from the carried state (h, c of its lanes), which it advances to
// the state after the window. If sums != NULL, scores every target and adds to *sums; if
// want_grad, also fills act.dy for backward.
void model_forward(Model *m, const Batch *b, LaneState *state, const LossConfig *lc,
                   const DropoutConfig *dc, LossSums *sums, int want_grad);
// Backward of the last forward: ADDS the gradient sums to m->grads (zero them first).
// To backpropagate another function f of the outputs than the loss (explanations), run
// model_forward with sums = NULL and want_grad = 0 (act.dy is then left alone), write
// d f / d y into act.dy (T, B, O) and call model_backward: with input_given (or unfolded
// inputs) act.dx0 then holds d f / d x0 (T, B, I0).
void model_backward(Model *m, const Batch *b, const BackwardHooks *hooks);
// Layer-0 input rows x0 (T, B, I0) = [action_emb[action] | cat_emb[c][cat] ... | dense] of
// a batch, into any buffer (what forward computes unless the embeddings are folded).
void model_input_rows(const Model *m, const Batch *b, real *x0);

// Heads and losses of one output row y (O) with its targets (tgt action, log(gap + delta),
// normalised engagement); log_std = log(lc->loggap_std). Adds to *sums when sums != NULL.
// e (O) receives the softmax numerators; with want_grad it ends as d loss / d y of this row
// (loss = w_a * action NLL + w_t * time NLL + w_e * engagement squared error / 2).
// Exposed for the per-op finite-difference check; model_forward runs it for every target.
void head_loss_row(const ModelShape *s, const LossConfig *lc, double log_std, const real *y,
                   real *e, int want_grad, int tgt, real loggap, real eng, LossSums *sums);

// The gap's point prediction (time units, >= 0) of one output row y (O): the median or the
// mean (lc->time_point) of the predicted density. What head_loss_row scores MAE and RMSE of.
double head_gap_point(const ModelShape *s, const LossConfig *lc, const real *y);

// The time and engagement part of head_loss_row for one row: yt = y + K (Tt), dt (Tt) gets
// d loss / d yt when want_grad; returns the time NLL, and the point prediction in *pred and
// 0.5 * engagement squared error in *se_e. (The tiled head scores its rows with this.)
double head_tail_row(const ModelShape *s, const LossConfig *lc, double log_std, const real *yt,
                     real *dt, int want_grad, real loggap, real eng, double *pred, double *se_e);
// Adds one scored row to *sums, as head_loss_row does.
void head_add_sums(LossSums *sums, const LossConfig *lc, double nll_a, double nll_t, double se_e,
                   int rank, double pred, real loggap);

// One BLAS thread per rank unless OPENBLAS_NUM_THREADS says otherwise (ranks, not threads,
// use the cores; OpenBLAS's thread pool would fight the other ranks). Returns a description
// of the BLAS in use, e.g. "OpenBLAS SkylakeX, 1 thread", for logs and benchmarks.
const char *model_blas_setup(void);

// Model FLOPs per scored event for forward+backward (2 per multiply-add), as counted by
// ../shared/bench/torch_lstm.py: 3 x (LSTM GEMMs + head GEMM).
double model_train_flops_per_event(const ModelShape *s);
