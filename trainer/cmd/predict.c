// predict.c: `trainer predict EXP.yaml --checkpoint FILE|RUNDIR --input F.csv [--output F.csv]
// [--top N] [--explain [--target T] [--steps M]]`: per user of the file, the next action
// distribution (top N), the predicted time of the next event with a 10-90% interval, and its
// engagement; with --explain also the three strongest reasons for the prediction in words
// (integrated gradients, run/explain.h; default target: the top-1 action) and the
// explanation's completeness error. Users are named by their keyed hash only; the file is
// the same on any number of ranks.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "explain.h"
#include "kmeans.h"
#include "segment_model.h"
#include "user_features.h"
#include "scoring.h"
#include "time_mix.h"
#include "timeparse.h"
#include "util.h"

// --segments DIR: the segmentation applied to every user (see segment.c).
typedef struct {
    SegmentModel sm;
    int use_model;
    ModelEmbedder emb;
    HandmadeSpec hs;
    float *vec;        // (dim) scratch
    int32_t *slot_seg; // (T * B) segment of the user whose last event is at the slot
    double *slot_dist; // (T * B) its distance to the centroid
} Segmenter;

typedef struct {
    UserRows rows;
    int top;
    int *order;    // (K) scratch for the top-N selection
    double iso_unit_s; // data.time_format=iso8601: seconds per time unit (times written as ISO)
    Explainer *ex; // --explain
    Segmenter *seg; // --segments
} Predict;

static double denorm_num(const DataMeta *m, int k, double y) {
    double x = m->num_mean[k] + m->num_std[k] * y;
    return m->numeric_log1p ? expm1(x) : x;
}

// A user's row (without its newline) from the outputs y (O) after its last event.
static void write_prediction(Predict *p, const Scorer *sc, const Shard *sh, const ShardUser *u,
                             const float *y) {
    const DataMeta *meta = &sc->ds.meta;
    const ModelShape *s = &sc->model->shape;
    const int K = s->n_actions, top = p->top;
    const double z90 = 1.2815515655446004;
    FILE *f = p->rows.f;
    int *order = p->order;
    double mx = y[0], z = 0;
    for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
    for (int k = 0; k < K; k++) z += exp(y[k] - mx), order[k] = k;
    // <unk> (id 0) stands for values the training data never had: never a prediction.
    for (int i = 1; i <= top && i < K; i++) // partial selection sort of ids 1..K-1
        for (int j = i + 1; j < K; j++)
            if (y[order[j]] > y[order[i]]) {
                int t = order[i];
                order[i] = order[j], order[j] = t;
            }
    double last = ev_time(sh->events + (u->first_event + u->n_events - 1) * sh->hdr.event_bytes);
    double mu = sc->lc.loggap_mean + sc->lc.loggap_std * y[K];
    double sd = sc->lc.loggap_std * exp(y[K + 1]);
    double q[3] = {mu - z90 * sd, mu, mu + z90 * sd}; // log(gap + delta) at 10%, 50%, 90%
    const int M = model_time_mix(s);
    for (int i = 0; i < 3 && M > 1; i++) // a mixture (time_mix.h): its quantiles
        q[i] = sc->lc.loggap_mean +
               sc->lc.loggap_std * time_mix_quantile(M, y + K, i == 0 ? 0.1 : i == 1 ? 0.5 : 0.9);
    double med = fmax(0, exp(q[1]) - sc->lc.gap_offset);
    double lo = fmax(0, exp(q[0]) - sc->lc.gap_offset);
    double hi = fmax(0, exp(q[2]) - sc->lc.gap_offset);
    fprintf(f, "%016llx,%u,", (unsigned long long)u->user_hash, u->n_events);
    if (p->iso_unit_s > 0) { // ISO-8601 in, ISO-8601 out
        char a[48], b[48];
        format_iso8601(last * p->iso_unit_s, a, sizeof a);
        format_iso8601((last + med) * p->iso_unit_s, b, sizeof b);
        fprintf(f, "%s,%s", a, b);
    } else {
        fprintf(f, "%.6f,%.6f", last, last + med);
    }
    for (int i = 1; i <= top; i++)
        fprintf(f, ",%s,%.6f", meta->vocab[0][order[i]], exp(y[order[i]] - mx) / z);
    fprintf(f, ",%.6g,%.6g,%.6g", med, lo, hi);
    if (s->engagement)
        fprintf(f, ",%.6g", denorm_num(meta, meta->engagement_index, y[model_eng_index(s)]));
}

// One row per user, at the slot of its last event.
static void predict_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    Predict *p = ctx;
    const int O = model_outputs(&sc->model->shape);
    if (p->ex) { // rows are written once explained (explained_row)
        explainer_visit(p->ex, sc, es, bb);
        return;
    }
    for (int r = 0; r < bb->view.lanes * bb->view.window; r++) {
        const Shard *sh;
        const ShardUser *u = scorer_slot_user(es, bb, r, &sh);
        if (!u || bb->slot_pos[r] != (int32_t)u->n_events - 1) continue;
        write_prediction(p, sc, sh, u, sc->model->act.y + (size_t)r * O);
        if (p->seg) fprintf(p->rows.f, ",%d,%.6f", p->seg->slot_seg[r], p->seg->slot_dist[r]);
        fprintf(p->rows.f, "\n");
    }
}

// --explain: the prediction's row plus its three strongest reasons, quoted.
static void explained_row(void *ctx, const Explainer *ex, const ExplainTarget *t) {
    Predict *p = ctx;
    write_prediction(p, ex->sc, t->shard, t->user, t->y);
    char reasons[3][EXPLAIN_REASON_LEN];
    int n = explain_reasons(ex, t, 3, reasons);
    for (int i = 0; i < 3; i++) {
        fprintf(p->rows.f, ",\"");
        for (const char *c = i < n ? reasons[i] : ""; *c; c++) {
            if (*c == '"') fputc('"', p->rows.f); // CSV: a quote inside quotes is doubled
            fputc(*c, p->rows.f);
        }
        fprintf(p->rows.f, "\"");
    }
    fprintf(p->rows.f, ",%.3e\n", t->item.res.rel_err);
}

// The user's vector (model or handmade), standardised as when fitted, to its nearest centroid.
static void segment_user(void *ctx, int32_t user, const ShardUser *u, const Shard *sh,
                         const float *vec, int slot) {
    Segmenter *g = ctx;
    const int dim = g->sm.dim;
    if (!g->use_model) {
        handmade_user(&g->hs, sh, u, g->vec);
        vec = g->vec;
    }
    float *z = g->vec;
    for (int j = 0; j < dim; j++)
        z[j] = g->sm.std[j] > 0 ? (float)((vec[j] - g->sm.mean[j]) / g->sm.std[j]) : 0.0f;
    double d2;
    g->slot_seg[slot] = kmeans_nearest(z, g->sm.centroids, g->sm.k, dim, &d2);
    g->slot_dist[slot] = sqrt(d2);
}

static void predict_with_segments(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    Predict *p = ctx;
    model_embedder_visit(&p->seg->emb, sc->model, es, bb, segment_user, p->seg);
    predict_visit(ctx, sc, es, bb);
}

// Reads DIR/centroids.pb and checks it belongs to this checkpoint and data. Returns 0, or -1
// after a message (rank 0) naming both files.
static int segmenter_open(Segmenter *g, const char *dir, const Scorer *sc) {
    memset(g, 0, sizeof *g);
    char path[CFG_PATH_LEN + 32], err[1400];
    snprintf(path, sizeof path, "%s/centroids.pb", dir);
    int bad = segment_model_read(path, &g->sm, err, sizeof err) != 0;
    g->use_model = !bad && strcmp(g->sm.features, "model") == 0;
    int embedding = bad ? 0 : embedding_from_name(g->sm.embedding);
    if (!bad && g->sm.params_hash != segment_params_hash(sc->ck.params, sc->ck.d.n_params)) {
        snprintf(err, sizeof err, "%s: was made from %s (step %lld), not from %s (step %lld): run "
                 "trainer segment with this checkpoint", path, g->sm.ckpt_path,
                 (long long)g->sm.step, sc->ckpt_path, (long long)sc->ck.d.step);
        bad = 1;
    }
    if (!bad) {
        model_embedder_init(&g->emb, &sc->model->shape, sc->lanes, embedding < 0 ? 0 : embedding);
        handmade_init(&g->hs, &sc->ds.meta);
        int want = g->use_model ? g->emb.dim : g->hs.dim;
        if (embedding < 0 || g->sm.dim != want || g->sm.data_hash != sc->ck.d.data_hash) {
            snprintf(err, sizeof err, "%s: its features (%s, %d values) do not match %s", path,
                     g->sm.features, g->sm.dim, sc->ckpt_path);
            bad = 1;
        }
    }
    if (bad) {
        if (sc->rank == 0) fprintf(stderr, "error: %s\n", err);
        return -1;
    }
    const size_t TB = (size_t)sc->lanes * (size_t)sc->model->shape.window;
    g->vec = xmalloc(sizeof(float) * (size_t)g->sm.dim);
    g->slot_seg = xcalloc(TB, sizeof(int32_t));
    g->slot_dist = xcalloc(TB, sizeof(double));
    return 0;
}

static void segmenter_free(Segmenter *g) {
    model_embedder_free(&g->emb);
    handmade_free(&g->hs);
    segment_model_free(&g->sm);
    free(g->vec), free(g->slot_seg), free(g->slot_dist);
}

// The CSV header: per user, the time columns, the top actions, the gap quantiles (in
// data.time_unit, named: gap_median_s; unitless data: no suffix), then the optional parts.
static void predict_header(StrBuf *h, const Predict *p, const char *unit, int engagement,
                           int explain) {
    sb_appendf(h, "user_hash,n_events,last_time,predicted_time");
    for (int i = 1; i <= p->top; i++) sb_appendf(h, ",action_%d,p_%d", i, i);
    const char *sep = *unit ? "_" : "";
    sb_appendf(h, ",gap_median%s%s,gap_p10%s%s,gap_p90%s%s%s", sep, unit, sep, unit, sep, unit,
               engagement ? ",engagement" : "");
    sb_appendf(h, "%s%s\n", explain ? ",reason_1,reason_2,reason_3,completeness_error" : "",
               p->seg ? ",segment,segment_distance" : "");
}

static void print_summary(const Scorer *sc, long long users, const char *input, const char *out,
                          int iso, const char *unit) {
    char unseen[1024];
    scorer_unseen_text(sc, unseen, sizeof unseen);
    printf("predict: %lld users from %s (%lld rows, %lld bad rows skipped; %s) -> %s "
           "(users named by keyed hash; times %s, gaps in %s)\n",
           users, input, sc->input_rows, sc->input_bad, unseen, out,
           iso ? "in ISO-8601 UTC" : "as numbers, like the input's", *unit ? unit : "time units");
}

int cmd_predict(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "predict",
              "--set --checkpoint --input --output --top --explain --target --steps --segments", 1,
              &args);
    if (args.explain && args.segments) {
        fprintf(stderr, "error: trainer predict: --explain and --segments are separate runs "
                        "(one of them at a time)\n");
        exit(EXIT_USAGE);
    }
    ExplainOptions eo;
    memset(&eo, 0, sizeof eo);
    explain_parse_target("predict", args.target, &eo);
    eo.steps = args.steps;
    if ((args.target || args.steps) && !args.explain) {
        fprintf(stderr, "error: trainer predict: --target and --steps go with --explain\n");
        exit(EXIT_USAGE);
    }
    ScoreRequest req = {"predict", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, SPLIT_TEST, 1, 0, 0};
    cli_require("predict", args.checkpoint, "--checkpoint FILE|RUNDIR");
    cli_require("predict", args.input, "--input FILE.csv");
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc != EXIT_OK) {
        free(args.overrides);
        return rc;
    }
    int action;
    if (explain_resolve_target(&eo, &sc.ds.meta, sc.rank, &action) != 0) {
        scorer_close(&sc);
        free(args.overrides);
        return EXIT_USAGE;
    }
    const ModelShape *s = &sc.model->shape;
    const int n_known = s->n_actions - 1; // actions the model can predict (all but <unk>)
    if (args.top_given && (args.top < 1 || args.top > n_known)) {
        if (sc.rank == 0)
            fprintf(stderr, "error: trainer predict: --top %d: must be 1..%d (the model knows %d "
                    "actions)\n", args.top, n_known, n_known);
        scorer_close(&sc);
        free(args.overrides);
        return EXIT_USAGE;
    }
    Predict p = {.top = args.top_given ? args.top : (n_known < 3 ? n_known : 3)};
    const int iso = strcmp(sc.cfg.data.time_format, "iso8601") == 0;
    if (iso) p.iso_unit_s = config_time_unit_seconds(&sc.cfg);
    Segmenter seg;
    if (args.segments) {
        double bad = segmenter_open(&seg, args.segments, &sc) != 0;
        comm_allreduce_max_f64(&bad, 1);
        if (bad) {
            segmenter_free(&seg);
            scorer_close(&sc);
            free(args.overrides);
            return EXIT_USAGE;
        }
        p.seg = &seg;
    }
    p.order = xmalloc(sizeof(int) * (size_t)s->n_actions);
    const char *final = args.output ? args.output : "predictions.csv";
    user_rows_open(&p.rows, final, sc.rank, sc.size);
    if (args.explain) p.ex = explainer_create(&sc, &eo, action, explained_row, &p);
    scorer_pass(&sc, 1, NULL, p.seg ? predict_with_segments : predict_visit, &p);
    if (p.ex) explainer_finish(p.ex);
    explainer_free(p.ex);
    free(p.order);
    StrBuf header = {0};
    const char *unit = strcmp(sc.cfg.data.time_unit, "none") == 0 ? "" : sc.cfg.data.time_unit;
    predict_header(&header, &p, unit, s->engagement, args.explain);
    long long users = user_rows_join(&p.rows, header.data);
    sb_free(&header);
    if (p.seg) segmenter_free(&seg);
    if (sc.rank == 0) print_summary(&sc, users, args.input, final, iso, unit);
    scorer_close(&sc);
    free(args.overrides);
    return EXIT_OK;
}
