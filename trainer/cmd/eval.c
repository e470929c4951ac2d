// eval.c: `trainer eval EXP.yaml --checkpoint FILE|RUNDIR [--split S] [--input F.csv]
// [--output F.json]`: scores every next event of every user of a split (or of any CSV in the
// experiment's format) on any number of ranks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "evaluate.h"
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
    printf("  time MAE              %.6g %s (median prediction)\n", m->gap_mae, unit);
    printf("  time RMSE             %.6g %s\n", m->gap_rmse, unit);
    if (sc->model->shape.engagement) printf("  engagement MSE        %.4f (normalised)\n", m->eng_mse);
}

int cmd_eval(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "eval", "--set --checkpoint --split --input --output", 1, &args);
    int split = args.split ? split_from_name(args.split) : SPLIT_TEST;
    if (split < 0) split = SPLIT_TEST;
    ScoreRequest req = {"eval", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, split, 2, 0};
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
    scorer_pass(&sc, 0, &sums, NULL, NULL);
    comm_allreduce_sum_f64((double *)&sums, LOSS_SUMS_LEN);
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
        if (args.output) {
            char js[1024], text[1400];
            metrics_json(js, sizeof js, &m);
            snprintf(text, sizeof text, "{\"split\":\"%s\",\"checkpoint_step\":%lld,%s}\n",
                     args.input ? "input" : SPLIT_NAMES[split], (long long)sc.ck.d.step, js);
            if (write_file_atomic(args.output, text, strlen(text), js, sizeof js) != 0)
                fatal("%s", js);
        }
    }
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
