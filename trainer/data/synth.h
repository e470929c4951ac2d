// synth.h: a generator of social-platform users that knows its own next-event distributions.
//
// `trainer data synth EXP.yaml` writes train.csv, valid.csv and test.csv into synth.out_dir
// (columns user,time,action,content,engagement; time in epoch seconds) and best.txt: the
// best achievable next-action NLL and next-gap NLL per split, computed from the generator's
// own Bayes-optimal predictive distributions (the yardstick training is measured against),
// and truth.csv: each user's segment, the Bayes posterior's guess (see synth_truth.h) and
// the planted irregular users of synth.irregular_frac (synth_irregular.h; they are left out
// of best.txt).
#pragma once
#include "config.h"

typedef struct {
    double action_nll; // mean over targets of -log p*(next action | history), nats
    double time_nll;   // mean over targets of -log p*(next gap | history), gap in seconds
    double action_acc; // accuracy of the Bayes-optimal top-1 action prediction
    long long n_targets;
    long long n_users, n_events;
} SynthSplitStats;

typedef struct {
    SynthSplitStats split[3]; // 0 train, 1 valid, 2 test
} SynthReport;

// Generates the three CSVs and best.txt; deterministic in cfg->synth.* (same bytes).
// Prints a short report to stdout. Calls fatal() on I/O errors.
void synth_generate(const Config *cfg, SynthReport *report);
// Reads best.txt from out_dir. Returns 0, or -1 if absent or unreadable.
int synth_read_report(const char *out_dir, SynthReport *report);
// The column names the generator writes, for experiments that read its files.
#define SYNTH_COLUMNS "user,time,action,content,engagement"

// Re-scores a CSV that synth_generate wrote, from the file alone (rows grouped by user, in
// time order): bayes gets the Bayes-optimal losses (as in best.txt), prior_mix those of the
// baseline that never learns the user's segment (posterior kept at the prior). Either may be
// NULL. Returns 0, or -1 after a warning naming the file and line.
int synth_score_csv(const char *csv_path, SynthSplitStats *bayes, SynthSplitStats *prior_mix);
