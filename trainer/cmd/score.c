// score.c: `trainer score EXP.yaml --checkpoint FILE|RUNDIR [--split S | --input F.csv]
// --output DIR [--events] [--flag-rate R] [--truth truth.csv]`: the irregularity of every user
// of a split (or of any CSV in the experiment's format), on any number of ranks.
//
// Writes into DIR: users.csv (one row per user, sorted by user hash: the same bytes on any
// number of ranks), events.csv with --events (every scored event's surprisal parts) and
// summary.json (threshold and how it was calibrated, counts, timings; with a truth file, the
// detection figures of the model and of the baseline: see irregular_truth.h).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "irregular.h"
#include "irregular_truth.h"
#include "scoring.h"
#include "util.h"

#define USERS_HEADER                                                                               \
    "user_hash,score,flagged,reason,peak_start,peak_end,top_events,n_events,excess_action,"        \
    "excess_timing,excess_engagement,baseline_score\n"
#define EVENTS_HEADER                                                                              \
    "user_hash,event,time,s_action,s_timing,s_engagement,x_action,x_timing,x_engagement,excess,"   \
    "running_score\n"

typedef struct {
    Scorer *sc;
    const Calibration *cal;
    FeatureSpec fs;
    int window;
    UserRows users, events;
    int with_events;
    double n_users, n_flagged, n_events, part_sum[N_PARTS];
} ScoreRun;

static void on_event(void *ctx, const ShardUser *u, const Shard *sh, int64_t event,
                     const EventSurprise *ev, const UserScore *us) {
    ScoreRun *s = ctx;
    s->n_events++;
    for (int p = 0; p < N_PARTS; p++) s->part_sum[p] += ev->x[p];
    if (!s->with_events) return;
    double t = ev_time(sh->events + (u->first_event + (uint64_t)event) * sh->hdr.event_bytes);
    // The event index is zero-padded so that the rows sort by (user, event) as text.
    fprintf(s->events.f, "%016llx,%08lld,%.3f,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n",
            (unsigned long long)u->user_hash, (long long)event, t, ev->s[0], ev->s[1], ev->s[2],
            ev->x[0], ev->x[1], ev->x[2], ev->excess, us->score);
}

static void on_user(void *ctx, const ShardUser *u, const Shard *sh, const UserScore *us) {
    ScoreRun *s = ctx;
    double f[BASE_N_FEATURES];
    baseline_features(sh, u, &s->fs, s->window, f);
    int flagged = us->score > s->cal->threshold;
    char top[96];
    user_score_top_text(us, top, sizeof top);
    double len = (double)(us->peak.end - us->peak.start + 1);
    fprintf(s->users.f, "%016llx,%.9g,%d,%s,%lld,%lld,%s,%u,%.6g,%.6g,%.6g,%.6g\n",
            (unsigned long long)u->user_hash, us->score, flagged,
            user_score_reason_text(us), (long long)us->peak.start,
            (long long)us->peak.end, top, u->n_events, us->peak.parts[0] / len,
            us->peak.parts[1] / len, us->peak.parts[2] / len, baseline_score(s->cal, f));
    s->n_users++, s->n_flagged += flagged;
}

static void write_summary(const char *dir, const Scorer *sc, const CliArgs *args,
                          const ScoreSpec *spec, const Calibration *cal, const ScoreRun *s,
                          double secs, const char *truth_json) {
    StrBuf js = {0};
    sb_appendf(&js, "{\n  \"input\": \"%s\",\n  \"checkpoint\": \"%s\",\n  \"checkpoint_step\": %lld,\n",
               args->input ? args->input : SPLIT_NAMES[sc->split], sc->ckpt_path,
               (long long)sc->ck.d.step);
    sb_appendf(&js, "  \"statistic\": \"%s\",\n  \"window\": %d,\n",
               STAT_NAMES[spec->statistic], spec->window);
    sb_appendf(&js,
               "  \"calibration\": {\"split\": \"valid\", \"users\": %lld, \"events\": %.0f, "
               "\"flag_rate\": %.6g, \"threshold\": %.9g, \"engagement_sigma\": %.6g},\n",
               cal->n_users, cal->valid_events, cal->flag_rate, cal->threshold, cal->eng_sigma);
    sb_appendf(&js, "  \"threshold\": %.9g,\n  \"users\": %.0f,\n  \"flagged\": %.0f,\n",
               cal->threshold, s->n_users, s->n_flagged);
    sb_appendf(&js, "  \"flagged_share\": %.6f,\n  \"events_scored\": %.0f,\n",
               s->n_users > 0 ? s->n_flagged / s->n_users : 0, s->n_events);
    sb_appendf(&js, "  \"mean_excess\": {\"action\": %.6f, \"timing\": %.6f, \"engagement\": %.6f},\n",
               s->part_sum[0] / fmax(1, s->n_events), s->part_sum[1] / fmax(1, s->n_events),
               s->part_sum[2] / fmax(1, s->n_events));
    sb_appendf(&js, "  \"seconds\": %.3f,\n  \"events_per_second\": %.0f,\n  \"ranks\": %d%s%s\n}\n",
               secs, secs > 0 ? s->n_events / secs : 0, sc->size, truth_json ? ",\n  \"truth\": " : "",
               truth_json ? truth_json : "");
    char path[CFG_PATH_LEN + 32], err[512];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (write_file_atomic(path, js.data, js.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&js);
}

// Users, flagged users, events and the per-part surprise sums over every rank.
static void reduce_counts(ScoreRun *s) {
    double red[3 + N_PARTS] = {s->n_users, s->n_flagged, s->n_events};
    memcpy(red + 3, s->part_sum, sizeof s->part_sum);
    comm_allreduce_sum_f64(red, 3 + N_PARTS);
    s->n_users = red[0], s->n_flagged = red[1], s->n_events = red[2];
    memcpy(s->part_sum, red + 3, sizeof s->part_sum);
}

// Rank 0: the planted truth's report when there is one, summary.json and the two lines.
static void finish(const char *dir, Scorer *sc, const CliArgs *args, const ScoreSpec *spec,
                   const Calibration *cal, const ScoreRun *s, double rate, double pass_secs) {
    char truth_path[CFG_PATH_LEN + 32] = "", path[CFG_PATH_LEN + 32];
    const char *truth = cli_get(args, "--truth");
    if (!truth && strcmp(sc->cfg.data.source, "synth") == 0) {
        snprintf(truth_path, sizeof truth_path, "%s/truth.csv", sc->cfg.synth.out_dir);
        if (path_exists(truth_path)) truth = truth_path;
    }
    StrBuf tj = {0};
    snprintf(path, sizeof path, "%s/users.csv", dir);
    if (truth) irregular_truth_report(path, truth, &sc->cfg, rate, &tj);
    write_summary(dir, sc, args, spec, cal, s, pass_secs, tj.data);
    printf("score: %.0f users, %.0f events of %s in %.2f s (%.0f events/s, %d rank%s) -> %s\n",
           s->n_users, s->n_events, args->input ? args->input : SPLIT_NAMES[sc->split], pass_secs,
           pass_secs > 0 ? s->n_events / pass_secs : 0, sc->size, sc->size > 1 ? "s" : "", dir);
    printf("score: threshold %.6g (flag rate %.4g on %lld validation users); %.0f flagged "
           "(%.2f%%)\n",
           cal->threshold, rate, cal->n_users, s->n_flagged,
           s->n_users > 0 ? 100 * s->n_flagged / s->n_users : 0);
    sb_free(&tj);
}

int cmd_score(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "score",
              "--set --checkpoint --split --input --output --events --flag-rate --truth", 1, &args);
    cli_require("score", args.output, "--output DIR");
    if (args.split && args.input) {
        fprintf(stderr, "error: trainer score: give --split or --input, not both\n");
        free(args.overrides);
        return EXIT_USAGE;
    }
    double rate_arg = cli_get_number(&args, "score", "--flag-rate", 0, 1, -1);
    int split = args.split ? split_from_name(args.split) : SPLIT_TEST;
    ScoreRequest req = {"score", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, split, 2, 0, 0};
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc == EXIT_OK) rc = scorer_require_single_lognormal(&sc, "score");
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    const char *dir = args.output;
    if (sc.rank == 0 && mkdir_p(dir) != 0) fatal("%s: cannot create (%s)", dir, strerror(errno));
    comm_barrier();
    ScoreSpec spec = score_spec_from(&sc.cfg);
    double rate = rate_arg >= 0 ? rate_arg : sc.cfg.score.flag_rate;
    Calibration cal;
    irregular_calibrate(&sc, &spec, rate, &cal);
    SurpriseParams sp = surprise_params(&sc.model->shape, &sc.lc, cal.eng_sigma);

    ScoreRun s = {.sc = &sc, .cal = &cal, .fs = feature_spec(&sc.ds.meta), .window = spec.window};
    s.with_events = cli_get(&args, "--events") != NULL;
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/users.csv", dir);
    user_rows_open(&s.users, path, sc.rank, sc.size);
    snprintf(path, sizeof path, "%s/events.csv", dir);
    if (s.with_events) user_rows_open(&s.events, path, sc.rank, sc.size);
    comm_barrier();
    double t0 = now_seconds();
    irregular_pass(&sc, NULL, 0, &spec, &sp, on_event, on_user, &s);
    double pass_secs = now_seconds() - t0;
    comm_allreduce_max_f64(&pass_secs, 1);
    reduce_counts(&s);
    user_rows_join(&s.users, USERS_HEADER);
    if (s.with_events) user_rows_join(&s.events, EVENTS_HEADER);
    if (sc.rank == 0) finish(dir, &sc, &args, &spec, &cal, &s, rate, pass_secs);
    calibration_free(&cal);
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
