// drift.c: `trainer drift EXP.yaml --checkpoint FILE|RUNDIR --input NEW.csv [--output F.json]`:
// have the events moved away from what the model was trained on? Per-feature shift against
// the training split (run/drift.h), the model's NLL and accuracy on the new events against
// its figures on the validation split (the main signal), values training never saw and
// values that vanished, one verdict line and drift.json (default: run.dir/drift.json).
// Data-parallel like eval: both passes go through scorer_pass.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "drift.h"
#include "scoring.h"
#include "util.h"

#define DRIFT_THRESHOLD 0.1

static Metrics pass_metrics(Scorer *sc, const Dataset *ds, int split) {
    LossSums s;
    memset(&s, 0, sizeof s);
    scorer_pass_on(sc, ds, split, 0, &s, NULL, NULL);
    comm_allreduce_sum_f64((double *)&s, LOSS_SUMS_LEN);
    return metrics_from(&s);
}

// Vocabulary entries seen in training (at least 0.1% of a feature's events) and never in
// the new events, as a JSON array of strings into sb; the count is returned.
static int vanished(const DriftFeature *f, char **names, StrBuf *sb) {
    double n = 0;
    int k = 0;
    for (int i = 0; i < f->n_bins; i++) n += f->ref[i];
    sb_appendf(sb, "[");
    for (int i = 1; i < f->n_bins; i++)
        if (f->ref[i] >= 0.001 * n && f->cur[i] == 0)
            sb_appendf(sb, "%s\"%s\"", k++ ? "," : "", names[i]);
    sb_appendf(sb, "]");
    return k;
}

static void metrics_line(const char *what, const Metrics *m) {
    printf("  %-22s action_nll %.4f  top1 %.4f  time_nll %.4f  (%.0f targets)\n", what,
           m->action_nll, m->top1, m->time_nll, m->n_targets);
}

static void report(const Scorer *sc, const CliArgs *args, const DriftHist *h, const Metrics *ref,
                   const Metrics *cur, DriftVerdict v) {
    const DataMeta *m = &sc->ds.meta;
    printf("drift of %s against the training data of %s\n", args->input, sc->ckpt_path);
    StrBuf js = {0};
    sb_appendf(&js, "{\"checkpoint\":\"%s\",\"input\":\"%s\",\"threshold\":%g,\"features\":[",
               sc->ckpt_path, args->input, DRIFT_THRESHOLD);
    printf("  %-22s %8s %8s %s\n", "feature", "js", "psi", "");
    for (int i = 0; i < h->n; i++) {
        const DriftFeature *f = &h->f[i];
        StrBuf gone = {0};
        int n_gone = f->vocab >= 0 ? vanished(f, m->vocab[f->vocab], &gone) : 0;
        printf("  %-22s %8.4f %8.4f %s", f->name, f->js, f->psi, f->shifted ? "SHIFTED" : "");
        if (f->vocab >= 0)
            printf("  unseen in training %.2f%% (was %.2f%%), vanished %d: %s", 100 * f->cur_unk,
                   100 * f->ref_unk, n_gone, gone.data);
        printf("\n");
        sb_appendf(&js, "%s{\"name\":\"%s\",\"js\":%.6g,\"psi\":%.6g,\"shifted\":%s", i ? "," : "",
                   f->name, f->js, f->psi, f->shifted ? "true" : "false");
        if (f->vocab >= 0)
            sb_appendf(&js, ",\"unseen_share\":%.6g,\"unseen_share_train\":%.6g,\"vanished\":%s",
                       f->cur_unk, f->ref_unk, gone.data);
        sb_appendf(&js, "}");
        sb_free(&gone);
    }
    metrics_line("model on validation", ref);
    metrics_line("model on new events", cur);
    const double d_action = ref->action_nll > 0 ? cur->action_nll / ref->action_nll - 1 : 0;
    printf("  action NLL %+.2f%%, top1 %+.4f, time NLL %+.4f nats\n", 100 * d_action,
           cur->top1 - ref->top1, cur->time_nll - ref->time_nll);
    printf("verdict: %s\n", DRIFT_VERDICT_TEXT[v]);
    char a[1024], b[1024];
    metrics_json(a, sizeof a, ref), metrics_json(b, sizeof b, cur);
    sb_appendf(&js, "],\"valid\":{%s},\"new\":{%s},\"action_nll_change\":%.6g,"
               "\"time_nll_change\":%.6g,\"verdict\":\"%s\"}\n",
               a, b, d_action, cur->time_nll - ref->time_nll, DRIFT_VERDICT_TEXT[v]);
    char path[CFG_PATH_LEN + 32], err[512];
    if (args->output)
        snprintf(path, sizeof path, "%s", args->output);
    else
        snprintf(path, sizeof path, "%s/drift.json", sc->cfg.run.dir);
    if (write_file_atomic(path, js.data, js.len, err, sizeof err) != 0) fatal("%s", err);
    printf("wrote %s\n", path);
    sb_free(&js);
}

int cmd_drift(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "drift", "--set --checkpoint --input --output", 1, &args);
    cli_require("drift", args.checkpoint, "--checkpoint FILE|RUNDIR");
    cli_require("drift", args.input, "--input NEW.csv");
    ScoreRequest req = {"drift", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, SPLIT_VALID, 2, 1, 0};
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    Metrics cur = pass_metrics(&sc, &sc.ds, sc.split);
    Dataset valid, train;
    scorer_open_split(&sc, &valid, SPLIT_VALID);
    Metrics ref = pass_metrics(&sc, &valid, SPLIT_VALID);
    scorer_open_split(&sc, &train, SPLIT_TRAIN);
    DriftHist h;
    drift_hist_init(&h, &sc.ds.meta);
    drift_hist_add(&h, &train, SPLIT_TRAIN, 0);
    drift_hist_add(&h, &sc.ds, sc.split, 1);
    drift_hist_finish(&h, DRIFT_THRESHOLD);
    if (cur.n_targets <= 0) {
        if (sc.rank == 0)
            fprintf(stderr, "error: trainer drift: nothing to score in %s (no user has two "
                            "events)\n", args.input);
        rc = EXIT_USAGE;
    } else if (sc.rank == 0) {
        report(&sc, &args, &h, &ref, &cur, drift_verdict(&h, &ref, &cur));
    }
    drift_hist_free(&h);
    dataset_free(&valid), dataset_free(&train);
    scorer_close(&sc);
    free(args.overrides);
    return rc;
}
