// segment.c: `trainer segment EXP.yaml --checkpoint FILE|RUNDIR [--split train|valid|test |
// --input F.csv] [--k K|auto] [--features model|handmade] [--embedding mean|last|last+mean]
// [--restarts N] --output DIR [--force]`: user segments from the trained model.
//
// One scoring pass (run/scoring.h) feeds every user's whole history through the model; each
// rank keeps its own users' feature vectors (model embedding and handmade features, see
// run/user_features.h), standardises them and clusters them with k-means (run/kmeans.h):
// only sums, counts and single seed points cross ranks, and the result is the same on any
// number of ranks. Writes DIR/segments.csv (user_hash,segment,distance_to_centroid, sorted
// by user hash), profiles.json, profiles.md and centroids.pb (for `predict --segments`).
// On synthetic data with a truth file it prints the adjusted Rand index of the segments
// against the true ones, next to the Bayes ceiling and the other feature kind's.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "comm.h"
#include "hash.h"
#include "kmeans.h"
#include "scoring.h"
#include "segment_model.h"
#include "segment_profiles.h"
#include "synth_truth.h"
#include "user_features.h"
#include "util.h"

enum { K_AUTO_MIN = 2, K_AUTO_MAX = 10, SILHOUETTE_SAMPLE = 2000, MAX_ITER = 100 };
static const char *const OUTPUTS[4] = {"segments.csv", "profiles.json", "profiles.md",
                                       "centroids.pb"};

typedef struct {
    const char *out_dir;
    int k; // 0: auto
    int use_model, embedding, restarts;
} SegmentOptions;

// This rank's users: ids, event counts, both feature kinds.
typedef struct {
    ModelEmbedder emb;
    HandmadeSpec hs;
    int64_t n;
    uint64_t *ids;
    double *n_events;
    float *model, *hand; // (n, emb.dim), (n, hs.dim)
} Users;

static void usage_error(const char *fmt, const char *arg) {
    fprintf(stderr, "error: trainer segment: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(EXIT_USAGE);
}

static void parse_options(const CliArgs *a, SegmentOptions *o) {
    memset(o, 0, sizeof *o);
    if (!a->output) usage_error("--output DIR is required%s", "");
    o->out_dir = a->output;
    if (a->split && a->input) usage_error("give --split or --input, not both%s", "");
    if (!a->k || strcmp(a->k, "auto") == 0)
        o->k = a->k ? 0 : 5;
    else {
        char *end;
        long k = strtol(a->k, &end, 10);
        if (!*a->k || *end) usage_error("--k expects a number of segments or auto, got \"%s\"", a->k);
        if (k < 2 || k > 1000) usage_error("--k must be at least 2 (and at most 1000), got %s", a->k);
        o->k = (int)k;
    }
    const char *f = a->features ? a->features : "model";
    if (strcmp(f, "model") != 0 && strcmp(f, "handmade") != 0)
        usage_error("--features must be model or handmade, got \"%s\"", f);
    o->use_model = strcmp(f, "model") == 0;
    o->embedding = embedding_from_name(a->embedding ? a->embedding : "mean");
    if (o->embedding < 0) usage_error("--embedding must be last, mean or last+mean, got \"%s\"", a->embedding);
    o->restarts = a->restarts < 0 ? 4 : a->restarts;
    if (o->restarts < 1) usage_error("--restarts must be at least 1%s", "");
}

// Rank 0 decides whether DIR can take the results; every rank learns the answer.
static int output_dir_ok(const char *dir, int force, int rank) {
    double bad = 0;
    if (rank == 0) {
        for (int i = 0; i < 4; i++) {
            char path[CFG_PATH_LEN + 32];
            snprintf(path, sizeof path, "%s/%s", dir, OUTPUTS[i]);
            if (!path_exists(path)) continue;
            if (!force) {
                fprintf(stderr, "error: trainer segment: %s already holds results (%s); use --force "
                        "to replace them or choose another --output\n", dir, OUTPUTS[i]);
                bad = 1;
                break;
            }
            // Old results go before new ones are written: a run that fails part-way leaves a
            // subset of new files, never a mix of old and new.
            if (unlink(path) != 0) fatal("%s: cannot remove (%s)", path, strerror(errno));
        }
        if (!bad && mkdir_p(dir) != 0) fatal("%s: cannot create directory (%s)", dir, strerror(errno));
    }
    comm_allreduce_max_f64(&bad, 1);
    return !bad;
}

static void store_user(void *ctx, int32_t user, const ShardUser *u, const Shard *sh,
                       const float *vec, int slot) {
    Users *us = ctx;
    us->ids[user] = u->user_hash;
    us->n_events[user] = (double)u->n_events;
    memcpy(us->model + (size_t)user * us->emb.dim, vec, sizeof(float) * (size_t)us->emb.dim);
    handmade_user(&us->hs, sh, u, us->hand + (size_t)user * us->hs.dim);
}

static void segment_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    Users *us = ctx;
    model_embedder_visit(&us->emb, sc->model, es, bb, store_user, us);
}

// Feeds every user of this rank through the model and collects both feature kinds.
static void collect_users(Scorer *sc, int embedding, Users *us) {
    memset(us, 0, sizeof *us);
    for (int s = 0; s < sc->ds.n_shards; s++) us->n += (int64_t)sc->ds.shards[sc->split][s].hdr.n_users;
    model_embedder_init(&us->emb, &sc->model->shape, sc->lanes, embedding);
    handmade_init(&us->hs, &sc->ds.meta);
    size_t n = (size_t)us->n + 1;
    us->ids = xcalloc(n, sizeof(uint64_t));
    us->n_events = xcalloc(n, sizeof(double));
    us->model = xcalloc(n * (size_t)us->emb.dim, sizeof(float));
    us->hand = xcalloc(n * (size_t)us->hs.dim, sizeof(float));
    scorer_pass(sc, 1, NULL, segment_visit, us);
}

static void users_free(Users *us) {
    model_embedder_free(&us->emb);
    handmade_free(&us->hs);
    free(us->ids), free(us->n_events), free(us->model), free(us->hand);
}

// ---------------------------------------------------------------- choosing K

// The silhouette sample: users whose draw (seed, id) falls below SILHOUETTE_SAMPLE / N,
// gathered on every rank and sorted by id, so it is the same on any number of ranks.
static float *gather_sample(const float *x, const uint64_t *ids, int64_t n, int dim, uint64_t seed,
                            int64_t N, int64_t *m_out) {
    const double p = N > SILHOUETTE_SAMPLE ? (double)SILHOUETTE_SAMPLE / (double)N : 1.0;
    const size_t row = sizeof(uint64_t) + sizeof(float) * (size_t)dim;
    char *mine = xmalloc(row * (size_t)(n + 1));
    size_t len = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rng_uniform_at(seed, 0x5a3b1e, ids[i]) >= p) continue;
        memcpy(mine + len, &ids[i], sizeof(uint64_t));
        memcpy(mine + len + sizeof(uint64_t), x + i * dim, sizeof(float) * (size_t)dim);
        len += row;
    }
    size_t total;
    char *all = comm_allgatherv_bytes(mine, len, &total);
    free(mine);
    int64_t m = (int64_t)(total / row);
    // Sort rows by id (insertion into an index: m is a few thousand).
    int64_t *order = xmalloc(sizeof(int64_t) * (size_t)(m + 1));
    for (int64_t i = 0; i < m; i++) {
        uint64_t id;
        memcpy(&id, all + (size_t)i * row, sizeof id);
        int64_t j = i;
        for (; j > 0; j--) {
            uint64_t prev;
            memcpy(&prev, all + (size_t)order[j - 1] * row, sizeof prev);
            if (prev < id) break;
            order[j] = order[j - 1];
        }
        order[j] = i;
    }
    float *sample = xmalloc(sizeof(float) * (size_t)(m * dim + 1));
    for (int64_t i = 0; i < m; i++)
        memcpy(sample + i * dim, all + (size_t)order[i] * row + sizeof(uint64_t), sizeof(float) * (size_t)dim);
    free(order);
    free(all);
    *m_out = m;
    return sample;
}

// Fits K = 2..kmax and keeps the one with the highest mean silhouette on the sample (ties:
// the smaller K); prints the curve.
static void fit_auto(const float *x, const uint64_t *ids, int64_t n, KmeansConfig kc, int kmax,
                     int32_t *labels, double *dist2, KmeansResult *best, int rank) {
    int64_t N = n, m;
    comm_allreduce_sum_i64(&N, 1);
    float *sample = gather_sample(x, ids, n, kc.dim, kc.seed, N, &m);
    int32_t *lab = xmalloc(sizeof(int32_t) * (size_t)(n + 1)), *slab = xmalloc(sizeof(int32_t) * (size_t)(m + 1));
    double *d2 = xmalloc(sizeof(double) * (size_t)(n + 1)), best_s = -INFINITY;
    if (rank == 0)
        printf("segment: --k auto: K from %d to %d by the mean silhouette of %lld sampled users\n"
               "  K  inertia/user  silhouette\n", K_AUTO_MIN, kmax, (long long)m);
    memset(best, 0, sizeof *best);
    for (int k = K_AUTO_MIN; k <= kmax; k++) {
        KmeansResult res;
        kc.k = k;
        kmeans_fit(x, ids, n, &kc, lab, d2, &res);
        for (int64_t i = 0; i < m; i++) {
            double d;
            slab[i] = kmeans_nearest(sample + i * kc.dim, res.centroids, k, kc.dim, &d);
        }
        double s = silhouette(sample, slab, m, kc.dim, k);
        if (rank == 0) printf(" %2d  %12.4f  %10.4f%s\n", k, res.inertia / (double)N, s, "");
        if (s > best_s) {
            best_s = s;
            kmeans_result_free(best);
            *best = res;
            memcpy(labels, lab, sizeof(int32_t) * (size_t)n);
            memcpy(dist2, d2, sizeof(double) * (size_t)n);
        } else
            kmeans_result_free(&res);
    }
    if (rank == 0) printf("segment: --k auto chose K = %d (silhouette %.4f)\n", best->k, best_s);
    free(sample), free(lab), free(slab), free(d2);
}

// ---------------------------------------------------------------- truth

typedef struct {
    int have, n_true;
    char names[SYNTH_TRUTH_MAX_SEG][32];
    int32_t *seg, *bayes; // (n) per local user; -1: not in the truth file
    int64_t found;        // users found, all ranks
} Truth;

// The generator's truth.csv, when the experiment's data is synthetic and the file exists.
static void truth_load(const Config *cfg, const Users *us, int split, Truth *t) {
    memset(t, 0, sizeof *t);
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/%s", cfg->synth.out_dir, SYNTH_TRUTH_FILE);
    if (strcmp(cfg->data.source, "synth") != 0 || !path_exists(path)) return;
    UserKey key;
    userkey_load(cfg, &key);
    SynthTruth st;
    char err[1400];
    int mine_bad = synth_truth_read(path, &key, split, &st, err, sizeof err) != 0;
    double bad = mine_bad;
    comm_allreduce_max_f64(&bad, 1);
    if (bad) {
        if (mine_bad && comm_rank() == 0) warnf("%s; adjusted Rand indices not computed", err);
        if (!mine_bad) synth_truth_free(&st);
        return;
    }
    t->have = 1, t->n_true = st.n_segments;
    memcpy(t->names, st.names, sizeof t->names);
    t->seg = xmalloc(sizeof(int32_t) * (size_t)(us->n + 1));
    t->bayes = xmalloc(sizeof(int32_t) * (size_t)(us->n + 1));
    for (int64_t i = 0; i < us->n; i++) {
        const TruthUser *u = synth_truth_find(&st, us->ids[i]);
        t->seg[i] = u ? u->segment : -1, t->bayes[i] = u ? u->bayes_segment : -1;
        t->found += u != NULL;
    }
    comm_allreduce_sum_i64(&t->found, 1);
    synth_truth_free(&st);
}

// Contingency table (ka, n_true) of labels against the true segments, all ranks.
static int64_t *truth_table(const Truth *t, const int32_t *labels, int64_t n, int ka) {
    int64_t *tab = xcalloc((size_t)(ka * t->n_true), sizeof(int64_t));
    for (int64_t i = 0; i < n; i++)
        if (t->seg[i] >= 0) tab[labels[i] * t->n_true + t->seg[i]]++;
    comm_allreduce_sum_i64(tab, (size_t)(ka * t->n_true));
    return tab;
}

static double truth_ari(const Truth *t, const int32_t *labels, int64_t n, int ka) {
    int64_t *tab = truth_table(t, labels, n, ka);
    double ari = adjusted_rand_index(tab, ka, t->n_true);
    free(tab);
    return ari;
}

// ---------------------------------------------------------------- outputs

static void write_segments_csv(const SegmentOptions *o, const Users *us, const int32_t *labels,
                               const double *dist2, int rank, int size) {
    char path[CFG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/segments.csv", o->out_dir);
    UserRows rows;
    user_rows_open(&rows, path, rank, size);
    for (int64_t i = 0; i < us->n; i++)
        fprintf(rows.f, "%016llx,%d,%.6f\n", (unsigned long long)us->ids[i], labels[i], sqrt(dist2[i]));
    user_rows_join(&rows, "user_hash,segment,distance_to_centroid\n");
}

static void write_centroids(const SegmentOptions *o, const Scorer *sc, const Users *us,
                            const KmeansResult *res, const double *mean, const double *std,
                            const char *what) {
    const int dim = res->dim;
    SegmentModel m;
    memset(&m, 0, sizeof m);
    snprintf(m.ckpt_path, sizeof m.ckpt_path, "%s", sc->ckpt_path);
    m.step = sc->ck.d.step, m.config_hash = sc->ck.d.config_hash, m.data_hash = sc->ck.d.data_hash;
    m.params_hash = segment_params_hash(sc->ck.params, sc->ck.d.n_params);
    snprintf(m.features, sizeof m.features, "%s", o->use_model ? "model" : "handmade");
    snprintf(m.embedding, sizeof m.embedding, "%s", EMBEDDING_NAMES[o->embedding]);
    snprintf(m.split, sizeof m.split, "%s", what);
    m.k = res->k, m.dim = dim;
    m.names = xcalloc((size_t)dim, sizeof *m.names);
    for (int j = 0; j < dim; j++) {
        if (!o->use_model)
            snprintf(m.names[j], 64, "%s", us->hs.names[j]);
        else
            snprintf(m.names[j], 64, "%s_h%d", o->embedding == EMB_LAST_MEAN && j < dim / 2 ? "last"
                                               : o->embedding == EMB_LAST ? "last" : "mean",
                     j % sc->model->shape.hidden);
    }
    m.mean = (double *)mean, m.std = (double *)std, m.centroids = res->centroids;
    m.sizes = res->sizes, m.inertia = res->inertia, m.n_users = res->n_points;
    m.seed = (uint64_t)sc->cfg.run.seed;
    char path[CFG_PATH_LEN + 32], err[1400];
    snprintf(path, sizeof path, "%s/centroids.pb", o->out_dir);
    if (segment_model_write(path, &m, err, sizeof err) != 0) fatal("%s", err);
    free(m.names);
}

// Clusters x (n, dim; standardised) with K = o->k or by --k auto.
static void cluster(const SegmentOptions *o, const float *x, const Users *us, int dim, int64_t N,
                    uint64_t seed, int rank, int32_t *labels, double *dist2, KmeansResult *res) {
    KmeansConfig kc = {.k = o->k, .dim = dim, .restarts = o->restarts, .max_iter = MAX_ITER, .seed = seed};
    if (o->k == 0)
        fit_auto(x, us->ids, us->n, kc, N < K_AUTO_MAX ? (int)N : K_AUTO_MAX, labels, dist2, res, rank);
    else
        kmeans_fit(x, us->ids, us->n, &kc, labels, dist2, res);
    kmeans_order_by_size(res, labels, us->n);
}

// ---------------------------------------------------------------- the command

typedef struct {
    double *mean, *std; // (dim) standardisation
    float *x;           // (n, dim) standardised
    int dim, owned;     // owned: x is a copy (else the raw features, standardised in place)
} FeatureSet;

// Standardises raw in place, or a copy of it when the raw values are still needed.
static void feature_set(FeatureSet *f, float *raw, int64_t n, int dim, int copy) {
    f->dim = dim, f->owned = copy;
    f->mean = xmalloc(sizeof(double) * (size_t)dim), f->std = xmalloc(sizeof(double) * (size_t)dim);
    f->x = raw;
    if (copy) {
        f->x = xmalloc(sizeof(float) * (size_t)(n * dim + 1));
        memcpy(f->x, raw, sizeof(float) * (size_t)(n * dim));
    }
    kmeans_standardize(f->x, n, dim, f->mean, f->std);
}

static void feature_set_free(FeatureSet *f) {
    free(f->mean), free(f->std);
    if (f->owned) free(f->x);
}

// Checks that there are enough users for K; prints why not (rank 0).
static int enough_users(const SegmentOptions *o, int64_t N, const char *what, int rank) {
    if (N >= 2 && N >= o->k) return 1;
    if (rank == 0) {
        if (N == 0)
            fprintf(stderr, "error: trainer segment: %s has no users to segment\n", what);
        else
            fprintf(stderr, "error: trainer segment: --k %d is larger than the number of users of "
                    "%s (%lld)\n", o->k < 2 ? 2 : o->k, what, (long long)N);
    }
    return 0;
}

static void print_ari(const ProfileRun *run) {
    printf("segment: adjusted Rand index against the generator's true segments (%lld users in "
           "truth.csv):\n", (long long)run->truth_users);
    printf("  %-9s features  %.4f%s\n", run->features, run->ari, "  <- these segments");
    printf("  %-9s features  %.4f\n", run->other_features, run->ari_other);
    printf("  Bayes ceiling       %.4f  (truth.csv bayes_segment: the generator's own posterior)\n",
           run->ari_bayes);
    printf("  %s / ceiling    %.3f\n", run->features, run->ari_bayes != 0 ? run->ari / run->ari_bayes : 0);
}

static void print_summary(const Scorer *sc, const SegmentOptions *o, const KmeansResult *res,
                          const char *what, double t_embed, double t_cluster) {
    double rss = (double)peak_rss_bytes() / 1048576.0;
    comm_allreduce_max_f64(&rss, 1);
    if (sc->rank != 0) return;
    printf("segment: %lld users of %s on %d rank%s with %s (step %lld): embed %.2f s, cluster "
           "%.2f s, peak RSS %.1f MiB (largest rank)\n",
           (long long)res->n_points, what, sc->size, sc->size > 1 ? "s" : "", sc->ckpt_path,
           (long long)sc->ck.d.step, t_embed, t_cluster, rss);
    printf("segment: K = %d on %s features%s%s; best of %d restarts: restart %d, %d Lloyd "
           "iterations%s, %d empty clusters re-seeded; inertia/user %.4f\n",
           res->k, o->use_model ? "model" : "handmade", o->use_model ? ", embedding " : "",
           o->use_model ? EMBEDDING_NAMES[o->embedding] : "", o->restarts, res->restart,
           res->iterations, res->converged ? " (converged)" : " (iteration limit)", res->reseeded,
           res->inertia / (double)res->n_points);
    for (int q = 0; q < res->k; q++)
        printf("  segment %d: %lld users (%.1f%%)\n", q, (long long)res->sizes[q],
               100.0 * (double)res->sizes[q] / (double)res->n_points);
}

// Everything after the scorer is open. Returns the exit status.
// Against the planted segments: ARI of these labels, of the other feature kind clustered
// the same way with the same K, and of the Bayes assignment; returns the contingency table.
static int64_t *compare_with_truth(const SegmentOptions *o, const FeatureSet *other,
                                   const Users *us, int64_t N, uint64_t seed, int rank,
                                   const int32_t *labels, int k, const Truth *t, ProfileRun *run) {
    SegmentOptions same_k = *o;
    same_k.k = k;
    int32_t *other_labels = xmalloc(sizeof(int32_t) * (size_t)(us->n + 1));
    double *other_d2 = xmalloc(sizeof(double) * (size_t)(us->n + 1));
    KmeansResult ores;
    cluster(&same_k, other->x, us, other->dim, N, seed, rank, other_labels, other_d2, &ores);
    run->has_truth = 1, run->n_true = t->n_true, run->true_names = t->names;
    run->truth_users = t->found;
    run->ari = truth_ari(t, labels, us->n, k);
    run->ari_other = truth_ari(t, other_labels, us->n, k);
    run->ari_bayes = truth_ari(t, t->bayes, us->n, t->n_true);
    int64_t *table = truth_table(t, labels, us->n, k);
    run->truth_table = table;
    kmeans_result_free(&ores);
    free(other_labels), free(other_d2);
    return table;
}

static int run_segment(Scorer *sc, const SegmentOptions *o, const CliArgs *a) {
    const int rank = sc->rank;
    const char *what = a->input ? a->input : SPLIT_NAMES[sc->split];
    if (!output_dir_ok(o->out_dir, a->force, rank)) return EXIT_USAGE;
    double t0 = now_seconds();
    Users us;
    collect_users(sc, o->embedding, &us);
    int64_t N = us.n;
    comm_allreduce_sum_i64(&N, 1);
    if (!enough_users(o, N, what, rank)) {
        users_free(&us);
        return EXIT_USAGE;
    }
    double t_embed = now_seconds() - t0;
    t0 = now_seconds();
    FeatureSet model, hand;
    feature_set(&model, us.model, us.n, us.emb.dim, 0);
    feature_set(&hand, us.hand, us.n, us.hs.dim, 1); // the raw values make the profiles
    const FeatureSet *mine = o->use_model ? &model : &hand, *other = o->use_model ? &hand : &model;
    int32_t *labels = xmalloc(sizeof(int32_t) * (size_t)(us.n + 1));
    double *dist2 = xmalloc(sizeof(double) * (size_t)(us.n + 1));
    KmeansResult res;
    const uint64_t seed = (uint64_t)sc->cfg.run.seed;
    cluster(o, mine->x, &us, mine->dim, N, seed, rank, labels, dist2, &res);
    double t_cluster = now_seconds() - t0;

    ProfileRun run = {.features = o->use_model ? "model" : "handmade",
                      .embedding = EMBEDDING_NAMES[o->embedding], .what = what,
                      .ckpt_path = sc->ckpt_path, .k_rule = o->k ? "given" : "auto: silhouette",
                      .step = sc->ck.d.step, .n_users = N, .k = res.k,
                      .time_unit = sc->cfg.data.time_unit,
                      .other_features = o->use_model ? "handmade" : "model"};
    Truth t;
    truth_load(&sc->cfg, &us, a->input ? -1 : userkey_hash_split(&sc->cfg, sc->split), &t);
    int64_t *table = NULL;
    if (t.have && t.found > 0) table = compare_with_truth(o, other, &us, N, seed, rank, labels, res.k, &t, &run);
    write_segments_csv(o, &us, labels, dist2, rank, sc->size);
    Profiles prof;
    profiles_compute(&prof, &us.hs, us.hand, us.n_events, labels, us.n, res.k, hand.mean, hand.std);
    if (rank == 0) {
        profiles_write(&prof, &run, o->out_dir);
        write_centroids(o, sc, &us, &res, mine->mean, mine->std, a->input ? "input" : what);
    }
    comm_barrier();
    print_summary(sc, o, &res, what, t_embed, t_cluster);
    if (rank == 0 && run.has_truth) print_ari(&run);
    if (rank == 0)
        printf("segment: wrote %s/segments.csv (users by keyed hash), profiles.json, profiles.md, "
               "centroids.pb\n", o->out_dir);
    profiles_free(&prof);
    free(table), free(t.seg), free(t.bayes);
    kmeans_result_free(&res);
    free(labels), free(dist2);
    feature_set_free(&model), feature_set_free(&hand);
    users_free(&us);
    return EXIT_OK;
}

int cmd_segment(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "segment",
              "--set --checkpoint --split --input --k --features --embedding --restarts --output "
              "--force",
              1, &args);
    SegmentOptions o;
    parse_options(&args, &o);
    if (!args.checkpoint) usage_error("--checkpoint FILE|RUNDIR is required%s", "");
    int split = args.split ? split_from_name(args.split) : SPLIT_TRAIN;
    ScoreRequest req = {"segment", args.exp_path, args.n_overrides, args.overrides,
                        args.checkpoint, args.input, split, 1, 1, 0};
    Scorer sc;
    int rc = scorer_open(&sc, &req, &argc, &argv);
    if (rc == EXIT_OK) {
        rc = run_segment(&sc, &o, &args);
        scorer_close(&sc);
    }
    free(args.overrides);
    return rc;
}
