// sweep_config.h: sweep files (YAML): a base experiment plus grid and/or random search.
//
//   base: default.yaml          # experiment, relative to the sweep file
//   metric: valid.action_nll    # what `sweep summary` sorts by (valid.<metric of metrics.json>)
//   mode: min                   # or max
//   seed: 7
//   trials: 4                   # random samples per grid point (1 without random axes)
//   max_trials: 10000           # refuse a sweep of more trials (the default)
//   set:                        # fixed overrides of every trial
//     train.steps: 300
//   grid:                       # every combination
//     model.hidden: [32, 64]
//   random:                     # drawn per trial from (seed, trial)
//     train.lr: {dist: loguniform, low: 1e-4, high: 1e-2}
//     model.dropout: {dist: uniform, low: 0, high: 0.3}
//     model.layers: {dist: int, low: 1, high: 2}
//     train.optimizer: {dist: choice, values: [adam, adamw]}
//
// Keys are experiment keys with the --set syntax, checked the same way; errors name
// sweep-file:line:column.
#pragma once
#include <stdint.h>

#include "config.h"

#define SWEEP_MAX_AXES   32
#define SWEEP_MAX_VALUES 64
#define SWEEP_MAX_FIXED  64
#define SWEEP_DEFAULT_MAX_TRIALS 10000

typedef enum { AX_GRID, AX_CHOICE, AX_UNIFORM, AX_LOGUNIFORM, AX_INT } AxisKind;

typedef struct {
    char key[128];
    AxisKind kind;
    int n_values;
    char values[SWEEP_MAX_VALUES][128]; // grid and choice: YAML text of each value
    double low, high;
} SweepAxis;

typedef struct {
    char path[CFG_PATH_LEN], base[CFG_PATH_LEN]; // base resolved against the sweep file
    char metric[64];
    int maximize;
    int64_t seed, trials, max_trials;
    int n_fixed;
    char fixed[SWEEP_MAX_FIXED][256]; // "key=value"
    int n_axes;
    SweepAxis axes[SWEEP_MAX_AXES];
} SweepSpec;

// Returns 0, or -1 after printing every problem (one line each).
int sweep_spec_load(const char *path, SweepSpec *out);
// Trials the spec defines: product of grid sizes x trials (random) or x 1; -1 when that
// overflows int64 (sweep_spec_load refuses any spec above max_trials).
int64_t sweep_trial_count(const SweepSpec *s);
// The overrides of trial i ("key=value"), grid axes then random axes; returns the count.
int sweep_trial_overrides(const SweepSpec *s, int64_t trial, char out[][256], int cap);
