// explain.c: `trainer explain EXP.yaml --checkpoint FILE|RUNDIR (--split S | --input F.csv)
// --output DIR [--users N] [--per-user N] [--target predicted|action:NAME|gap] [--steps M]
// [--max-steps M] [--window N] [--sanity]`: integrated-gradients explanations of the model's
// predictions (run/attribution.h, run/explain.h), data-parallel under mpirun.
// `--target change [--flag-rate R]`: instead, the change-point evidence of every user that
// `score` flags for a change point (run/explain_change.h), in the same files. Writes
//   DIR/events.csv   user_hash,target_index,offset,group,attribution (one row per past event
//                    of the window and feature group; offset 1 = the event the prediction
//                    follows, target_index = the index of the predicted event)
//   DIR/targets.csv  per explained prediction: the output explained, f(input), f(baseline),
//                    the completeness error and steps, the deletion check, the sanity check
//   DIR/summary.json, DIR/summary.md   (run/explain_summary.h)
// The files are the same on any number of ranks (rows sorted by user hash).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "explain.h"
#include "explain_change.h"
#include "explain_summary.h"
#include "util.h"

typedef struct {
    UserRows events, targets;
} Outputs;

// A name fit for our unquoted CSV fields.
static void csv_safe(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src);
    for (char *p = dst; *p; p++)
        if (*p == ',' || *p == '"' || *p == '\n' || *p == '\r') *p = '_';
}

static void write_target(void *ctx, const Explainer *ex, const ExplainTarget *t) {
    Outputs *out = ctx;
    const AttrItem *it = &t->item;
    const AttrResult *r = &it->res;
    const int G = ex->fg.n_groups, K = ex->sc->model->shape.n_actions, index = t->last + 1;
    const unsigned long long h = (unsigned long long)t->user_hash;
    for (int row = it->n - 1; row >= 0; row--)
        for (int g = 0; g < G; g++)
            fprintf(out->events.f, "%016llx,%d,%d,%s,%.6g\n", h, index, it->n - row,
                    ex->fg.name[g], r->attr[(size_t)row * G + g]);
    const int pred = explain_predicted(ex, t);
    double z = 0;
    for (int k = 0; k < K; k++) z += exp((double)t->y[k] - t->y[pred]);
    char target[96], name[96];
    explain_target_name(ex, t, name, sizeof name);
    csv_safe(target, sizeof target, name);
    csv_safe(name, sizeof name, ex->sc->ds.meta.vocab[0][pred]);
    fprintf(out->targets.f, "%016llx,%d,%s,%s,%.6g,%.6g,%.6g,%.6g,%.3e,%d,", h, index, target,
            name, 1 / z, r->f_input, r->f_baseline, r->attr_sum, r->rel_err, r->steps);
    if (it->top_row >= 0)
        fprintf(out->targets.f, "%d,%.6g,%d,%.6g,", it->n - it->top_row, it->del_top,
                it->n - it->random_row, it->del_random);
    else
        fprintf(out->targets.f, ",,,,");
    if (isfinite(t->sanity_rho))
        fprintf(out->targets.f, "%.4f\n", t->sanity_rho);
    else
        fprintf(out->targets.f, "\n");
}

static void options_from(const CliArgs *a, ExplainOptions *o) {
    memset(o, 0, sizeof *o);
    explain_parse_target("explain", a->target, o);
    o->steps = a->steps, o->max_steps = a->max_steps, o->window = a->window;
    o->per_user = a->per_user, o->users = a->users;
    o->deletion = 1, o->sanity = a->sanity;
}

static void report(Scorer *sc, Explainer *ex, const CliArgs *args, double wall, long long n) {
    double lanes = (double)ex->at->lane_steps + (ex->at_random ? (double)ex->at_random->lane_steps : 0);
    double sum[3] = {ex->seconds, ex->cpu_seconds, lanes}, mx = wall;
    comm_allreduce_sum_f64(sum, 3);
    comm_allreduce_max_f64(&mx, 1);
    if (sc->rank != 0) return;
    const char *what = args->input ? args->input : SPLIT_NAMES[sc->split];
    printf("explain %s with %s (step %lld) on %d rank%s: %lld predictions in %.2f s\n", what,
           sc->ckpt_path, (long long)sc->ck.d.step, sc->size, sc->size > 1 ? "s" : "", n, mx);
    // Path points x time steps, each one forward and one backward: the unit of training's
    // events/s. Per CPU-second too, since the wall clock of a shared machine says little.
    printf("  explained targets/s: %.1f (wall, all ranks); per rank: %.1f per second explaining, "
           "%.1f per CPU-second\n",
           mx > 0 ? n / mx : 0, sum[0] > 0 ? n / sum[0] : 0, sum[1] > 0 ? n / sum[1] : 0);
    printf("  path points x time steps (forward+backward): %.3g per CPU-second%s\n",
           sum[1] > 0 ? sum[2] / sum[1] : 0, ex->at_random ? " (sanity doubles the work)" : "");
}

// --target change: the users `score` flags for a change point, the segment that explains each
// and what every event and part added to its ratio (run/explain_change.h).
static int explain_change(const CliArgs *args, int split, int *argc, char ***argv) {
    const char *gradient_only = args->users        ? "--users"
                                : args->per_user   ? "--per-user"
                                : args->steps      ? "--steps"
                                : args->max_steps  ? "--max-steps"
                                : args->window     ? "--window"
                                : args->sanity     ? "--sanity"
                                                   : NULL;
    if (gradient_only) {
        fprintf(stderr, "error: trainer explain --target change: %s is for gradient explanations "
                        "(the change point explains every flagged user's segment)\n",
                gradient_only);
        return EXIT_USAGE;
    }
    double rate_arg = cli_get_number(args, "explain", "--flag-rate", 0, 1, -1);
    ScoreRequest req = {"explain", args->exp_path, args->n_overrides, args->overrides,
                        args->checkpoint, args->input, split, 2, 1, 0};
    Scorer sc;
    int rc = scorer_open(&sc, &req, argc, argv);
    if (rc == EXIT_OK) rc = scorer_require_single_lognormal(&sc, "explain --target change");
    if (rc != EXIT_OK) return rc;
    ScoreSpec spec = score_spec_from(&sc.cfg);
    if (spec.statistic != STAT_ZWINDOW) {
        if (sc.rank == 0)
            fprintf(stderr, "error: trainer explain --target change: score.statistic is %s; the "
                            "change point is a channel of zwindow\n", STAT_NAMES[spec.statistic]);
        scorer_close(&sc);
        return EXIT_USAGE;
    }
    if (sc.rank == 0 && mkdir_p(args->output) != 0)
        fatal("trainer explain: cannot create %s (%s)", args->output, strerror(errno));
    comm_barrier();
    const double rate = rate_arg >= 0 ? rate_arg : sc.cfg.score.flag_rate;
    Calibration cal;
    irregular_calibrate(&sc, &spec, rate, &cal);
    SurpriseParams sp = surprise_params(&sc.model->shape, &sc.lc, cal.eng_sigma);
    Outputs out;
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/events.csv", args->output);
    user_rows_open(&out.events, path, sc.rank, sc.size);
    snprintf(path, sizeof path, "%s/targets.csv", args->output);
    user_rows_open(&out.targets, path, sc.rank, sc.size);
    long long mine = 0;
    explain_change_pass(&sc, &spec, &cal, &sp, &out.events, &out.targets, &mine);
    user_rows_join(&out.events, EXPLAIN_EVENTS_HEADER);
    long long n = user_rows_join(&out.targets, EXPLAIN_TARGETS_HEADER);
    if (sc.rank == 0) {
        printf("explain --target change: %lld users flagged for a change point (threshold %.6g, "
               "flag rate %.4g on %lld validation users) in %s\n",
               n, cal.threshold, rate, cal.n_users, args->input ? args->input : SPLIT_NAMES[sc.split]);
        FeatureGroups fg;
        explain_change_groups(&fg);
        char err[1024];
        SummaryInfo info = {"change", args->input ? args->input : SPLIT_NAMES[sc.split], 0, 0,
                            cp_len(spec.window), &fg};
        if (explain_write_summary(args->output, &info, err, sizeof err) != 0) fatal("%s", err);
        printf("  -> %s/{events.csv,targets.csv,summary.json,summary.md} (users named by keyed "
               "hash)\n", args->output);
    }
    calibration_free(&cal);
    scorer_close(&sc);
    return EXIT_OK;
}

int cmd_explain(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "explain",
              "--set --checkpoint --split --input --output --users --per-user --target --steps "
              "--max-steps --window --sanity --flag-rate",
              1, &args);
    // One check of the output and the data for every target (change included).
    if (!args.output || (args.split && args.input) || strlen(args.output) > CFG_PATH_LEN - 32) {
        fprintf(stderr, "error: trainer explain: %s\n",
                !args.output  ? "--output DIR is required"
                : args.input ? "give --split or --input, not both"
                             : "--output: the path is too long");
        exit(EXIT_USAGE);
    }
    if (args.target && strcmp(args.target, "change") == 0) {
        int split = args.split ? split_from_name(args.split) : SPLIT_TEST;
        int rc = explain_change(&args, split < 0 ? SPLIT_TEST : split, &argc, &argv);
        free(args.overrides);
        return rc;
    }
    if (cli_get(&args, "--flag-rate")) {
        fprintf(stderr, "error: trainer explain: --flag-rate goes with --target change\n");
        exit(EXIT_USAGE);
    }
    ExplainOptions o;
    options_from(&args, &o);
    int split = args.split ? split_from_name(args.split) : SPLIT_TEST;
    ScoreRequest req = {"explain", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, split < 0 ? SPLIT_TEST : split, 1, 0, 0};
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv), action;
    if (rc == EXIT_OK && explain_resolve_target(&o, &sc.ds.meta, sc.rank, &action) != 0) {
        scorer_close(&sc);
        rc = EXIT_USAGE;
    } else if (rc == EXIT_OK && o.kind == ATTR_GAP) {
        rc = scorer_require_single_lognormal(&sc, "explain --target gap");
    }
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    if (sc.rank == 0 && mkdir_p(args.output) != 0)
        fatal("trainer explain: cannot create %s (%s)", args.output, strerror(errno));
    comm_barrier();
    Outputs out;
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/events.csv", args.output);
    user_rows_open(&out.events, path, sc.rank, sc.size);
    snprintf(path, sizeof path, "%s/targets.csv", args.output);
    user_rows_open(&out.targets, path, sc.rank, sc.size);
    Explainer *ex = explainer_create(&sc, &o, action, write_target, &out);
    double t0 = now_seconds();
    scorer_pass(&sc, 1, NULL, explainer_visit, ex);
    explainer_finish(ex);
    double wall = now_seconds() - t0;
    user_rows_join(&out.events, EXPLAIN_EVENTS_HEADER);
    long long n = user_rows_join(&out.targets, EXPLAIN_TARGETS_HEADER);
    report(&sc, ex, &args, wall, n);
    if (sc.rank == 0) {
        char err[1024];
        SummaryInfo info = {args.target ? args.target : "predicted",
                            args.input ? args.input : SPLIT_NAMES[sc.split], ex->opt.steps,
                            ex->opt.max_steps, ex->opt.window, &ex->fg};
        if (explain_write_summary(args.output, &info, err, sizeof err) != 0) fatal("%s", err);
        printf("  -> %s/{events.csv,targets.csv,summary.json,summary.md} (users named by keyed "
               "hash)\n", args.output);
    }
    explainer_free(ex);
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
