// best.c: see best.h.
#include "best.h"

#include <stdio.h>
#include <string.h>

void best_init(BestTracker *b, const Config *cfg) {
    memset(b, 0, sizeof *b);
    b->higher_better = strcmp(cfg->eval.metric, "top1") == 0;
    b->min_delta = cfg->train.early_stop_min_delta;
    b->patience = cfg->train.early_stop_patience;
    snprintf(b->rec.metric, sizeof b->rec.metric, "%s", cfg->eval.metric);
}

double best_metric_value(const Metrics *m, const char *metric) {
    if (strcmp(metric, "action_nll") == 0) return m->action_nll;
    if (strcmp(metric, "time_nll") == 0) return m->time_nll;
    if (strcmp(metric, "top1") == 0) return m->top1;
    return m->loss;
}

int best_update(BestTracker *b, const Metrics *m, int64_t step) {
    const double v = best_metric_value(m, b->rec.metric);
    const double gain = b->higher_better ? v - b->rec.best_value : b->rec.best_value - v;
    b->rec.is_best = !b->rec.has_best || (gain > 0 && gain >= b->min_delta);
    if (b->rec.is_best) {
        b->rec.has_best = 1, b->rec.best_step = step, b->rec.best_value = v;
        b->rec.evals_since_best = 0;
    } else {
        b->rec.evals_since_best++;
    }
    return b->rec.is_best;
}

int best_should_stop(const BestTracker *b) {
    return b->patience > 0 && b->rec.evals_since_best >= b->patience;
}

void best_restore(BestTracker *b, const CkptBest *rec) {
    if (!rec->has_best || strcmp(rec->metric, b->rec.metric) != 0) return;
    b->rec = *rec;
    b->rec.is_best = 0;
}
