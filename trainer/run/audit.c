// audit.c: see audit.h.
#include "audit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "dp.h"
#include "scoring.h"
#include "setup.h"
#include "util.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double mia_auc(const double *member, size_t n_member, const double *non, size_t n_non) {
    if (!n_member || !n_non) return NAN;
    double *s = xmalloc(sizeof(double) * n_non);
    memcpy(s, non, sizeof(double) * n_non);
    qsort(s, n_non, sizeof(double), cmp_double);
    double wins = 0;
    for (size_t i = 0; i < n_member; i++) {
        // Non-members below and equal to this member's score, by binary search.
        size_t lo = 0, hi = n_non;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s[mid] < member[i]) lo = mid + 1; else hi = mid;
        }
        size_t below = lo;
        hi = n_non;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (s[mid] <= member[i]) lo = mid + 1; else hi = mid;
        }
        wins += (double)below + 0.5 * (double)(lo - below);
    }
    free(s);
    return wins / ((double)n_member * (double)n_non);
}

double mia_tpr_at_fpr(const double *member, size_t n_member, const double *non, size_t n_non,
                      double fpr) {
    if (!n_member || !n_non) return NAN;
    double *s = xmalloc(sizeof(double) * n_non);
    memcpy(s, non, sizeof(double) * n_non);
    qsort(s, n_non, sizeof(double), cmp_double);
    // At most floor(fpr * n) non-members may score strictly above the threshold.
    size_t allowed = (size_t)floor(fpr * (double)n_non);
    double thr = s[n_non - 1 - (allowed < n_non ? allowed : n_non - 1)];
    free(s);
    size_t tp = 0;
    for (size_t i = 0; i < n_member; i++) tp += member[i] > thr;
    return (double)tp / (double)n_member;
}

// ---------------------------------------------------------------- per-user NLL

typedef struct {
    double *sum, *n; // per rank-local user of the split
    int K;
} UserNll;

static void nll_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    UserNll *u = ctx;
    const int O = model_outputs(&sc->model->shape), K = u->K;
    (void)es;
    for (int r = 0; r < bb->view.lanes * bb->view.window; r++) {
        const int user = bb->slot_user[r], tgt = bb->view.tgt_action[r];
        if (user < 0 || tgt < 0) continue;
        const float *y = sc->model->act.y + (size_t)r * O;
        double mx = y[0], z = 0;
        for (int k = 1; k < K; k++) mx = y[k] > mx ? y[k] : mx;
        for (int k = 0; k < K; k++) z += exp((double)y[k] - mx);
        u->sum[user] += mx + log(z) - (double)y[tgt];
        u->n[user] += 1;
    }
}

// Mean NLL of every user of `split` (all ranks) into rank 0's *out (count *n_out).
static void split_nll(Scorer *sc, int split, double **out, size_t *n_out) {
    dataset_load_split(&sc->ds, split);
    sc->split = split;
    int64_t n = 0;
    for (int s = 0; s < sc->ds.n_shards; s++) n += (int64_t)sc->ds.shards[split][s].hdr.n_users;
    UserNll u = {xcalloc((size_t)n + 1, sizeof(double)), xcalloc((size_t)n + 1, sizeof(double)),
                 sc->model->shape.n_actions};
    scorer_pass(sc, 0, NULL, nll_visit, &u);
    double mx = (double)n;
    comm_allreduce_max_f64(&mx, 1);
    const size_t per = (size_t)mx;
    double *mine = xmalloc(sizeof(double) * (per ? per : 1));
    for (size_t i = 0; i < per; i++)
        mine[i] = (int64_t)i < n && u.n[i] > 0 ? u.sum[i] / u.n[i] : NAN;
    double *all = sc->rank == 0 ? xmalloc(sizeof(double) * (per ? per : 1) * (size_t)sc->size) : NULL;
    comm_gather_bytes(mine, sizeof(double) * per, all, 0);
    *n_out = 0;
    if (sc->rank == 0) {
        for (size_t i = 0; i < per * (size_t)sc->size; i++)
            if (!isnan(all[i])) all[(*n_out)++] = all[i];
        *out = all;
    }
    free(mine), free(u.sum), free(u.n);
}

// ---------------------------------------------------------------- the audit

typedef struct {
    double auc, tpr;
} Attack;

static Attack attack(const double *member, size_t nm, const double *non, size_t nn) {
    Attack a = {mia_auc(member, nm, non, nn), mia_tpr_at_fpr(member, nm, non, nn, 0.001)};
    return a;
}

// Scores of members (train) and non-members (valid + test): -target, or ref - target.
static void scores(double *const *tgt, double *const *ref, const size_t *n, double **mem,
                   double **non) {
    *mem = xmalloc(sizeof(double) * (n[SPLIT_TRAIN] + 1));
    *non = xmalloc(sizeof(double) * (n[SPLIT_VALID] + n[SPLIT_TEST] + 1));
    for (size_t i = 0; i < n[SPLIT_TRAIN]; i++)
        (*mem)[i] = (ref ? ref[SPLIT_TRAIN][i] : 0) - tgt[SPLIT_TRAIN][i];
    size_t k = 0;
    for (int s = SPLIT_VALID; s <= SPLIT_TEST; s++)
        for (size_t i = 0; i < n[s]; i++) (*non)[k++] = (ref ? ref[s][i] : 0) - tgt[s][i];
}

// The reference's per-user NLL: its parameters in the scorer's model for three passes.
static void reference_nll(Scorer *sc, const char *reference, double **ref, size_t *n) {
    char path[CFG_PATH_LEN + 64], err[1024];
    unsigned char *buf = NULL;
    size_t size = 0;
    if (checkpoint_resolve(reference, path, sizeof path, &buf, &size, err, sizeof err) != 0)
        fatal("--reference: %s", err);
    LoadedCheckpoint rc;
    if (checkpoint_parse(buf, size, &rc, err, sizeof err) != 0) fatal("%s: %s", path, err);
    free(buf);
    ModelShape want = sc->model->shape;
    want.max_lanes = 0;
    if (model_shape_check(&rc.d.shape, &want, err, sizeof err) != 0)
        fatal("--reference %s: %s", path, err);
    if (rc.d.data_hash == sc->ck.d.data_hash && sc->rank == 0)
        warnf("--reference %s was trained on this experiment's data: it saw the members, so "
              "the likelihood-ratio scores are not calibrated (train it on other users)",
              path);
    Model *m = sc->model;
    float *saved = xmalloc(sizeof(float) * m->n_params);
    memcpy(saved, m->params, sizeof(float) * m->n_params);
    memcpy(m->params, rc.params, sizeof(float) * m->n_params);
    for (int s = 0; s < N_SPLITS; s++) split_nll(sc, s, &ref[s], &n[s]);
    memcpy(m->params, saved, sizeof(float) * m->n_params);
    free(saved);
    checkpoint_free(&rc);
}

int audit_privacy_main(const char *exp, int n_overrides, char **overrides, const char *checkpoint,
                       const char *reference, const char *output, int *argc, char ***argv) {
    ScoreRequest req = {.command = "audit privacy",
                        .exp_path = exp,
                        .n_overrides = n_overrides,
                        .overrides = overrides,
                        .checkpoint = checkpoint,
                        .split = SPLIT_TRAIN,
                        .min_events = 2};
    Scorer sc;
    int rc = scorer_open(&sc, &req, argc, argv);
    if (rc != EXIT_OK) return rc;
    double *tgt[N_SPLITS] = {0}, *ref[N_SPLITS] = {0};
    size_t n[N_SPLITS] = {0}, nr[N_SPLITS] = {0};
    for (int s = 0; s < N_SPLITS; s++) split_nll(&sc, s, &tgt[s], &n[s]);
    if (reference) reference_nll(&sc, reference, ref, nr);
    if (sc.rank == 0) {
        double *mem, *non;
        scores(tgt, NULL, n, &mem, &non);
        const size_t nm = n[SPLIT_TRAIN], nn = n[SPLIT_VALID] + n[SPLIT_TEST];
        Attack yeom = attack(mem, nm, non, nn), lr = {NAN, NAN};
        free(mem), free(non);
        if (reference) {
            scores(tgt, ref, n, &mem, &non);
            lr = attack(mem, nm, non, nn);
            free(mem), free(non);
        }
        const CkptPrivacy *pv = &sc.ck.d.privacy;
        char eps[96];
        if (pv->dp)
            snprintf(eps, sizeof eps, "epsilon %.4g at delta %.3g", pv->epsilon, pv->delta);
        else
            snprintf(eps, sizeof eps, "not differentially private, epsilon unbounded");
        printf("audit privacy: %s (step %lld; %s)\n", sc.ckpt_path, (long long)sc.ck.d.step, eps);
        printf("  members: %zu training users; non-members: %zu held-out users (validation + "
               "test); TPR at 0.1%% FPR resolves %s\n",
               nm, nn, nn >= 1000 ? "a 0.1% rate" : "only whole non-members (fewer than 1000)");
        printf("  loss threshold (Yeom et al.):     AUC %.4f  TPR@0.1%%FPR %.4f\n", yeom.auc,
               yeom.tpr);
        if (reference)
            printf("  likelihood ratio (reference %s): AUC %.4f  TPR@0.1%%FPR %.4f\n", reference,
                   lr.auc, lr.tpr);
        if (output) {
            char text[1024], err[512];
            snprintf(text, sizeof text,
                     "{\"checkpoint_step\":%lld,\"dp\":%d,\"epsilon\":%.6g,\"delta\":%.6g,"
                     "\"members\":%zu,\"non_members\":%zu,\"loss_auc\":%.6f,\"loss_tpr_at_0.1pct_fpr\""
                     ":%.6f,\"lr_auc\":%.6f,\"lr_tpr_at_0.1pct_fpr\":%.6f}\n",
                     (long long)sc.ck.d.step, pv->dp, pv->dp ? pv->epsilon : -1, pv->delta, nm,
                     nn, yeom.auc, yeom.tpr, reference ? lr.auc : -1, reference ? lr.tpr : -1);
            if (write_file_atomic(output, text, strlen(text), err, sizeof err) != 0)
                fatal("%s", err);
        }
    }
    for (int s = 0; s < N_SPLITS; s++) free(tgt[s]), free(ref[s]);
    scorer_close(&sc);
    return EXIT_OK;
}
