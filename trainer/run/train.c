// train.c: `trainer train EXP.yaml`: the training loop, where config, data, model,
// optimizer, communication and checkpoints meet.
//
// Each step: every rank builds the window of its lanes, runs forward and backward, and
// hands each layer's gradient to a non-blocking allreduce as soon as backward finishes it;
// a header {loss sums, target count, non-finite flag, stop flag} is reduced with it.
// Gradients and losses are normalised by the GLOBAL target count, so P ranks train the same
// model as one rank with the same global batch. A non-finite gradient anywhere makes every
// rank skip the step (or stop); a stop signal anywhere makes rank 0 checkpoint and all exit
// with status 75. In reproducible mode every virtual shard is processed on its own and the
// gradient sums are reduced as exact 64-bit fixed-point integers, so the result does not
// depend on how shards are spread over ranks.
#include "train.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "best.h"
#include "checkpoint.h"
#include "comm.h"
#include "dataset.h"
#include "dp.h"
#include "drift.h"
#include "evaluate.h"
#include "gradsync.h"
#include "setup.h"
#include "step.h"
#include "optim.h"
#include "warmstart.h"
#include "runlog.h"
#include "runstate.h"
#include "signals.h"
#include "synth.h"
#include "util.h"


typedef struct {
    Config cfg;
    char *config_text;
    uint64_t config_hash;
    int rank, size;
    Dataset ds;
    uint64_t data_hash;
    ModelShape shape;
    Model *model;
    Optimizer opt;
    LossConfig lc;
    TrainStream ts;
    LaneState state, eval_state;
    BatchBuf bb;
    int lanes_per_shard, lanes; // lanes of this rank
    int eval_lanes;
    Stepper stepper;
    DpRun dp; // privacy.dp: user-level DP-SGD (dp.h)
    DpSampler dps;
    int train_lanes; // lanes of one training pass (a rank's, a shard's or a DP chunk's)
    int64_t step, skipped;
    double events_seen;
    RunLog log;
    CkptWriter *ckpt;
    char ckpt_dir[CFG_PATH_LEN + 32];
    Metrics last_valid;
    int has_valid;
    BestTracker best;           // eval.metric's best so far and the patience count (best.h)
    int64_t valid_step, saved_step; // the last validation and checkpoint (-1: none yet)
    int resumed;                    // continued from a checkpoint of this run
    double ckpt_stall_s;
    double *rank_secs; // rank 0: (size, 2) step and comm-wait seconds of the last log interval
} Trainer;

// ---------------------------------------------------------------- set-up

// Pack this rank's data cursor and lane state: [shard cursors][lane cursors][h][c].
static size_t cursor_bytes(const Trainer *tr) {
    return sizeof(ShardCursor) * (size_t)tr->ds.n_shards + sizeof(LaneCursor) * (size_t)tr->lanes +
           2 * sizeof(float) * (size_t)tr->shape.layers * (size_t)tr->lanes *
               (size_t)tr->shape.hidden;
}

static void pack_cursor(const Trainer *tr, unsigned char *out) {
    const size_t H = (size_t)tr->shape.hidden, n = (size_t)tr->lanes;
    memcpy(out, tr->ts.shard, sizeof(ShardCursor) * (size_t)tr->ds.n_shards);
    out += sizeof(ShardCursor) * (size_t)tr->ds.n_shards;
    memcpy(out, tr->ts.lane, sizeof(LaneCursor) * n);
    out += sizeof(LaneCursor) * n;
    for (int l = 0; l < tr->shape.layers; l++, out += sizeof(float) * n * H)
        memcpy(out, tr->state.h[l], sizeof(float) * n * H);
    for (int l = 0; l < tr->shape.layers; l++, out += sizeof(float) * n * H)
        memcpy(out, tr->state.c[l], sizeof(float) * n * H);
}

// Writes a checkpoint of the current state (collective: every rank sends its cursor).
static void save_checkpoint(Trainer *tr) {
    tr->saved_step = tr->step; // on every rank: it decides whether the final one is collective
    const size_t per_rank = cursor_bytes(tr);
    unsigned char *mine = xmalloc(per_rank);
    pack_cursor(tr, mine);
    unsigned char *all = tr->rank == 0 ? xmalloc(per_rank * (size_t)tr->size) : NULL;
    comm_gather_bytes(mine, per_rank, all, 0);
    free(mine);
    if (tr->rank != 0) return;
    const int V = (int)tr->ds.meta.n_vshards, B = (int)tr->cfg.train.batch_size;
    const int L = tr->shape.layers, H = tr->shape.hidden;
    ShardCursor *shards = xmalloc(sizeof(ShardCursor) * (size_t)V);
    LaneCursor *lanes = xmalloc(sizeof(LaneCursor) * (size_t)B);
    float *h = xmalloc(sizeof(float) * (size_t)L * B * H),
          *c = xmalloc(sizeof(float) * (size_t)L * B * H);
    for (int r = 0; r < tr->size; r++) {
        const unsigned char *p = all + per_rank * (size_t)r;
        const int ns = tr->ds.n_shards, nl = tr->lanes;
        memcpy(shards + (size_t)r * ns, p, sizeof(ShardCursor) * (size_t)ns);
        p += sizeof(ShardCursor) * (size_t)ns;
        memcpy(lanes + (size_t)r * nl, p, sizeof(LaneCursor) * (size_t)nl);
        p += sizeof(LaneCursor) * (size_t)nl;
        for (int l = 0; l < L; l++, p += sizeof(float) * (size_t)nl * H)
            memcpy(h + ((size_t)l * B + (size_t)r * nl) * H, p, sizeof(float) * (size_t)nl * H);
        for (int l = 0; l < L; l++, p += sizeof(float) * (size_t)nl * H)
            memcpy(c + ((size_t)l * B + (size_t)r * nl) * H, p, sizeof(float) * (size_t)nl * H);
    }
    free(all);
    CheckpointData d = {.step = tr->step,
                        .skipped_steps = tr->skipped,
                        .events_seen = tr->events_seen,
                        .epoch = train_stream_epoch(&tr->ts),
                        .seed = (uint64_t)tr->cfg.run.seed,
                        .config_text = tr->config_text,
                        .config_hash = tr->config_hash,
                        .data_hash = tr->data_hash,
                        .world_size = tr->size,
                        .shape = tr->shape,
                        .n_params = tr->model->n_params,
                        .params = tr->model->params,
                        .adam_m = tr->opt.m,
                        .adam_v = tr->opt.v,
                        .n_vshards = V,
                        .n_lanes = B,
                        .lanes_per_shard = tr->lanes_per_shard,
                        .shards = shards,
                        .lanes = lanes,
                        .lane_h = h,
                        .lane_c = c,
                        .has_metrics = tr->has_valid,
                        .last_valid = tr->last_valid,
                        .privacy = dp_run_record(&tr->dp, tr->step),
                        .best = tr->best.rec,
                        .meta = &tr->ds.meta,
                        .n_boost = tr->opt.n_boost,
                        .boost_spans = tr->opt.boost_spans,
                        .lr_boost = tr->opt.boost};
    d.best.is_best = d.best.has_best && d.best.best_step == tr->step;
    d.shape.max_lanes = 0; // buffer sizing is not part of the model
    const double stall = ckpt_writer_submit(tr->ckpt, &d);
    tr->ckpt_stall_s += stall;
    char line[160];
    snprintf(line, sizeof line, "\"event\":\"checkpoint\",\"step\":%lld,\"stall_s\":%.6f",
             (long long)tr->step, stall);
    runlog_write(&tr->log, line);
    free(shards), free(lanes), free(h), free(c);
}

// Restores parameters, moments, counters and this rank's cursor from a checkpoint.
static void restore(Trainer *tr, const LoadedCheckpoint *ck, const char *path) {
    const CheckpointData *d = &ck->d;
    // Refuse what cannot continue this run, saying what differs.
    char why[512];
    if (model_shape_check(&d->shape, &tr->shape, why, sizeof why) != 0) fatal("%s: %s", path, why);
    if (d->data_hash != tr->data_hash) {
        char diff[2048];
        checkpoint_data_diff(d->config_text, &tr->cfg, diff, sizeof diff);
        fatal("%s: was trained on other data (%s%s): check data.* settings and input files",
              path,
              diff[0] ? "its data settings differ: "
                      : "the same data settings, other input files or contents",
              diff);
    }
    if (d->n_lanes != (int)tr->cfg.train.batch_size || d->n_vshards != (int)tr->ds.meta.n_vshards)
        fatal("%s: has %d lanes over %d virtual shards; the experiment has train.batch_size=%lld, "
              "data.virtual_shards=%u",
              path, d->n_lanes, d->n_vshards, (long long)tr->cfg.train.batch_size,
              tr->ds.meta.n_vshards);
    if (d->seed != (uint64_t)tr->cfg.run.seed)
        fatal("%s: was made with run.seed=%llu, the experiment has %lld", path,
              (unsigned long long)d->seed, (long long)tr->cfg.run.seed);
    memcpy(tr->model->params, d->params, sizeof(float) * tr->model->n_params);
    memcpy(tr->opt.m, d->adam_m, sizeof(float) * tr->model->n_params);
    memcpy(tr->opt.v, d->adam_v, sizeof(float) * tr->model->n_params);
    if (optim_set_boost(&tr->opt, d->n_boost, d->boost_spans, d->lr_boost) != 0)
        fatal("%s: corrupt (its boosted spans do not fit the parameters)", path);
    tr->step = d->step, tr->skipped = d->skipped_steps, tr->events_seen = d->events_seen;
    tr->has_valid = d->has_metrics, tr->last_valid = d->last_valid;
    best_restore(&tr->best, &d->best);
    memcpy(tr->ts.shard, d->shards + tr->ds.first_shard,
           sizeof(ShardCursor) * (size_t)tr->ds.n_shards);
    memcpy(tr->ts.lane, d->lanes + tr->ts.first_lane, sizeof(LaneCursor) * (size_t)tr->lanes);
    // The cursor must point into this data (the data hash matched, so only a crafted or
    // damaged-but-rehashed file could fail this).
    for (int s = 0; s < tr->ds.n_shards; s++) {
        const int64_t n = (int64_t)tr->ds.shards[SPLIT_TRAIN][s].hdr.n_users;
        if (tr->ts.shard[s].epoch < 0 || tr->ts.shard[s].next < 0 || tr->ts.shard[s].next > n)
            fatal("%s: data cursor of virtual shard %d is out of range", path,
                  tr->ds.first_shard + s);
    }
    for (int l = 0; l < tr->lanes; l++) {
        const LaneCursor *lc = &tr->ts.lane[l];
        const Shard *sh = &tr->ds.shards[SPLIT_TRAIN][l / tr->lanes_per_shard];
        if (lc->user >= (int64_t)sh->hdr.n_users || lc->user < -1 ||
            (lc->user >= 0 && (lc->pos < 0 || lc->pos >= (int32_t)sh->users[lc->user].n_events)))
            fatal("%s: cursor of lane %d is out of range", path, tr->ts.first_lane + l);
    }
    const size_t H = (size_t)tr->shape.hidden, B = (size_t)d->n_lanes;
    for (int l = 0; l < tr->shape.layers; l++) {
        memcpy(tr->state.h[l], d->lane_h + ((size_t)l * B + (size_t)tr->ts.first_lane) * H,
               sizeof(float) * (size_t)tr->lanes * H);
        memcpy(tr->state.c[l], d->lane_c + ((size_t)l * B + (size_t)tr->ts.first_lane) * H,
               sizeof(float) * (size_t)tr->lanes * H);
    }
    if (d->config_hash != tr->config_hash && tr->rank == 0)
        printf("resume: the checkpoint was written under other settings; continuing with the "
               "current ones\n");
}

// Rank 0 finds the checkpoint to resume from; every rank gets its bytes and parses them.
static void maybe_resume(Trainer *tr) {
    char path[CFG_PATH_LEN + 64] = "";
    int64_t size = 0;
    unsigned char *buf = NULL;
    if (tr->rank == 0) {
        int none = 0;
        size_t n;
        if (checkpoint_find_latest(tr->ckpt_dir, path, sizeof path, &none, &buf, &n) == 0) {
            if (strcmp(tr->cfg.checkpoint.resume, "never") == 0)
                fatal("%s holds checkpoints but checkpoint.resume=never: use a new run.dir, or "
                      "checkpoint.resume=auto to continue",
                      tr->ckpt_dir);
            size = (int64_t)n;
        } else if (!none) {
            fatal("%s holds checkpoints but none of them is valid (see above); move them away "
                  "to start afresh",
                  tr->ckpt_dir);
        }
    }
    comm_bcast(&size, sizeof size, 0);
    if (size == 0) return;
    comm_bcast(path, sizeof path, 0);
    if (tr->rank != 0) buf = xmalloc((size_t)size);
    comm_bcast(buf, (size_t)size, 0);
    LoadedCheckpoint ck;
    char err[1024];
    if (checkpoint_parse(buf, (size_t)size, &ck, err, sizeof err) != 0) fatal("%s: %s", path, err);
    free(buf);
    restore(tr, &ck, path);
    tr->resumed = 1;
    if (tr->rank == 0)
        printf("resume: continuing from %s (step %lld, written by %d ranks, now %d)\n", path,
               (long long)ck.d.step, ck.d.world_size, tr->size);
    checkpoint_free(&ck);
}

// Rank 0's half of warm_start: 0 with the parameters (and moments, *step) written, or -1
// after one message naming the experiment, the checkpoint and what differs.
static int warm_start_read(Trainer *tr, const char *exp_path, const double *const *value_counts,
                           int64_t *step, WarmStartCounts *wc) {
    const Config *cfg = &tr->cfg;
    char path[CFG_PATH_LEN + 64], err[1024];
    unsigned char *buf = NULL;
    size_t n = 0;
    LoadedCheckpoint ck;
    int rc = checkpoint_resolve(cfg->train.init_from, path, sizeof path, &buf, &n, err, sizeof err);
    if (rc == 0 && checkpoint_parse(buf, n, &ck, err, sizeof err) != 0) rc = -1;
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "error: %s: train.init_from=%s: %s\n", exp_path, cfg->train.init_from, err);
        return -1;
    }
    const int keep_opt = cfg->train.init_optimizer;
    rc = warmstart_apply(&ck, cfg, &tr->ds.meta, &tr->shape, value_counts, tr->model->params,
                         keep_opt ? tr->opt.m : NULL, keep_opt ? tr->opt.v : NULL, wc, err,
                         sizeof err);
    if (rc != 0) {
        fprintf(stderr, "error: %s: train.init_from=%s: %s\n", exp_path, path, err);
    } else {
        *step = keep_opt ? ck.d.step : 0;
        printf("init_from: %s (step %lld); numeric statistics %s, optimizer %s\n", path,
               (long long)ck.d.step, cfg->train.init_stats, keep_opt ? "and step kept" : "fresh");
        for (uint32_t v = 0; v <= tr->ds.meta.n_cat; v++)
            printf("init_from: %s: %d values kept, %d new, %d dropped\n", tr->ds.meta.column[v],
                   wc->kept[v], wc->added[v], wc->dropped[v]);
    }
    checkpoint_free(&ck);
    return rc;
}

// The rows a warm start made for new values (rank 0's wc) learn at train.init_new_lr_mult
// times the learning rate on every rank; checkpoints carry the spans, so a resume keeps them.
static void boost_fresh_rows(Trainer *tr, WarmStartCounts *wc) {
    uint64_t n = wc->n_fresh;
    comm_bcast(&n, sizeof n, 0);
    if (tr->rank != 0 && n) wc->fresh_spans = xmalloc(sizeof(uint64_t) * 2 * n);
    if (n) comm_bcast(wc->fresh_spans, sizeof(uint64_t) * 2 * n, 0);
    const double mult = tr->cfg.train.init_new_lr_mult;
    if (n && mult != 1 && optim_set_boost(&tr->opt, n, wc->fresh_spans, mult) != 0)
        fatal("init_from: the rows of new values do not fit the parameters");
    if (tr->rank == 0 && n && mult != 1) {
        uint64_t elems = 0;
        for (uint64_t k = 0; k < n; k++) elems += wc->fresh_spans[2 * k + 1];
        printf("init_from: the rows of new values (%llu parameters) learn at %g times train.lr\n",
               (unsigned long long)elems, mult);
    }
    free(wc->fresh_spans);
}

// train.init_from on a run that did not resume: the warm-started model on every rank.
// EXIT_USAGE on every rank when the checkpoint cannot be used (rank 0 says why).
static int warm_start(Trainer *tr, const char *exp_path) {
    if (!tr->cfg.train.init_from[0] || tr->resumed) return EXIT_OK;
    int bad = 0;
    int64_t step = 0;
    // Training events per vocabulary value on all ranks: drift's reference histograms
    // (features 0..n_cat are the action and categorical columns, in vocabulary order).
    DriftHist h;
    drift_hist_init(&h, &tr->ds.meta);
    drift_hist_add(&h, &tr->ds, SPLIT_TRAIN, 0);
    drift_hist_finish(&h, 1.0);
    const double *value_counts[1 + CFG_LIST_MAX];
    for (uint32_t v = 0; v <= tr->ds.meta.n_cat; v++) value_counts[v] = h.f[v].ref;
    WarmStartCounts wc = {.n_fresh = 0};
    if (tr->rank == 0) bad = warm_start_read(tr, exp_path, value_counts, &step, &wc) != 0;
    drift_hist_free(&h);
    comm_bcast(&bad, sizeof bad, 0);
    if (bad) return EXIT_USAGE;
    boost_fresh_rows(tr, &wc);
    const size_t bytes = sizeof(float) * tr->model->n_params;
    comm_bcast(tr->model->params, bytes, 0);
    if (tr->cfg.train.init_optimizer) {
        comm_bcast(tr->opt.m, bytes, 0), comm_bcast(tr->opt.v, bytes, 0);
        comm_bcast(&step, sizeof step, 0);
        tr->step = step;
    }
    return EXIT_OK;
}

// ---------------------------------------------------------------- one step

// Applies a fault injected by the tests (TRAINER_FAULT_NAN_STEP=step:rank).
static void inject_fault(Trainer *tr) {
    const char *f = getenv("TRAINER_FAULT_NAN_STEP");
    if (!f) return;
    long long step = -1, rank = 0;
    if (sscanf(f, "%lld:%lld", &step, &rank) < 1) return;
    if (step == tr->step && rank == tr->rank) tr->stepper.fault_nan = 1;
}

// The step's batches: the next window of the rank's training lanes.
static const Batch *next_train_batch(void *ctx, int first, int n) {
    Trainer *tr = ctx;
    train_stream_next(&tr->ts, first, n, &tr->bb);
    return &tr->bb.view;
}

// ---------------------------------------------------------------- evaluation

static Metrics validate(Trainer *tr) {
    LossSums s;
    memset(&s, 0, sizeof s);
    evaluate_local(tr->model, &tr->ds, SPLIT_VALID, tr->eval_lanes, &tr->lc, &tr->eval_state,
                   &tr->bb, &s);
    comm_allreduce_sum_f64((double *)&s, LOSS_SUMS_LEN);
    return metrics_from(&s);
}

static void log_validation(Trainer *tr, const Metrics *mt) {
    if (tr->rank != 0) return;
    printf("valid  step %6lld  ", (long long)tr->step);
    metrics_print(stdout, mt, (int)tr->cfg.eval.top_k, tr->cfg.data.time_unit,
                  tr->shape.engagement);
    const double eps = dp_run_epsilon(&tr->dp, tr->step);
    if (tr->dp.on) printf("  epsilon %.4g (delta %.3g)", eps, tr->dp.delta);
    printf("\n");
    fflush(stdout);
    char js[1024], line[1300];
    metrics_json(js, sizeof js, mt);
    snprintf(line, sizeof line, "\"event\":\"valid\",\"step\":%lld,%s", (long long)tr->step, js);
    if (tr->dp.on)
        snprintf(line + strlen(line), sizeof line - strlen(line),
                 ",\"epsilon\":%.6g,\"delta\":%.6g", eps, tr->dp.delta);
    runlog_write(&tr->log, line);
}

// A validation at this step, its log line and the best record. Returns 1 when it is the new
// best (the same on every rank: rank 0's decision is broadcast, it decides a collective).
static int validate_step(Trainer *tr) {
    tr->last_valid = validate(tr);
    tr->has_valid = 1, tr->valid_step = tr->step;
    log_validation(tr, &tr->last_valid);
    int improved = best_update(&tr->best, &tr->last_valid, tr->step);
    comm_bcast(&improved, sizeof improved, 0);
    return improved;
}

// train.early_stop_patience validations without improvement: rank 0 decides for all.
static int early_stop_now(Trainer *tr) {
    int stop = best_should_stop(&tr->best);
    comm_bcast(&stop, sizeof stop, 0);
    if (!stop || tr->rank != 0) return stop;
    const CkptBest *b = &tr->best.rec;
    printf("early stop at step %lld: %lld validations without eval.metric=%s improving by at "
           "least train.early_stop_min_delta=%g (best %.6g at step %lld)\n",
           (long long)tr->step, (long long)b->evals_since_best, b->metric,
           tr->best.min_delta, b->best_value, (long long)b->best_step);
    char line[256];
    snprintf(line, sizeof line,
             "\"event\":\"early_stop\",\"step\":%lld,\"metric\":\"%s\",\"best_step\":%lld,"
             "\"best_value\":%.9g,\"evals_since_best\":%lld",
             (long long)tr->step, b->metric, (long long)b->best_step, b->best_value,
             (long long)b->evals_since_best);
    runlog_write(&tr->log, line);
    return 1;
}

// train_seconds: all segments of the run (starts and resumes, from log.jsonl), each listed in
// train_segments; train_events_per_s: this segment's.
static void write_final_metrics(Trainer *tr, const Metrics *mt, double ev_per_s) {
    char js[1024], path[CFG_PATH_LEN + 32], err[512];
    metrics_json(js, sizeof js, mt);
    StrBuf segments = {0}, text = {0};
    double total = 0;
    runstate_segments(tr->cfg.run.dir, &segments, &total);
    sb_appendf(&text,
               "{\"step\":%lld,\"skipped_steps\":%lld,\"ranks\":%d,\"train_seconds\":%.3f,"
               "\"train_segments\":%s,\"train_events_per_s\":%.1f,\"valid\":{%s}}\n",
               (long long)tr->step, (long long)tr->skipped, tr->size, total, segments.data, ev_per_s,
               js);
    snprintf(path, sizeof path, "%s/metrics.json", tr->cfg.run.dir);
    if (write_file_atomic(path, text.data, text.len, err, sizeof err) != 0) warnf("%s", err);
    sb_free(&segments), sb_free(&text);
}

// ---------------------------------------------------------------- main loop

// What the progress line of every log.every steps sums up.
typedef struct {
    double t_start, t_log;  // seconds (now_seconds)
    double comm_s, step_s;  // blocked in communication, in steps, since the last line
    double events;          // targets scored since the last line (all ranks)
    int64_t skipped;        // steps skipped since the last line
    int64_t first_step;     // the step this process started from (after a resume)
    double events_at_start; // tr->events_seen then
} Progress;

static void log_skip(Trainer *tr) {
    if (tr->rank != 0) return;
    printf("step %lld: non-finite loss or gradient on some rank: every rank skips this step "
           "(%lld skipped so far)\n",
           (long long)tr->step + 1, (long long)tr->skipped);
    char line[200];
    snprintf(line, sizeof line, "\"event\":\"skip\",\"step\":%lld,\"reason\":\"nonfinite\"",
             (long long)tr->step + 1);
    runlog_write(&tr->log, line);
}

// The progress line and its log.jsonl record (collective: every rank's seconds are gathered).
static void log_progress(Trainer *tr, Progress *pg, const StepResult *r) {
    const int64_t steps = tr->cfg.train.steps;
    // The share of step time each rank spent blocked in communication (mostly waiting for
    // the slowest rank), as the mean and the max over ranks; rank 0 also logs every rank's
    // step and wait seconds (`trainer report` shows the slowest rank).
    double mine[2] = {pg->step_s, pg->comm_s}, share[2] = {0, 0};
    comm_gather_bytes(mine, sizeof mine, tr->rank_secs, 0);
    comm_take_wait_seconds(); // the gather is not step time
    for (int q = 0; tr->rank == 0 && q < tr->size; q++) {
        const double *rs = tr->rank_secs + 2 * q, sh = rs[0] > 0 ? rs[1] / rs[0] : 0;
        share[0] += sh / tr->size, share[1] = sh > share[1] ? sh : share[1];
    }
    if (tr->rank == 0) {
        double now = now_seconds(), span = now - pg->t_log;
        double eta = (double)(steps - tr->step) * (now - pg->t_start) /
                     (double)(tr->step - pg->first_step);
        double lr = optim_lr(&tr->opt.cfg, tr->step - 1);
        const LossSums *ls = &r->h.sums;
        double n = ls->n_targets > 0 ? ls->n_targets : 1;
        char eng[32] = "";
        if (tr->shape.engagement) snprintf(eng, sizeof eng, "  eng %.4f", 2 * ls->eng_se / n);
        printf("step %6lld/%lld  loss %.4f  action %.4f  time %.4f%s  lr %.3g  %.0f ev/s  "
               "comm wait %.1f%% (max %.1f%%)  eta %.0fs\n",
               (long long)tr->step, (long long)steps, ls->loss / n, ls->action_nll / n,
               ls->time_nll / n, eng, lr, pg->events / span, 100.0 * share[0], 100.0 * share[1],
               eta);
        fflush(stdout);
        char line[700];
        snprintf(line, sizeof line,
                 "\"event\":\"step\",\"step\":%lld,\"loss\":%.9g,\"action_nll\":%.9g,"
                 "\"time_nll\":%.9g,\"eng_mse\":%.9g,\"grad_norm\":%.6g,\"lr\":%.6g,"
                 "\"events_per_s\":%.1f,\"comm_share\":%.4f,\"comm_share_max\":%.4f,"
                 "\"skipped\":%lld,\"eta_s\":%.1f",
                 (long long)tr->step, ls->loss / n, ls->action_nll / n, ls->time_nll / n,
                 2 * ls->eng_se / n, r->grad_norm, lr, pg->events / span, share[0], share[1],
                 (long long)pg->skipped, eta);
        runlog_write_ranks(&tr->log, line, tr->rank_secs, tr->size);
        pg->t_log = now;
    }
    pg->events = 0, pg->comm_s = 0, pg->step_s = 0, pg->skipped = 0;
}

// The end of a run that trained to the end: metrics.json, the summary and how close the
// model came to the generator's best (synthetic data).
static void report_done(Trainer *tr, const Progress *pg, double train_s) {
    const Config *cfg = &tr->cfg;
    double ev_s = train_s > 0 ? (tr->events_seen - pg->events_at_start) / train_s : 0;
    write_final_metrics(tr, &tr->last_valid, ev_s);
    printf("\ndone: %lld steps (%lld skipped) in %.1f s on %d rank%s; checkpoint %s\n",
           (long long)tr->step, (long long)tr->skipped, train_s, tr->size, tr->size > 1 ? "s" : "",
           ckpt_writer_last_path(tr->ckpt));
    printf("validation: ");
    metrics_print(stdout, &tr->last_valid, (int)cfg->eval.top_k, cfg->data.time_unit,
                  tr->shape.engagement);
    printf("\n");
    if (tr->dp.on)
        printf("privacy: user-level (DP-SGD, %s accountant) epsilon %.4g at delta %.3g after %lld "
               "steps (noise multiplier %.4g, sample rate %.4g, clip %g)\n",
               tr->dp.conv == DP_CONVERT_CLASSIC ? "classic" : "balle",
               dp_run_epsilon(&tr->dp, tr->step), tr->dp.delta, (long long)tr->step, tr->dp.sigma,
               tr->dp.q, tr->dp.clip);
    else
        printf("privacy: not differentially private (epsilon unbounded)\n");
    SynthReport rep;
    if (strcmp(cfg->data.source, "synth") == 0 &&
        synth_read_report(cfg->synth.out_dir, &rep) == 0) {
        const SynthSplitStats *b = &rep.split[SPLIT_VALID];
        printf("generator's best achievable on these validation users: action_nll %.4f  "
               "top1 %.4f  time_nll %.4f\n",
               b->action_nll, b->action_acc, b->time_nll);
        printf("gap to the best: action_nll %+.2f%%  time_nll %+.4f nats\n",
               100.0 * (tr->last_valid.action_nll / b->action_nll - 1.0),
               tr->last_valid.time_nll - b->time_nll);
    }
    if (tr->ckpt_stall_s > 0)
        printf("checkpoint stall: %.3f s in total (last write took %.3f s on its own)\n",
               tr->ckpt_stall_s, ckpt_writer_last_write_seconds(tr->ckpt));
}

// After the loop: the final validation and checkpoint (status EXIT_OK), the wait for the
// writer, and the status every rank agrees on. No rank leaves before rank 0 has its
// checkpoint on disk: with mpirun, the first rank to exit non-zero gets the others killed.
// Rank 0, every end through the loop: the segment in log.jsonl (metrics.json sums them), the
// status for the batch script ($TRAINER_EXIT_FILE), and what mpirun's banner about a 75 means.
static void record_segment(Trainer *tr, const Progress *pg, double train_s, int status) {
    char line[256];
    snprintf(line, sizeof line,
             "\"event\":\"segment\",\"from_step\":%lld,\"to_step\":%lld,"
             "\"train_seconds\":%.3f,\"exit\":%d",
             (long long)pg->first_step, (long long)tr->step, train_s, status);
    runlog_write(&tr->log, line);
    runstate_record_exit(status, tr->step, ckpt_writer_last_path(tr->ckpt));
    if (status == EXIT_PREEMPTED && tr->size > 1 && strcmp(comm_launcher(), "mpirun") == 0)
        printf("note: mpirun now prints a block saying a process \"exited with non-zero status\" "
               "75: that is this planned stop (checkpoint written), not a failure\n");
    fflush(stdout);
}

static int finish_training(Trainer *tr, int status, const Progress *pg) {
    double train_s = now_seconds() - pg->t_start;
    if (status == EXIT_OK) {
        if (tr->valid_step != tr->step) validate_step(tr);
        if ((tr->step > pg->first_step || !path_exists(tr->ckpt_dir)) &&
            tr->saved_step != tr->step)
            save_checkpoint(tr);
    }
    if (tr->rank == 0 && ckpt_writer_wait(tr->ckpt) != 0 &&
        (status == EXIT_OK || status == EXIT_PREEMPTED)) {
        // A stop without its checkpoint is not resumable from here: do not tell a batch
        // script to requeue (the previous checkpoint is intact).
        fprintf(stderr, "error: the %s checkpoint could not be written (see above)\n",
                status == EXIT_OK ? "final" : "stop");
        status = EXIT_FATAL;
    }
    comm_bcast(&status, sizeof status, 0);
    if (tr->rank == 0) record_segment(tr, pg, train_s, status);
    if (tr->rank == 0 && status == EXIT_OK) report_done(tr, pg, train_s);
    return status;
}

static int run_training(Trainer *tr) {
    Config *cfg = &tr->cfg;
    const int64_t steps = cfg->train.steps;
    Progress pg = {.t_start = now_seconds(),
                   .first_step = tr->step,
                   .events_at_start = tr->events_seen};
    pg.t_log = pg.t_start;
    StepResult r;
    memset(&r, 0, sizeof r);
    int status = EXIT_OK;
    comm_take_wait_seconds();
    while (tr->step < steps) {
        double t0 = now_seconds();
        // comm_share is blocked time within steps: waits in validation or checkpoints between
        // steps are not step time (booked here they gave shares above 100%).
        comm_take_wait_seconds();
        inject_fault(tr);
        r = step_run(&tr->stepper, tr->step, &tr->state, next_train_batch, tr,
                     signals_stop_requested);
        if (r.skipped) {
            if (strcmp(cfg->train.on_nonfinite, "stop") == 0) {
                if (tr->rank == 0) {
                    long long last;
                    char what[96] = "no checkpoint had been written";
                    ckpt_writer_wait(tr->ckpt); // a write in flight: name it once it is whole
                    if (checkpoint_newest_step(tr->ckpt_dir, &last) == 0)
                        snprintf(what, sizeof what, "the last checkpoint (step-%08lld.ckpt) is "
                                 "intact", last);
                    fprintf(stderr,
                            "error: step %lld: non-finite loss or gradient on some rank; "
                            "stopping (train.on_nonfinite=stop); %s\n",
                            (long long)tr->step + 1, what);
                }
                status = EXIT_NONFINITE;
                break;
            }
            tr->skipped++, pg.skipped++;
            log_skip(tr);
        }
        tr->step++;
        tr->events_seen += r.h.sums.n_targets;
        pg.events += r.h.sums.n_targets;
        pg.step_s += now_seconds() - t0;
        pg.comm_s += comm_take_wait_seconds();
        if (tr->step % cfg->log.every == 0 || tr->step == steps) log_progress(tr, &pg, &r);
        if (r.h.stop > 0) {
            if (tr->rank == 0)
                printf("stop requested by a signal: checkpointing at step %lld and exiting with "
                       "status %d (requeue to resume)\n",
                       (long long)tr->step, EXIT_PREEMPTED);
            save_checkpoint(tr);
            status = EXIT_PREEMPTED;
            break;
        }
        int best = 0, stop = 0;
        if (cfg->eval.every > 0 && tr->step % cfg->eval.every == 0 && tr->step < steps) {
            best = validate_step(tr) && cfg->checkpoint.keep_best;
            stop = early_stop_now(tr);
        }
        if (best || stop ||
            (cfg->checkpoint.every > 0 && tr->step % cfg->checkpoint.every == 0 && tr->step < steps))
            save_checkpoint(tr);
        if (stop) break; // status EXIT_OK: the final checkpoint is the one just written
    }
    return finish_training(tr, status, &pg);
}

// ---------------------------------------------------------------- set-up

// The config on every rank, and the checks that must refuse a run before anything is
// written; a failure anywhere ends all ranks with EXIT_USAGE (rank 0 says why: the ranks
// read the same files). Returns EXIT_OK or EXIT_USAGE.
static int setup_config(Trainer *tr, const TrainArgs *args) {
    config_quiet(tr->rank != 0);
    double bad = config_load(&tr->cfg, args->exp_path, args->n_overrides, args->overrides) != 0;
    config_quiet(0);
    comm_allreduce_max_f64(&bad, 1);
    if (bad) return EXIT_USAGE;
    const Config *cfg = &tr->cfg;
    comm_set_timeout(cfg->comm.timeout_s);
    if (cfg->data.virtual_shards % tr->size != 0) {
        if (tr->rank == 0) {
            char divisors[256] = "";
            for (int64_t d = 1, n = 0; d <= cfg->data.virtual_shards && n < 12; d++)
                if (cfg->data.virtual_shards % d == 0)
                    snprintf(divisors + strlen(divisors), sizeof divisors - strlen(divisors),
                             "%s%lld", n++ ? ", " : "", (long long)d);
            fprintf(stderr,
                    "error: %d ranks do not divide data.virtual_shards=%lld: run with a "
                    "number of ranks that divides it (%s), or change data.virtual_shards\n",
                    tr->size, (long long)cfg->data.virtual_shards, divisors);
        }
        return EXIT_USAGE;
    }
    tr->config_text = config_to_yaml(cfg, 0);
    tr->config_hash = config_hash(cfg);
    if (!comm_all_equal_u64(tr->config_hash))
        fatal("ranks resolved different configs (different files or environments?)");
    return EXIT_OK;
}

// Rank 0: a run with checkpoints never rebuilds its shards for other data (its checkpoints
// were trained on them): refused (exit 2) before anything is touched, naming what differs.
static void refuse_other_data(const Trainer *tr) {
    const Config *cfg = &tr->cfg;
    DIR *d = opendir(tr->ckpt_dir);
    int has_ckpt = 0;
    for (struct dirent *e; d && !has_ckpt && (e = readdir(d)) != NULL;)
        has_ckpt = strncmp(e->d_name, "step-", 5) == 0 && strstr(e->d_name, ".ckpt") != NULL;
    if (d) closedir(d);
    if (!has_ckpt || strcmp(cfg->checkpoint.resume, "never") == 0) return;
    uint64_t fp;
    char why[2600];
    if (dataset_state(cfg, &fp, why, sizeof why) != DATA_STALE) return;
    fatal_status(EXIT_USAGE,
                 "%s holds checkpoints trained on %s, which these settings would rebuild (%s); "
                 "nothing was changed: train on this data in a new run.dir, or use the settings "
                 "the checkpoints were trained with",
                 tr->ckpt_dir, cfg->data.shard_dir, why);
}

// Data prepared by every rank together (rank 0 decides whether), this rank's shards of train
// and valid loaded, the balance reported.
static void setup_data(Trainer *tr) {
    const Config *cfg = &tr->cfg;
    uint64_t fp = 0;
    if (tr->rank == 0) refuse_other_data(tr);
    comm_long_wait_begin(); // preparing the data may take long (and unevenly across ranks)
    fp = dataset_ensure_prepared_all(cfg, tr->rank, tr->size);
    comm_long_wait_end();
    dataset_open(&tr->ds, cfg, fp, tr->rank, tr->size);
    dataset_load_split(&tr->ds, SPLIT_TRAIN);
    dataset_load_split(&tr->ds, SPLIT_VALID);
    tr->data_hash = dataset_content_hash(&tr->ds.meta);
    const int V = (int)tr->ds.meta.n_vshards;
    tr->lanes_per_shard = (int)cfg->train.batch_size / V;
    tr->lanes = tr->ds.n_shards * tr->lanes_per_shard;
    tr->eval_lanes = (int)cfg->eval.batch_size;
    if (tr->rank != 0) return;
    uint64_t lo = UINT64_MAX, hi = 0, total = tr->ds.meta.split[SPLIT_TRAIN].events;
    for (int r = 0; r < tr->size; r++) {
        uint64_t e = dataset_rank_events(&tr->ds, SPLIT_TRAIN, r);
        lo = e < lo ? e : lo, hi = e > hi ? e : hi;
    }
    printf("data: %llu train events over %d virtual shards; each rank holds %llu..%llu "
           "(imbalance max/mean %.4f); %d lanes per rank\n",
           (unsigned long long)total, V, (unsigned long long)lo, (unsigned long long)hi,
           (double)hi * tr->size / (double)(total ? total : 1), tr->lanes);
}

// DP settings resolved (sigma solved from a target epsilon: it needs the user count), and
// the model's shape; EXIT_USAGE on every rank when either cannot be had.
static int setup_shape(Trainer *tr) {
    const Config *cfg = &tr->cfg;
    const uint64_t users = tr->ds.meta.split[SPLIT_TRAIN].users;
    if (dp_run_resolve(&tr->dp, cfg, users, tr->rank == 0) != 0) return EXIT_USAGE;
    int train_lanes = cfg->train.reproducible ? tr->lanes_per_shard : tr->lanes;
    if (tr->dp.on) // a chunk of the users sampled per step (rank, or shard in reproducible mode)
        train_lanes = dp_chunk_lanes(tr->dp.q * (double)users *
                                     (cfg->train.reproducible ? 1.0 / tr->ds.meta.n_vshards
                                                              : 1.0 / tr->size));
    tr->train_lanes = train_lanes;
    tr->shape = model_shape_from(cfg, &tr->ds.meta,
                                 train_lanes > tr->eval_lanes ? train_lanes : tr->eval_lanes);
    if (gradsync_bucket_count(&tr->shape, cfg->comm.bucket_mb) <= GRADSYNC_MAX_BUCKETS)
        return EXIT_OK;
    // Every rank computes the same count from the same shape: all exit 2 together.
    if (tr->rank == 0)
        fprintf(stderr,
                "error: comm.bucket_mb=%g cuts this model's gradients into more than %d "
                "buckets: raise comm.bucket_mb to at least %.3g\n",
                cfg->comm.bucket_mb, GRADSYNC_MAX_BUCKETS,
                4.0 * (double)model_param_count(&tr->shape) / 1048576.0 /
                    (GRADSYNC_MAX_BUCKETS / 2));
    return EXIT_USAGE;
}

// The DP step: Poisson sampling of users into chunks of lanes, clipping and noise (dp.h).
static void setup_dp(Trainer *tr) {
    const Config *cfg = &tr->cfg;
    dp_sampler_init(&tr->dps, &tr->ds, &tr->bb, tr->dp.q, (uint64_t)cfg->run.seed,
                    cfg->train.reproducible, tr->train_lanes, (int)cfg->train.window);
    DpConfig dpc = {.clip = tr->dp.clip,
                    .sigma = tr->dp.sigma,
                    .expected_lanes = tr->dp.expected_lanes,
                    .method = strcmp(cfg->privacy.lane_norms, "explicit") == 0 ? LANE_GRAD_EXPLICIT
                                                                              : LANE_GRAD_GHOST,
                    .next = dp_sampler_next,
                    .ctx = &tr->dps};
    stepper_dp(&tr->stepper, &dpc);
    if (tr->rank != 0) return;
    printf("privacy: user-level DP-SGD: %llu training users sampled at q=%.4g (%.0f expected per "
           "step), clip %g, noise multiplier %.4g%s, delta %.3g; epsilon after %lld steps: %.4g "
           "(%s accountant)\n",
           (unsigned long long)tr->dp.users, tr->dp.q, tr->dp.expected_lanes, tr->dp.clip,
           tr->dp.sigma, cfg->privacy.target_epsilon > 0 ? " (solved)" : "", tr->dp.delta,
           (long long)cfg->train.steps, dp_run_epsilon(&tr->dp, cfg->train.steps),
           tr->dp.conv == DP_CONVERT_CLASSIC ? "classic" : "balle");
}

// Model (rank 0's initial parameters on every rank), optimizer, streams, buffers, the step,
// and rank 0's checkpoint writer: everything the loop uses, allocated once.
static void setup_model(Trainer *tr) {
    const Config *cfg = &tr->cfg;
    // Large vocabularies: the tiled head (no (T*B, K) logits); DP's per-lane gradients read
    // the full dy, so DP keeps the untiled one.
    tr->model = model_create_head(&tr->shape, model_head_should_tile(&tr->shape) && !tr->dp.on);
    if (tr->rank == 0) model_init_params(tr->model, (uint64_t)cfg->run.seed, cfg->model.init_scale);
    comm_bcast(tr->model->params, sizeof(float) * tr->model->n_params, 0);
    OptimConfig oc = optim_config_from(cfg);
    optim_init(&tr->opt, &oc, &tr->shape, tr->model->n_params);
    tr->lc = loss_config_from(cfg, &tr->ds.meta);
    train_stream_init(&tr->ts, &tr->ds, tr->lanes_per_shard, (uint64_t)cfg->run.seed);
    tr->state = lane_state_alloc(&tr->shape, tr->lanes);
    tr->eval_state = lane_state_alloc(&tr->shape, tr->eval_lanes);
    batchbuf_init(&tr->bb, tr->shape.max_lanes, tr->shape.window, tr->shape.n_cat,
                  tr->shape.n_dense);
    stepper_init(&tr->stepper, tr->model, &tr->opt, &tr->lc, cfg->model.dropout,
                 (uint64_t)cfg->run.seed, cfg->comm.bucket_mb, tr->lanes);
    tr->stepper.dropout_input = cfg->model.dropout_input;
    tr->stepper.dropout_output = cfg->model.dropout_output;
    if (cfg->train.reproducible)
        stepper_reproducible(&tr->stepper, tr->ds.n_shards, tr->ds.first_shard,
                             (int)tr->ds.meta.n_vshards, tr->lanes_per_shard);
    if (tr->dp.on) setup_dp(tr);
    if (tr->rank != 0) return;
    tr->ckpt = ckpt_writer_create(tr->ckpt_dir, (int)cfg->checkpoint.keep, cfg->checkpoint.async,
                                  cfg->checkpoint.keep_best);
    printf("model: K=%d actions, input %d, H=%d, L=%d, %zu parameters; B=%lld lanes, T=%lld%s\n",
           tr->shape.n_actions, model_input_width(&tr->shape), tr->shape.hidden, tr->shape.layers,
           tr->model->n_params, (long long)cfg->train.batch_size, (long long)cfg->train.window,
           cfg->train.reproducible ? ", reproducible mode" : "");
}

static void trainer_free(Trainer *tr) {
    if (tr->rank == 0) {
        ckpt_writer_free(tr->ckpt);
        runlog_close(&tr->log);
    }
    if (tr->model) {
        stepper_free(&tr->stepper);
        if (tr->dp.on) dp_sampler_free(&tr->dps);
        batchbuf_free(&tr->bb);
        lane_state_free(&tr->state);
        lane_state_free(&tr->eval_state);
        train_stream_free(&tr->ts);
        optim_free(&tr->opt);
        model_free(tr->model);
    }
    dataset_free(&tr->ds);
    free(tr->config_text);
    free(tr);
}

int train_main(const TrainArgs *args, int *argc, char ***argv) {
    comm_init(argc, argv);
    Trainer *tr = xcalloc(1, sizeof *tr);
    tr->rank = comm_rank(), tr->size = comm_size();
    int status = setup_config(tr, args);
    if (status == EXIT_OK) {
        const Config *cfg = &tr->cfg;
        signals_install(strcmp(comm_launcher(), "mpirun") == 0);
        const char *blas = model_blas_setup();
        int n_hosts = comm_placement_check();
        if (tr->rank == 0) {
            runstate_check(cfg, args->resume);
            printf("run %s: %d rank%s (%s) on %d host%s, config %016llx, %s\n", cfg->run.dir,
                   tr->size, tr->size > 1 ? "s" : "", comm_launcher(), n_hosts,
                   n_hosts > 1 ? "s" : "", (unsigned long long)tr->config_hash, blas);
        }
        runstate_checkpoint_dir(cfg, tr->ckpt_dir, sizeof tr->ckpt_dir);
        setup_data(tr);
        status = setup_shape(tr);
    }
    if (status == EXIT_OK) {
        best_init(&tr->best, &tr->cfg);
        tr->valid_step = tr->saved_step = -1;
        setup_model(tr);
        maybe_resume(tr);
        if (tr->rank == 0) ckpt_writer_set_best(tr->ckpt, &tr->best.rec);
        status = warm_start(tr, args->exp_path);
    }
    if (status == EXIT_OK) {
        if (tr->rank == 0) { // accepted: only now is the run directory written
            runstate_commit(&tr->cfg, args->exp_path, args->n_overrides, args->overrides);
            runlog_open(&tr->log, tr->cfg.run.dir);
        }
        tr->rank_secs = xcalloc(2 * (size_t)tr->size, sizeof(double));
        if (tr->rank == 0)
            runlog_start(&tr->log, tr->size, comm_launcher(), tr->config_hash, tr->data_hash,
                         tr->step);
        status = run_training(tr);
        free(tr->rank_secs);
    }
    trainer_free(tr);
    comm_finalize();
    return status;
}
