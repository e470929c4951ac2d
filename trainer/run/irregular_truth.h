// irregular_truth.h: how well `trainer score` found the irregular users a truth file names
// (the generator's truth.csv: user,segment,bayes_segment,irregular,irregular_start, raw ids hashed here with
// the experiment's user key), next to the hand-made baseline of the same run.
//
// Per kind: AUROC of the model's score and of the baseline's, the kind's users against the
// normal ones (ties count one half), the share whose peak window reaches the irregular part
// (peak_end >= irregular_start) and the reasons given. Overall: AUROC, and precision and
// recall of the top `rate` share of users by score (model and baseline) and of the users the
// calibrated threshold flagged.
#pragma once
#include "config.h"
#include "util.h"

// Reads users_csv (score's users.csv) and truth_csv; appends a JSON object to *json and prints
// a table to stdout. Returns 0, or -1 after a warning naming the file and line.
int irregular_truth_report(const char *users_csv, const char *truth_csv, const Config *cfg,
                           double rate, StrBuf *json);

// Mann-Whitney AUROC of pos against neg (sorts both in place); NAN if either is empty.
double auroc(double *pos, long long n_pos, double *neg, long long n_neg);
