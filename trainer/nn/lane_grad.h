// lane_grad.h: the squared L2 norm of each lane's own gradient (every parameter tensor), from
// what the last model_forward(want_grad) + model_backward left in the activations; for
// per-user clipping in DP-SGD, where a lane holds one user's window.
//
// A lane's gradient is a sum over its T positions of outer products (dG_t x_t^T for W_ih,
// dG_t hprev_t^T for W_hh, dy_t h_t^T for the head), column sums (biases) and rows scattered
// by id (embeddings). Two ways to get its norm, both exact (chosen by measurement, README):
//   LANE_GRAD_GHOST:    ||sum_t a_t b_t^T||^2 = sum_{t,t'} (a_t . a_t')(b_t . b_t'): two (T, T)
//                       Gram matrices (syrk) per tensor, the lane's gradient is never formed
//                       ("ghost norms", Goodfellow 2015; Li et al. 2022); W_ih and W_hh share
//                       the Gram matrix of dG. A tensor whose explicit product costs fewer
//                       flops than its Gram matrices (T (M + N) > 2 M N) uses that instead.
//   LANE_GRAD_EXPLICIT: each lane's (4H, I) gradient by one GEMM over its T rows, then its
//                       sum of squares.
// Embeddings: the lane's input gradient rows (T, E) = dG_0 W_ih's embedding columns, summed
// per id in a scratch table. Dropout masks are in the stored activations, so they count.
// Everything is allocated in lane_grad_init(); lane_grad_norms_sq() allocates nothing.
#pragma once
#include "model.h"

typedef enum { LANE_GRAD_GHOST = 0, LANE_GRAD_EXPLICIT = 1 } LaneGradMethod;

typedef struct {
    LaneGradMethod method;
    int T, max_lanes, I0, I_emb, rows; // window, lanes, layer-0 input width, its embedding
                                       // columns, table rows
    real *work;             // (4H, max(I0, H)) or (O, H): one lane's explicit gradient
    real *gram_a, *gram_b;  // (T, T)
    real *x0;               // (T, I0): the lane's layer-0 inputs when the model folded them
    real *dx;               // (T, B, I_emb): every row's embedding-input gradient
    real *table;            // (rows, max embedding width): per-id sums of one field
    int32_t *touched;       // (T) ids touched in the table
    double *colsum;         // (max(4H, O))
} LaneGrad;

void lane_grad_init(LaneGrad *lg, const ModelShape *s, LaneGradMethod method);
void lane_grad_free(LaneGrad *lg);
// sq (b->lanes) = squared L2 norm of each lane's gradient of the loss SUM over its targets.
void lane_grad_norms_sq(Model *m, const Batch *b, LaneGrad *lg, double *sq);
// ADDS sum over lanes of scale[lane] * (lane's gradient) to m->grads, from the same stored
// activations (the weight-gradient GEMMs of backward over lane-scaled dy and dG; no second
// pass through time). Scales the stored dy and dG in place: call once per backward.
// Call after lane_grad_norms_sq() on the same batch (it reuses its input gradients).
void lane_grad_clipped_sum(Model *m, const Batch *b, const LaneGrad *lg, const double *scale);
