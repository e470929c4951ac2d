// eval.c: `trainer eval EXP.yaml --checkpoint FILE|RUNDIR [--split S] [--input F.csv]
// [--output F.json]`: scores every next event of every user of a split (or of any CSV in the
// experiment's format) on any number of ranks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "evaluate.h"
#include "nextk.h"
#include "scoring.h"
#include "util.h"

static void print_metrics(const Scorer *sc, const CliArgs *args, const Metrics *m, double secs) {
    const Config *cfg = &sc->cfg;
    const char *what = args->input ? args->input : SPLIT_NAMES[sc->split];
    printf("eval %s with %s (step %lld) on %d rank%s in %.2f s\n", what, sc->ckpt_path,
           (long long)sc->ck.d.step, sc->size, sc->size > 1 ? "s" : "", secs);
    if (args->input) {
        char unseen[1024];
        scorer_unseen_text(sc, unseen, sizeof unseen);
        printf("  %lld rows read, %lld bad rows skipped; %s\n", sc->input_rows, sc->input_bad,
               unseen);
    }
    printf("  targets scored        %.0f\n", m->n_targets);
    printf("  next-action top-1     %.4f\n", m->top1);
    printf("  next-action top-%-2d    %.4f\n", (int)cfg->eval.top_k, m->topk);
    printf("  next-action NLL       %.4f nats/event\n", m->action_nll);
    const char *unit = strcmp(cfg->data.time_unit, "none") == 0 ? "units" : cfg->data.time_unit;
    printf("  time NLL              %.4f nats/event (density per %s)\n", m->time_nll, unit);
    const char *point = cfg->eval.time_point; // eval.time_point: median | mean
    printf("  time MAE              %.6g %s (%s prediction)\n", m->gap_mae, unit, point);
    printf("  time RMSE             %.6g %s (%s prediction)\n", m->gap_rmse, unit, point);
    if (sc->model->shape.engagement) printf("  engagement MSE        %.4f (normalised)\n", m->eng_mse);
}

// Next-k accuracy (eval.next_k, run/nextk.h) from the reduced sums: over all steps, and a
// text of the per-step accuracies "a_1 a_2 ... a_k" (JSON, and printed).
static double next_k_text(const NextK *nk, char *steps, size_t cap) {
    double hits = 0, counted = 0;
    size_t used = 0;
    steps[0] = 0;
    for (int j = 0; j < nk->k; j++) {
        const double n = nk->sums[NEXTK_MAX + j];
        hits += nk->sums[j], counted += n;
        int w = snprintf(steps + used, cap - used, "%s%.4f", j ? " " : "", n > 0 ? nk->sums[j] / n : 0);
        if (w > 0 && used + (size_t)w < cap) used += (size_t)w;
    }
    return counted > 0 ? hits / counted : 0;
}

int cmd_eval(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "eval", "--set --checkpoint --split --input --output", 1, &args);
    int split = args.split ? split_from_name(args.split) : SPLIT_TEST;
    if (split < 0) split = SPLIT_TEST;
    ScoreRequest req = {.command = "eval", .exp_path = args.exp_path,
                        .n_overrides = args.n_overrides, .overrides = args.overrides,
                        .checkpoint = args.checkpoint, .input = args.input, .split = split,
                        .min_events = 2, .sums_only = 1};
    cli_require("eval", args.checkpoint, "--checkpoint FILE|RUNDIR");
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    double t0 = now_seconds();
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    NextK nk = {.k = 0};
    if (sc.cfg.eval.next_k > 0) nextk_init(&nk, &sc, (int)sc.cfg.eval.next_k);
    scorer_pass(&sc, 0, &sums, nk.k ? nextk_visit : NULL, &nk);
    comm_allreduce_sum_f64((double *)&sums, LOSS_SUMS_LEN);
    comm_allreduce_sum_f64(nk.sums, 2 * NEXTK_MAX);
    char steps[NEXTK_MAX * 8 + 8] = "", nk_js[NEXTK_MAX * 8 + 96] = "";
    const double nk_acc = nk.k ? next_k_text(&nk, steps, sizeof steps) : 0;
    if (nk.k)
        snprintf(nk_js, sizeof nk_js, ",\"next_k\":%d,\"next_k_acc\":%.6g,\"next_k_steps\":\"%s\"",
                 nk.k, nk_acc, steps);
    if (nk.k) nextk_free(&nk);
    Metrics m = metrics_from(&sums);
    if (m.n_targets <= 0) { // the count is global: every rank refuses together
        if (sc.rank == 0)
            fprintf(stderr,
                    "error: trainer eval: nothing to score in %s%s: a target is an event after "
                    "another of the same user, and no user there has two events%s\n",
                    args.input ? args.input : "the ", args.input ? "" : SPLIT_NAMES[split],
                    args.input ? "" : " (is the split empty? see data.*_frac or data.*_path)");
        scorer_close(&sc);
        free(args.overrides);
        return EXIT_USAGE;
    }
    if (sc.rank == 0) {
        print_metrics(&sc, &args, &m, now_seconds() - t0);
        if (nk_js[0]) printf("  next-%d accuracy      %.4f (per step: %s)\n", (int)sc.cfg.eval.next_k, nk_acc, steps);
        if (args.output) {
            char js[1024], text[1400 + sizeof nk_js];
            metrics_json(js, sizeof js, &m);
            snprintf(text, sizeof text,
                     "{\"split\":\"%s\",\"checkpoint_step\":%lld,\"time_point\":\"%s\",%s%s}\n",
                     args.input ? "input" : SPLIT_NAMES[split], (long long)sc.ck.d.step,
                     sc.cfg.eval.time_point, js, nk_js);
            if (write_file_atomic(args.output, text, strlen(text), js, sizeof js) != 0)
                fatal("%s", js);
        }
    }
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
