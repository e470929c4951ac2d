// lstm_cell.h: the fused pointwise math: the gates of one LSTM time step over B lanes, and
// the softmax of the action head.
//
// These loops are the only non-GEMM work in the recurrence. The entry points below run the
// path of kernels/kernels.h (generic, AVX2+FMA or AVX-512, chosen once from cpu_isa()); the
// *_generic functions are the plain C path (and the double build's only one).
#pragma once
#include <stdint.h>

#include "model.h"

// Forward of step t. g (B, 4H): in, the gate pre-activations without bias (x W_ih^T + h W_hh^T);
// out, the activations (i, f, g, o). cprev (B, H): c of the previous step (or the carried
// state); keep (B): 0 resets the lane before this step. Writes c, tc = tanh(c), h (B, H) and,
// if hprev_next != NULL, hprev_next = keep_next * h (the next step's recurrent input).
void lstm_cell_forward(int B, int H, real *restrict g, const real *restrict bias,
                       const real *restrict cprev, const uint8_t *keep, const uint8_t *keep_next,
                       real *restrict c, real *restrict tc, real *restrict h,
                       real *restrict hprev_next);

// Backward of step t. g (B, 4H): in, the activations of step t; out, dG (pre-activation
// gradients). dh (B, H): d loss / d h_t from above. dh_rec (B, H) or NULL: dG_{t+1} W_hh, the
// gradient through the recurrence, applied where keep_next is 1. dc (B, H): in, the cell
// gradient from step t+1 (already masked); out, the cell gradient for step t-1, masked by keep.
void lstm_cell_backward(int B, int H, real *restrict g, const real *restrict cprev,
                        const uint8_t *keep, const real *restrict tc, const real *restrict dh,
                        const real *restrict dh_rec, const uint8_t *keep_next, real *restrict dc);

// Softmax of one row of K logits: e[k] = exp(y[k] - max); returns log(sum_k exp(y[k])) and
// sets *inv_sum = 1 / sum_k e[k] (both in double). Run for every scored event.
double softmax_row(const real *restrict y, real *restrict e, int K, double *inv_sum);

// The generic path of the three (tests compare every path with these).
void lstm_cell_forward_generic(int B, int H, real *restrict g, const real *restrict bias,
                               const real *restrict cprev, const uint8_t *keep,
                               const uint8_t *keep_next, real *restrict c, real *restrict tc,
                               real *restrict h, real *restrict hprev_next);
void lstm_cell_backward_generic(int B, int H, real *restrict g, const real *restrict cprev,
                                const uint8_t *keep, const real *restrict tc,
                                const real *restrict dh, const real *restrict dh_rec,
                                const uint8_t *keep_next, real *restrict dc);
double softmax_row_generic(const real *restrict y, real *restrict e, int K, double *inv_sum);
