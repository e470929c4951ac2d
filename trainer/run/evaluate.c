// evaluate.c: see evaluate.h.
#include "evaluate.h"

#include <math.h>
#include <string.h>

void evaluate_local(Model *m, const Dataset *ds, int split, int lanes, const LossConfig *lc,
                    LaneState *state, BatchBuf *bb, LossSums *sums) {
    EvalStream es;
    eval_stream_init(&es, ds, split, lanes, 0);
    // Every user starts with keep = 0, so whatever the state holds is never read.
    while (eval_stream_next(&es, bb)) model_forward(m, &bb->view, state, lc, NULL, sums, 0);
    eval_stream_free(&es);
}

Metrics metrics_from(const LossSums *s) {
    Metrics m;
    memset(&m, 0, sizeof m);
    double n = s->n_targets;
    m.n_targets = n;
    if (n <= 0) return m;
    m.action_nll = s->action_nll / n;
    m.time_nll = s->time_nll / n;
    m.eng_mse = 2.0 * s->eng_se / n;
    m.top1 = s->top1 / n;
    m.topk = s->topk / n;
    m.gap_mae = s->gap_abs_err / n;
    m.gap_rmse = sqrt(s->gap_sq_err / n);
    m.loss = s->loss / n;
    return m;
}

void metrics_print(FILE *out, const Metrics *m, int top_k, const char *time_unit, int engagement) {
    const char *unit = strcmp(time_unit, "none") == 0 ? "units" : time_unit;
    fprintf(
        out,
        "action_nll %.4f  top1 %.4f  top%d %.4f  time_nll %.4f  gap_mae %.4g %s  gap_rmse %.4g %s",
        m->action_nll, m->top1, top_k, m->topk, m->time_nll, m->gap_mae, unit, m->gap_rmse, unit);
    if (engagement) fprintf(out, "  eng_mse %.4f", m->eng_mse);
    fprintf(out, "  (%.0f targets)", m->n_targets);
}

void metrics_json(char *out, size_t cap, const Metrics *m) {
    snprintf(out, cap,
             "\"n_targets\":%.0f,\"loss\":%.6g,\"action_nll\":%.6g,\"top1\":%.6g,\"topk\":%.6g,"
             "\"time_nll\":%.6g,\"gap_mae\":%.6g,\"gap_rmse\":%.6g,\"eng_mse\":%.6g",
             m->n_targets, m->loss, m->action_nll, m->top1, m->topk, m->time_nll, m->gap_mae,
             m->gap_rmse, m->eng_mse);
}
