// predict.c: the commands that score data with a trained model.
//
//   trainer eval EXP.yaml --checkpoint FILE|RUNDIR [--split test] [--input FILE.csv] [--output F]
//   trainer predict EXP.yaml --checkpoint FILE|RUNDIR --input FILE.csv [--output F] [--top N]
//
// Both read the experiment's prepared data for its vocabularies and statistics (preparing
// it if needed) and refuse a checkpoint trained on other data. --input reads any CSV in the
// experiment's format (same columns, same bad-row policy): eval scores every next event of
// every user in it; predict writes, per user, the next action distribution, the predicted
// time of the next event and its engagement. Outputs name users by their keyed hash only.
#include "predict.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "checkpoint.h"
#include "cli.h"
#include "comm.h"
#include "csv.h"
#include "dataset.h"
#include "evaluate.h"
#include "hash.h"
#include "rowparse.h"
#include "train.h"
#include "userkey.h"
#include "util.h"
#include "vocab.h"

// ---------------------------------------------------------------- CSV -> one in-memory shard

typedef struct {
    uint64_t user, seq;
    double time;
    int32_t action, cat[CFG_LIST_MAX];
    float num[CFG_LIST_MAX];
} Ev;

static int by_user_time(const void *a, const void *b) {
    const Ev *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

// Reads path with the experiment's columns; maps values with the training vocabularies;
// keeps users with at least min_events events whose index % size == rank.
static void csv_to_shard(const Config *cfg, const DataMeta *meta, const char *path, int min_events,
                         int rank, int size, Shard *out, long long *n_rows, long long *n_bad) {
    CsvReader *r = csv_open(path);
    if (!r) fatal("--input %s: cannot open (%s)", path, strerror(errno));
    char **f;
    int nf, rc = csv_next(r, &f, &nf);
    if (rc == 0) fatal("%s:1: empty file (expected a header row)", path);
    if (rc < 0) fatal("%s:%lld: %s", path, csv_line(r), csv_error(r));
    RowParser rp;
    row_parser_init(&rp, cfg, path, "--input", f, nf);
    StrTable vt[1 + CFG_LIST_MAX];
    for (uint32_t v = 0; v <= meta->n_cat; v++) {
        strtab_init(&vt[v]);
        for (int i = 0; i < meta->vocab_size[v]; i++)
            strtab_intern(&vt[v], meta->vocab[v][i], strlen(meta->vocab[v][i]));
    }
    UserKey key;
    userkey_load(cfg, &key);
    BadRows bad = {cfg, 0, 0};
    Ev *ev = NULL;
    size_t n = 0, cap = 0;
    Row row;
    char why[512];
    *n_rows = 0;
    while ((rc = csv_next(r, &f, &nf)) != 0) {
        ++*n_rows;
        if (rc < 0) {
            bad_row_report(&bad, path, csv_line(r), csv_error(r));
            continue;
        }
        if (row_parse(&rp, f, nf, &row, why, sizeof why) != 0) {
            bad_row_report(&bad, path, csv_line(r), why);
            continue;
        }
        if (n == cap) ev = xrealloc(ev, sizeof(Ev) * (cap = cap ? cap * 2 : 4096));
        Ev *e = &ev[n];
        e->user = userkey_hash_id(&key, row.user, strlen(row.user));
        e->seq = n++;
        e->time = row.time;
        // Ids of the training vocabulary; a value it never saw is 0 (<unk>). Interning an
        // unseen value gives it an id beyond the vocabulary, hence the bound check.
        int a = strtab_intern(&vt[0], row.action, strlen(row.action));
        e->action = a < meta->vocab_size[0] ? a : 0;
        for (uint32_t c = 0; c < meta->n_cat; c++) {
            int id = strtab_intern(&vt[1 + c], row.cat[c], strlen(row.cat[c]));
            e->cat[c] = id < meta->vocab_size[1 + c] ? id : 0;
        }
        for (uint32_t k = 0; k < meta->n_num; k++) e->num[k] = (float)row.num[k];
    }
    csv_close(r);
    for (uint32_t v = 0; v <= meta->n_cat; v++) strtab_free(&vt[v]);
    *n_bad = (long long)bad.count;
    qsort(ev, n, sizeof(Ev), by_user_time);
    const int C = (int)meta->n_cat, N = (int)meta->n_num;
    const uint32_t eb = shard_event_bytes(C, N);
    memset(out, 0, sizeof *out);
    out->events = xalloc_aligned(n * eb + 8);
    out->users = xmalloc(sizeof(ShardUser) * (n + 1));
    uint64_t n_users = 0, n_events = 0, user_index = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ev[j].user == ev[i].user) j++;
        int mine = (int)(user_index++ % (uint64_t)size) == rank;
        if ((int)(j - i) >= min_events && mine) {
            out->users[n_users++] = (ShardUser){ev[i].user, n_events, (uint32_t)(j - i), 0};
            for (size_t k = i; k < j; k++, n_events++) {
                uint8_t *e = out->events + n_events * eb;
                *(double *)e = ev[k].time;
                *(int32_t *)(e + 8) = ev[k].action;
                for (int c = 0; c < C; c++) ((int32_t *)(e + 12))[c] = ev[k].cat[c];
                for (int q = 0; q < N; q++) ((float *)(e + 12 + 4 * C))[q] = ev[k].num[q];
            }
        }
        i = j;
    }
    free(ev);
    out->hdr.n_users = n_users, out->hdr.n_events = n_events, out->hdr.event_bytes = eb;
    out->hdr.n_cat = (uint32_t)C, out->hdr.n_num = (uint32_t)N;
}

// ---------------------------------------------------------------- shared set-up

typedef struct {
    Config cfg;
    CliArgs args;
    Dataset ds;
    LoadedCheckpoint ck;
    char ckpt_path[CFG_PATH_LEN + 64];
    Model *model;
    LossConfig lc;
    int rank, size, lanes;
    long long input_rows, input_bad;
} Scorer;

// comm up, config resolved on every rank, data prepared, checkpoint read and checked;
// with --input, the file is this rank's slice of users as split `split`.
static int scorer_open(Scorer *sc, int argc, char **argv, const char *command, const char *allowed,
                       int split, int min_events) {
    cli_parse(argc, argv, command, allowed, 1, &sc->args);
    comm_init(&argc, &argv);
    sc->rank = comm_rank(), sc->size = comm_size();
    config_quiet(sc->rank != 0);
    double bad =
        config_load(&sc->cfg, sc->args.exp_path, sc->args.n_overrides, sc->args.overrides) != 0;
    config_quiet(0);
    comm_allreduce_max_f64(&bad, 1);
    if (bad) return EXIT_USAGE;
    const Config *cfg = &sc->cfg;
    if (!sc->args.checkpoint) fatal("trainer %s: --checkpoint FILE|RUNDIR is required", command);
    // Rank 0 finds the checkpoint and prepares the data; every rank parses the same bytes.
    uint64_t fp = 0;
    int64_t size = 0;
    unsigned char *buf = NULL;
    if (sc->rank == 0) {
        char err[1024];
        size_t n;
        if (checkpoint_resolve(sc->args.checkpoint, sc->ckpt_path, sizeof sc->ckpt_path, &buf, &n,
                               err, sizeof err) != 0)
            fatal("%s", err);
        size = (int64_t)n;
        fp = dataset_ensure_prepared(cfg);
    }
    comm_bcast(&fp, sizeof fp, 0);
    comm_bcast(&size, sizeof size, 0);
    comm_bcast(sc->ckpt_path, sizeof sc->ckpt_path, 0);
    if (sc->rank != 0) buf = xmalloc((size_t)size);
    comm_bcast(buf, (size_t)size, 0);
    char err[1024];
    if (checkpoint_parse(buf, (size_t)size, &sc->ck, err, sizeof err) != 0)
        fatal("%s: %s", sc->ckpt_path, err);
    free(buf);
    if (sc->args.input) {
        // One pseudo-shard per rank holding its slice of the file's users.
        char meta_path[CFG_PATH_LEN + 16];
        snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", cfg->data.shard_dir);
        memset(&sc->ds, 0, sizeof sc->ds);
        if (meta_read(meta_path, &sc->ds.meta, err, sizeof err) != 0) fatal("%s", err);
        sc->ds.n_shards = 1, sc->ds.rank = sc->rank, sc->ds.size = sc->size;
        sc->ds.shards[split] = xcalloc(1, sizeof(Shard));
        csv_to_shard(cfg, &sc->ds.meta, sc->args.input, min_events, sc->rank, sc->size,
                     &sc->ds.shards[split][0], &sc->input_rows, &sc->input_bad);
    } else {
        dataset_open_scoring(&sc->ds, cfg, fp, sc->rank, sc->size);
        dataset_load_split(&sc->ds, split);
    }
    if (sc->ck.d.data_hash != dataset_content_hash(&sc->ds.meta))
        fatal("%s: was trained on other data than this experiment's (its vocabularies and "
              "statistics differ): score it with the experiment it was trained with",
              sc->ckpt_path);
    sc->lanes = (int)cfg->eval.batch_size;
    ModelShape shape = model_shape_from(cfg, &sc->ds.meta, sc->lanes);
    if (model_shape_check(&sc->ck.d.shape, &shape, err, sizeof err) != 0)
        fatal("%s: %s", sc->ckpt_path, err);
    sc->model = model_create(&shape);
    memcpy(sc->model->params, sc->ck.params, sizeof(float) * sc->model->n_params);
    sc->lc = loss_config_from(cfg, &sc->ds.meta);
    return EXIT_OK;
}

static void scorer_close(Scorer *sc) {
    model_free(sc->model);
    checkpoint_free(&sc->ck);
    dataset_free(&sc->ds);
    free(sc->args.overrides);
    comm_finalize();
}

// ---------------------------------------------------------------- eval

int cmd_eval(int argc, char **argv) {
    Scorer sc;
    memset(&sc, 0, sizeof sc);
    // The split is known before parsing only through the arguments: look for it first.
    int split = SPLIT_TEST;
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--split") == 0 && split_from_name(argv[i + 1]) >= 0)
            split = split_from_name(argv[i + 1]);
    int rc = scorer_open(&sc, argc, argv, "eval", "--set --checkpoint --split --input --output",
                         split, 2);
    if (rc != EXIT_OK) {
        free(sc.args.overrides);
        comm_finalize();
        return rc;
    }
    const Config *cfg = &sc.cfg;
    double t0 = now_seconds();
    LaneState st = lane_state_alloc(&sc.model->shape, sc.lanes);
    BatchBuf bb;
    batchbuf_init(&bb, sc.lanes, sc.model->shape.window, sc.model->shape.n_cat,
                  sc.model->shape.n_dense);
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    evaluate_local(sc.model, &sc.ds, split, sc.lanes, &sc.lc, &st, &bb, &sums);
    comm_allreduce_sum_f64((double *)&sums, LOSS_SUMS_LEN);
    Metrics m = metrics_from(&sums);
    if (sc.rank == 0) {
        const char *what = sc.args.input ? sc.args.input : SPLIT_NAMES[split];
        printf("eval %s with %s (step %lld) on %d rank%s in %.2f s\n", what, sc.ckpt_path,
               (long long)sc.ck.d.step, sc.size, sc.size > 1 ? "s" : "", now_seconds() - t0);
        if (sc.args.input)
            printf("  %lld rows read, %lld bad rows skipped\n", sc.input_rows, sc.input_bad);
        printf("  targets scored        %.0f\n", m.n_targets);
        printf("  next-action top-1     %.4f\n", m.top1);
        printf("  next-action top-%-2d    %.4f\n", (int)cfg->eval.top_k, m.topk);
        printf("  next-action NLL       %.4f nats/event\n", m.action_nll);
        const char *unit = strcmp(cfg->data.time_unit, "none") == 0 ? "units" : cfg->data.time_unit;
        printf("  time NLL              %.4f nats/event (density per %s)\n", m.time_nll, unit);
        printf("  time MAE              %.6g %s (median prediction)\n", m.gap_mae, unit);
        printf("  time RMSE             %.6g %s\n", m.gap_rmse, unit);
        if (sc.model->shape.engagement)
            printf("  engagement MSE        %.4f (normalised)\n", m.eng_mse);
        if (sc.args.output) {
            char js[1024], text[1400];
            metrics_json(js, sizeof js, &m);
            snprintf(text, sizeof text, "{\"split\":\"%s\",\"checkpoint_step\":%lld,%s}\n",
                     sc.args.input ? "input" : SPLIT_NAMES[split], (long long)sc.ck.d.step, js);
            if (write_file_atomic(sc.args.output, text, strlen(text), js, sizeof js) != 0)
                fatal("%s", js);
        }
    }
    batchbuf_free(&bb);
    lane_state_free(&st);
    scorer_close(&sc);
    return EXIT_OK;
}

// ---------------------------------------------------------------- predict

static int by_text(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static double denorm_num(const DataMeta *m, int k, double y) {
    double x = m->num_mean[k] + m->num_std[k] * y;
    return m->numeric_log1p ? expm1(x) : x;
}

int cmd_predict(int argc, char **argv) {
    Scorer sc;
    memset(&sc, 0, sizeof sc);
    int rc = scorer_open(&sc, argc, argv, "predict", "--set --checkpoint --input --output --top",
                         SPLIT_TEST, 1);
    if (rc != EXIT_OK) {
        free(sc.args.overrides);
        comm_finalize();
        return rc;
    }
    if (!sc.args.input) fatal("trainer predict: --input FILE.csv is required");
    const DataMeta *meta = &sc.ds.meta;
    const ModelShape *s = &sc.model->shape;
    const int K = s->n_actions, O = model_outputs(s), top = sc.args.top > 0 ? sc.args.top : 3;
    // Every rank writes its users to its own part; rank 0 joins them in rank order.
    char out_path[CFG_PATH_LEN + 32];
    const char *final = sc.args.output ? sc.args.output : "predictions.csv";
    snprintf(out_path, sizeof out_path, "%s.part%d", final, sc.rank);
    FILE *f = xfopen(out_path, "w");
    LaneState st = lane_state_alloc(s, sc.lanes);
    BatchBuf bb;
    batchbuf_init(&bb, sc.lanes, s->window, s->n_cat, s->n_dense);
    EvalStream es;
    eval_stream_init(&es, &sc.ds, SPLIT_TEST, sc.lanes, 1);
    int *order = xmalloc(sizeof(int) * (size_t)K);
    const double z90 = 1.2815515655446004;
    while (eval_stream_next(&es, &bb)) {
        model_forward(sc.model, &bb.view, &st, &sc.lc, NULL, NULL, 0);
        for (int r = 0; r < bb.view.lanes * bb.view.window; r++) {
            if (bb.slot_user[r] < 0) continue;
            const Shard *sh;
            const ShardUser *u = eval_stream_user(&es, bb.slot_user[r], &sh);
            if (bb.slot_pos[r] != (int32_t)u->n_events - 1) continue;
            const float *y = sc.model->act.y + (size_t)r * O;
            double mx = y[0], z = 0;
            for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
            for (int k = 0; k < K; k++) z += exp(y[k] - mx), order[k] = k;
            for (int i = 0; i < top && i < K; i++) // partial selection sort: top few only
                for (int j = i + 1; j < K; j++)
                    if (y[order[j]] > y[order[i]]) {
                        int t = order[i];
                        order[i] = order[j], order[j] = t;
                    }
            double last =
                ev_time(sh->events + (u->first_event + u->n_events - 1) * sh->hdr.event_bytes);
            double mu = sc.lc.loggap_mean + sc.lc.loggap_std * y[K];
            double sd = sc.lc.loggap_std * exp(y[K + 1]);
            double med = fmax(0, exp(mu) - sc.lc.gap_offset);
            double lo = fmax(0, exp(mu - z90 * sd) - sc.lc.gap_offset);
            double hi = fmax(0, exp(mu + z90 * sd) - sc.lc.gap_offset);
            fprintf(f, "%016llx,%u,%.6f,%.6f", (unsigned long long)u->user_hash, u->n_events, last,
                    last + med);
            for (int i = 0; i < top; i++) {
                if (i < K)
                    fprintf(f, ",%s,%.6f", meta->vocab[0][order[i]], exp(y[order[i]] - mx) / z);
                else
                    fprintf(f, ",,");
            }
            fprintf(f, ",%.6g,%.6g,%.6g", med, lo, hi);
            if (s->engagement)
                fprintf(f, ",%.6g", denorm_num(meta, meta->engagement_index, y[K + 2]));
            fprintf(f, "\n");
        }
    }
    xfclose(f, out_path);
    free(order);
    eval_stream_free(&es);
    batchbuf_free(&bb);
    lane_state_free(&st);
    comm_barrier();
    if (sc.rank == 0) {
        StrBuf all = {0};
        sb_appendf(&all, "user_hash,n_events,last_time,predicted_time");
        for (int i = 1; i <= top; i++) sb_appendf(&all, ",action_%d,p_%d", i, i);
        sb_appendf(&all, ",gap_median,gap_p10,gap_p90%s\n", s->engagement ? ",engagement" : "");
        long long users = 0;
        StrBuf body = {0};
        for (int r = 0; r < sc.size; r++) {
            char part[CFG_PATH_LEN + 32];
            snprintf(part, sizeof part, "%s.part%d", final, r);
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
        char **rows = xmalloc(sizeof(char *) * (size_t)(users + 1));
        long long n_rows = 0;
        for (char *p = body.data, *end = body.data + body.len; p && p < end && n_rows < users;) {
            char *eol = memchr(p, '\n', (size_t)(end - p));
            if (!eol) break;
            *eol = '\0';
            rows[n_rows++] = p;
            p = eol + 1;
        }
        qsort(rows, (size_t)n_rows, sizeof(char *), by_text);
        for (long long i = 0; i < n_rows; i++) {
            sb_append(&all, rows[i], strlen(rows[i]));
            sb_append(&all, "\n", 1);
        }
        free(rows);
        sb_free(&body);
        char err[512];
        if (write_file_atomic(final, all.data, all.len, err, sizeof err) != 0) fatal("%s", err);
        printf("predict: %lld users from %s (%lld rows, %lld bad rows skipped) -> %s "
               "(users named by keyed hash; times in %s)\n",
               users, sc.args.input, sc.input_rows, sc.input_bad, final, sc.cfg.data.time_unit);
        sb_free(&all);
    }
    scorer_close(&sc);
    return EXIT_OK;
}
