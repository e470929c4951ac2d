// scoring.c: see scoring.h.
#include "scoring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm.h"
#include "input.h"
#include "setup.h"
#include "util.h"

// A checkpoint that cannot be used: fatal, or (bad_checkpoint_is_usage) one message naming
// both files, everything freed and comm finalised on every rank, EXIT_USAGE.
static int refuse(Scorer *sc, const ScoreRequest *req, const char *why) {
    if (!req->bad_checkpoint_is_usage) fatal("%s", why);
    if (sc->rank == 0)
        fprintf(stderr, "%serror: %s (experiment %s)\n", log_prefix(), why, req->exp_path);
    checkpoint_free(&sc->ck);
    dataset_free(&sc->ds);
    comm_finalize();
    return EXIT_USAGE;
}

// Rank 0 finds the checkpoint; every rank parses the same bytes. -1 with err on refusal.
static int read_checkpoint(Scorer *sc, const ScoreRequest *req, char *err, size_t cap) {
    int64_t size = 0;
    unsigned char *buf = NULL;
    if (sc->rank == 0) {
        size_t n = 0;
        if (checkpoint_resolve(req->checkpoint, sc->ckpt_path, sizeof sc->ckpt_path, &buf, &n,
                               err, cap) != 0) {
            if (!req->bad_checkpoint_is_usage) fatal("%s", err);
            size = -1; // refused on every rank
        } else {
            size = (int64_t)n;
        }
    }
    comm_bcast(&size, sizeof size, 0);
    comm_bcast(sc->ckpt_path, sizeof sc->ckpt_path, 0);
    if (size < 0) return -1;
    if (sc->rank != 0) buf = xmalloc((size_t)size);
    comm_bcast(buf, (size_t)size, 0);
    char why[1024];
    int bad = checkpoint_parse(buf, (size_t)size, &sc->ck, why, sizeof why) != 0;
    free(buf);
    if (bad) snprintf(err, cap, "%s: %s", sc->ckpt_path, why);
    return bad ? -1 : 0;
}

// Before any data is prepared: a checkpoint trained with other data settings is refused,
// naming them (rank 0 decides; -1 on every rank).
static int check_data_settings(Scorer *sc, char *err, size_t cap) {
    int64_t differ = 0;
    if (sc->rank == 0) {
        char diff[2048];
        checkpoint_data_diff(sc->ck.d.config_text, &sc->cfg, diff, sizeof diff);
        differ = diff[0] != 0;
        if (differ)
            snprintf(err, cap,
                     "%s: was trained on other data than this experiment's (its data settings "
                     "differ: %s): score it with the experiment it was trained with",
                     sc->ckpt_path, diff);
    }
    comm_bcast(&differ, sizeof differ, 0);
    return differ ? -1 : 0;
}

// Rank 0 makes sure the data is there without rebuilding the run's shards (a scratch copy
// when they are stale); every rank learns where it is. stale: what was stale (rank 0).
static uint64_t prepare_data(Scorer *sc, char *stale, size_t cap) {
    uint64_t fp = 0;
    stale[0] = 0;
    comm_long_wait_begin(); // rank 0 may prepare the data for a long time
    if (sc->rank == 0) fp = dataset_prepare_for_reading(&sc->cfg, stale, cap);
    comm_bcast(&fp, sizeof fp, 0);
    comm_long_wait_end();
    comm_bcast(sc->cfg.data.shard_dir, sizeof sc->cfg.data.shard_dir, 0);
    comm_bcast(sc->cfg.synth.out_dir, sizeof sc->cfg.synth.out_dir, 0);
    return fp;
}

// This rank's users: with --input, the file is this rank's slice of users as split `split`.
static void open_users(Scorer *sc, const ScoreRequest *req, uint64_t fp) {
    const Config *cfg = &sc->cfg;
    const int split = req->split;
    if (!req->input) {
        dataset_open_scoring(&sc->ds, cfg, fp, sc->rank, sc->size);
        dataset_load_split(&sc->ds, split);
        return;
    }
    // One pseudo-shard per rank holding its slice of the file's users.
    char meta_path[CFG_PATH_LEN + 16], err[1024];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", cfg->data.shard_dir);
    memset(&sc->ds, 0, sizeof sc->ds);
    if (meta_read(meta_path, &sc->ds.meta, err, sizeof err) != 0) fatal("%s", err);
    sc->ds.meta.gap_input = cfg->model.gap_input; // (as dataset_open does)
    sc->ds.n_shards = 1, sc->ds.rank = sc->rank, sc->ds.size = sc->size;
    sc->ds.shards[split] = xcalloc(1, sizeof(Shard));
    input_csv_to_shard(cfg, &sc->ds.meta, req->input, req->min_events, sc->rank, sc->size,
                       &sc->ds.shards[split][0], &sc->input_rows, &sc->input_bad,
                       sc->input_unseen);
}

// comm up, config resolved on every rank, checkpoint read and checked against the data
// settings, data prepared (never the run's shards rebuilt), users opened.
int scorer_open(Scorer *sc, const ScoreRequest *req, int *argc, char ***argv) {
    memset(sc, 0, sizeof *sc);
    sc->split = req->split;
    comm_init(argc, argv);
    sc->rank = comm_rank(), sc->size = comm_size();
    config_quiet(sc->rank != 0);
    double bad = config_load(&sc->cfg, req->exp_path, req->n_overrides, req->overrides) != 0;
    config_quiet(0);
    comm_allreduce_max_f64(&bad, 1);
    if (bad) {
        comm_finalize();
        return EXIT_USAGE;
    }
    const Config *cfg = &sc->cfg;
    comm_set_timeout(cfg->comm.timeout_s);
    if (!req->checkpoint)
        fatal("trainer %s: --checkpoint FILE|RUNDIR is required", req->command);
    char err[3700] = "", stale[2600];
    if (read_checkpoint(sc, req, err, sizeof err) != 0) return refuse(sc, req, err);
    if (check_data_settings(sc, err, sizeof err) != 0) return refuse(sc, req, err);
    const uint64_t fp = prepare_data(sc, stale, sizeof stale);
    open_users(sc, req, fp);
    if (sc->ck.d.data_hash != dataset_content_hash(&sc->ds.meta)) {
        snprintf(err, sizeof err,
                 "%s: was trained on other data than this experiment's (the same data settings, "
                 "other input files or contents%s%s): score it with the experiment it was "
                 "trained with",
                 sc->ckpt_path, stale[0] ? "; the run's shards differ from them in " : "",
                 stale);
        return refuse(sc, req, err);
    }
    char why[1024];
    sc->lanes = (int)cfg->eval.batch_size;
    ModelShape shape = model_shape_from(cfg, &sc->ds.meta, sc->lanes);
    if (model_shape_check(&sc->ck.d.shape, &shape, why, sizeof why) != 0) {
        snprintf(err, sizeof err, "%s: %s", sc->ckpt_path, why);
        return refuse(sc, req, err);
    }
    sc->model = model_create_head(&shape, req->sums_only && cfg->eval.next_k == 0 &&
                                              model_head_should_tile(&shape));
    memcpy(sc->model->params, sc->ck.params, sizeof(float) * sc->model->n_params);
    sc->lc = loss_config_from(cfg, &sc->ds.meta);
    return EXIT_OK;
}

void scorer_unseen_text(const Scorer *sc, char *out, size_t cap) {
    const Config *cfg = &sc->cfg;
    size_t used = 0;
    out[0] = 0;
    for (uint32_t v = 0; v <= sc->ds.meta.n_cat; v++) {
        if (!sc->input_unseen[v]) continue;
        const char *col = v ? cfg->data.categorical_cols.item[v - 1] : cfg->data.action_col;
        int n = snprintf(out + used, cap - used,
                         "%s%lld rows with a value of %s never seen in training", used ? ", " : "",
                         sc->input_unseen[v], col);
        if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
    }
    if (!used)
        snprintf(out, cap, "every %s and categorical value seen in training", cfg->data.action_col);
    else
        snprintf(out + used, cap - used, " (scored as <unk>; never predicted)");
}

void scorer_close(Scorer *sc) {
    model_free(sc->model);
    checkpoint_free(&sc->ck);
    dataset_free(&sc->ds);
    comm_finalize();
}

const ShardUser *scorer_slot_user(const EvalStream *es, const BatchBuf *bb, int r,
                                  const Shard **shard) {
    if (bb->slot_user[r] < 0) return NULL;
    return eval_stream_user(es, bb->slot_user[r], shard);
}

void scorer_pass(Scorer *sc, int include_last, LossSums *sums, ScorerVisit visit, void *ctx) {
    scorer_pass_on(sc, &sc->ds, sc->split, include_last, sums, visit, ctx);
}

void scorer_open_split(Scorer *sc, Dataset *ds, int split) {
    dataset_open_scoring(ds, &sc->cfg, sc->ds.meta.fingerprint, sc->rank, sc->size);
    dataset_load_split(ds, split);
}

void scorer_pass_on(Scorer *sc, const Dataset *ds, int split, int include_last, LossSums *sums,
                    ScorerVisit visit, void *ctx) {
    const ModelShape *s = &sc->model->shape;
    LaneState st = lane_state_alloc(s, sc->lanes);
    BatchBuf bb;
    batchbuf_init(&bb, sc->lanes, s->window, s->n_cat, s->n_dense);
    EvalStream es;
    eval_stream_init(&es, ds, split, sc->lanes, include_last);
    // Every user starts with keep = 0, so whatever the state holds is never read.
    while (eval_stream_next(&es, &bb)) {
        model_forward(sc->model, &bb.view, &st, &sc->lc, NULL, sums, 0);
        if (visit) visit(ctx, sc, &es, &bb);
    }
    eval_stream_free(&es);
    batchbuf_free(&bb);
    lane_state_free(&st);
}

// ---------------------------------------------------------------- per-user rows

// Rows by their first field (the fixed-width user hash), then in the order written: a user's
// rows all come from one rank, in an order that does not depend on the number of ranks.
typedef struct {
    const char *text;
    long long seq;
} Row;

static int by_user(const void *a, const void *b) {
    const Row *x = a, *y = b;
    const char *cx = strchr(x->text, ','), *cy = strchr(y->text, ',');
    size_t nx = cx ? (size_t)(cx - x->text) : strlen(x->text);
    size_t ny = cy ? (size_t)(cy - y->text) : strlen(y->text);
    int c = memcmp(x->text, y->text, nx < ny ? nx : ny);
    if (c == 0 && nx != ny) c = nx < ny ? -1 : 1;
    if (c == 0) c = x->seq < y->seq ? -1 : x->seq > y->seq;
    return c;
}

void user_rows_open(UserRows *ur, const char *final, int rank, int size) {
    memset(ur, 0, sizeof *ur);
    snprintf(ur->final, sizeof ur->final, "%s", final);
    snprintf(ur->part, sizeof ur->part, "%s.part%d", final, rank);
    ur->rank = rank, ur->size = size;
    ur->f = xfopen(ur->part, "w");
}

long long user_rows_join(UserRows *ur, const char *header) {
    xfclose(ur->f, ur->part);
    ur->f = NULL;
    comm_barrier();
    if (ur->rank != 0) return 0;
    StrBuf all = {0};
    sb_append(&all, header, strlen(header));
    long long users = 0;
    StrBuf body = {0};
    for (int r = 0; r < ur->size; r++) {
        char part[CFG_PATH_LEN + 48];
        snprintf(part, sizeof part, "%s.part%d", ur->final, r);
        size_t n;
        char *text = read_file(part, &n);
        if (!text) fatal("%s: cannot read (%s)", part, strerror(errno));
        for (size_t i = 0; i < n; i++) users += text[i] == '\n';
        sb_append(&body, text, n);
        free(text);
        unlink(part);
    }
    // Rows in user-hash order (their first field, fixed width), not in the order ranks and
    // lanes finished them: the file is the same on any number of ranks.
    Row *rows = xmalloc(sizeof(Row) * (size_t)(users + 1));
    long long n_rows = 0;
    for (char *p = body.data, *end = body.data + body.len; p && p < end && n_rows < users;) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) break;
        *eol = '\0';
        rows[n_rows] = (Row){p, n_rows};
        n_rows++;
        p = eol + 1;
    }
    qsort(rows, (size_t)n_rows, sizeof(Row), by_user);
    for (long long i = 0; i < n_rows; i++) {
        sb_append(&all, rows[i].text, strlen(rows[i].text));
        sb_append(&all, "\n", 1);
    }
    free(rows);
    sb_free(&body);
    char err[512];
    if (write_file_atomic(ur->final, all.data, all.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&all);
    return n_rows;
}

int scorer_require_single_lognormal(Scorer *sc, const char *what) {
    const int M = model_time_mix(&sc->model->shape);
    if (M == 1) return EXIT_OK;
    if (sc->rank == 0)
        fprintf(stderr,
                "error: trainer %s: model.time_mixture: the checkpoint's time head is a mixture "
                "of %d log-normals; %s scores the single log-normal only (train with "
                "model.time_mixture: 1)\n",
                what, M, what);
    scorer_close(sc);
    return EXIT_USAGE;
}
