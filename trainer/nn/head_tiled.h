// head_tiled.h: the action head for large vocabularies, as tiled GEMMs with a fused online
// log-softmax and cross-entropy, so that no (T*B, K) buffer of logits ever exists.
//
// Rows r of h_top (TB, H) are taken HEAD_TILE_ROWS at a time and the K logits of those rows
// HEAD_TILE_COLS at a time: the tile (R, KT) = h_top[rows] W_head[cols]^T + b_head[cols] is
// one GEMM, each row's log-sum-exp is combined over its tiles (act.logz), the target's logit
// is a dot product and its rank counts the logits >= it. Backward recomputes each tile, turns
// it into w_action * (softmax - onehot) in place and adds dW_head[cols] += tile^T h_top[rows],
// db_head[cols] += its column sums, dH[rows] += tile W_head[cols]: 4 GEMMs of the head's size
// per step instead of 3. The time and engagement outputs (Tt = Tw + E per row) are one small
// GEMM into act.ytail, scored by head_tail_row.
//
// Agreement with the untiled head (tests/unit/test_head_tiled.c): the same loss sums and
// gradients within float rounding (the log-sum-exp is summed per tile; the target logit is a
// dot product rather than the GEMM's value, so a rank can differ only on a tie within one
// rounding). Needs act.ytail, dytail, tile, tile_e and logz (model_create_head(s, 1)).
#pragma once
#include "model.h"

#define HEAD_TILE_ROWS 128
#define HEAD_TILE_COLS 1024

// Scores every target of the batch into *sums (if not NULL); with want_grad fills
// act.dytail and act.logz for backward. htop (TB, H): the top layer's output after dropout.
void head_tiled_forward(Model *m, const Batch *b, const real *htop, const LossConfig *lc,
                        LossSums *sums, int want_grad);
// Adds the head's weight and bias gradients to m->grads and writes dH (TB, H) = d loss / d
// htop, from the last head_tiled_forward with want_grad.
void head_tiled_backward(Model *m, const Batch *b, const real *htop, real *dH);
