// bench.h: `trainer bench`: training throughput of the model of ../shared/bench/torch_lstm.py
// (the PyTorch reference), on the same synthetic data, next to OpenBLAS's sgemm peak.
//
// What it measures: full training steps (forward, backward, gradient allreduce through
// gradsync, Adam) of ModelShape {K types, embedding E, one dense input = log gap, L layers of
// H, B lanes, T steps}, with the lane state carried across windows; events/s over timed
// windows of ~--window-s seconds (median, min..max, aggregate over ranks), model GFLOP/s
// counted as torch_lstm.py's flops_per_event, the share of the same run's 1-thread
// cblas_sgemm N^3 peak, the share of step time blocked in communication, and peak RSS
// against what parameters, gradients, Adam moments, activations and lane state need.
// What it is not: a test of the data pipeline. The streams are generated before timing and
// windows are views into them (as torch slices its tensors), so no batch is built per step.
// One difference from torch that it states in its output: our time head is a log-normal
// (2 outputs: mu, log sigma) where torch's is a 1-output MSE regression.
#pragma once

int cmd_bench(int argc, char **argv);
