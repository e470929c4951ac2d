// report.h: `trainer report`: one self-contained HTML page about a training run, a sweep
// directory or the output directory of another command (svg.h draws, html.h frames).
//
// Training run (RUNDIR/config.yaml + log.jsonl): curves from log.jsonl (see run/runlog.h for
// its lines), the resolved config and the run's identity; the validation-derived charts
// (confusion matrix, reliability, time-head calibration, constant-predictor baselines) come
// from one pass over the validation users with the run's newest checkpoint through
// run/scoring.h, when the checkpoint and the prepared data are there.
// Sweep (DIR/plan.txt): trials table, metric vs each swept parameter, validation curves of all
// trials, best config. Other output directories: summary.json and every *.csv in them.
#pragma once
#include "util.h"

#define CONF_MAX_K 64 // actions shown in the confusion matrix (more: the most frequent)
#define CAL_BINS   10 // reliability bins
#define GAP_QS     19 // nominal quantiles 0.05 .. 0.95 of the time head

// What the validation pass measured.
typedef struct {
    int ok; // 0: not computed; why says so
    char why[512];
    char ckpt_path[1100];
    long long ckpt_step;
    int K;             // actions (id 0 = <unk>)
    char **labels;     // K names (owned)
    double *confusion; // (K, K) counts: rows = true next action, cols = predicted top-1
    double rel_n[CAL_BINS], rel_conf[CAL_BINS], rel_acc[CAL_BINS]; // by top-1 probability
    double gap_cover[GAP_QS];      // share of gaps below the predicted q-quantile
    double *pred_median, *obs_gap; // (n) per target, time units
    long long n;
    double const_action_nll, majority_acc, const_time_nll; // constant-predictor baselines
    double seconds;
} ValidDetail;

// One pass over the validation users of the run (argc/argv: for MPI start-up; a single
// process). Never fatal for a missing checkpoint or data: sets ok = 0 and why.
void valid_detail_compute(ValidDetail *vd, const char *run_dir, int *argc, char ***argv);
void valid_detail_free(ValidDetail *vd);
// The validation sections (confusion, reliability, calibration). Returns charts drawn.
int valid_detail_html(StrBuf *o, const ValidDetail *vd, const char *time_unit);

// Pages. Each returns 0, or -1 with the reason in err (nothing written).
int report_run(StrBuf *o, const char *run_dir, int with_valid, int *argc, char ***argv, char *err,
               size_t errlen);
int report_sweep(StrBuf *o, const char *dir, char *err, size_t errlen);
int report_outputs(StrBuf *o, const char *dir, char *err, size_t errlen);
