// explain.c: see explain.h.
#include "explain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm.h"
#include "hash.h"
#include "util.h"

struct Pending {
    ExplainTarget **t; // per_user targets still being captured (NULL: done or none)
    int started, left;
};

// ---------------------------------------------------------------- options

void explain_parse_target(const char *command, const char *text, ExplainOptions *o) {
    o->kind = ATTR_PREDICTED, o->action_name = NULL;
    if (!text || strcmp(text, "predicted") == 0) return;
    if (strcmp(text, "gap") == 0) {
        o->kind = ATTR_GAP;
        return;
    }
    if (strncmp(text, "action:", 7) == 0 && text[7]) {
        o->kind = ATTR_ACTION, o->action_name = text + 7;
        return;
    }
    if (strcmp(text, "irregularity") == 0) {
        fprintf(stderr,
                "error: trainer %s: --target irregularity: the score is not explained by "
                "gradients; --target change gives the change-point evidence of the users score "
                "flags for it; or use predicted, action:NAME or gap\n",
                command);
        exit(EXIT_USAGE);
    }
    fprintf(stderr,
            "error: trainer %s: --target must be predicted, action:NAME or gap, got \"%s\"\n",
            command, text);
    exit(EXIT_USAGE);
}

int explain_resolve_target(const ExplainOptions *o, const DataMeta *meta, int rank, int *action) {
    *action = -1;
    if (o->kind != ATTR_ACTION) return 0;
    for (int k = 1; k < meta->vocab_size[0]; k++)
        if (strcmp(meta->vocab[0][k], o->action_name) == 0) {
            *action = k;
            return 0;
        }
    if (rank == 0) {
        fprintf(stderr, "error: --target action:%s: unknown action \"%s\"; the model's actions "
                        "are:", o->action_name, o->action_name);
        for (int k = 1; k < meta->vocab_size[0]; k++)
            fprintf(stderr, "%s %s", k > 1 ? "," : "", meta->vocab[0][k]);
        fprintf(stderr, "\n");
    }
    return -1;
}

// ---------------------------------------------------------------- set-up

static int by_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

// The largest hash among the N smallest of all ranks' users (collective).
static uint64_t select_threshold(Scorer *sc, long long N) {
    if (N <= 0) return UINT64_MAX;
    size_t n_local = 0;
    for (int s = 0; s < sc->ds.n_shards; s++) n_local += sc->ds.shards[sc->split][s].hdr.n_users;
    int64_t total = (int64_t)n_local;
    comm_allreduce_sum_i64(&total, 1);
    if (N >= total) return UINT64_MAX; // every user
    uint64_t *mine = xmalloc(sizeof(uint64_t) * (n_local + 1));
    size_t k = 0;
    for (int s = 0; s < sc->ds.n_shards; s++) {
        const Shard *sh = &sc->ds.shards[sc->split][s];
        for (uint64_t u = 0; u < sh->hdr.n_users; u++) mine[k++] = sh->users[u].user_hash;
    }
    qsort(mine, n_local, sizeof(uint64_t), by_u64);
    uint64_t *slots = xmalloc(sizeof(uint64_t) * (size_t)N);
    for (long long i = 0; i < N; i++) slots[i] = (size_t)i < n_local ? mine[i] : UINT64_MAX;
    uint64_t *all = sc->rank == 0 ? xmalloc(sizeof(uint64_t) * (size_t)N * sc->size) : NULL;
    comm_gather_bytes(slots, sizeof(uint64_t) * (size_t)N, all, 0);
    uint64_t threshold = 0;
    if (sc->rank == 0) {
        qsort(all, (size_t)N * sc->size, sizeof(uint64_t), by_u64);
        threshold = all[N - 1];
    }
    comm_bcast(&threshold, sizeof threshold, 0);
    free(mine), free(slots), free(all);
    return threshold;
}

static Attributor *make_attributor(Explainer *ex, const float *params) {
    const ModelShape *s = &ex->sc->model->shape;
    const int m = ex->opt.steps;
    int items = 256 / (m + 1) > 1 ? 256 / (m + 1) : 1;
    int lanes = m + 1 <= 256 ? (items * (m + 1) + 7) / 8 * 8 : 256; // see run_lanes
    ex->max_items = items;
    return attributor_create(s, params, &ex->fg, ex->opt.kind, ex->sc->lc.loggap_mean,
                             ex->sc->lc.loggap_std, m, ex->opt.max_steps, lanes, ex->opt.window,
                             items);
}

Explainer *explainer_create(Scorer *sc, const ExplainOptions *o, int action, ExplainDone done,
                            void *ctx) {
    Explainer *ex = xcalloc(1, sizeof *ex);
    ex->sc = sc, ex->opt = *o, ex->action = action, ex->done = done, ex->ctx = ctx;
    if (ex->opt.steps < 1) ex->opt.steps = 32;
    if (ex->opt.max_steps < ex->opt.steps) ex->opt.max_steps = 16 * ex->opt.steps;
    if (ex->opt.window < 1) ex->opt.window = (int)sc->cfg.train.window;
    if (ex->opt.per_user < 1) ex->opt.per_user = 1;
    const ModelShape *s = &sc->model->shape;
    feature_groups_init(&ex->fg, &sc->ds.meta, s);
    ex->at = make_attributor(ex, sc->ck.params);
    if (ex->opt.sanity) { // the same architecture, freshly initialised (Adebayo et al. 2018)
        ModelShape one = *s;
        one.max_lanes = 1, one.window = 1;
        Model *rnd = model_create(&one);
        model_init_params(rnd, (uint64_t)sc->cfg.run.seed ^ 0x5a417e, sc->cfg.model.init_scale);
        ex->at_random = make_attributor(ex, rnd->params);
        model_free(rnd);
    }
    ex->threshold = select_threshold(sc, ex->opt.users);
    for (int k = 0; k < sc->ds.n_shards; k++) ex->n_users += (int64_t)sc->ds.shards[sc->split][k].hdr.n_users;
    ex->pend = xcalloc((size_t)ex->n_users + 1, sizeof(struct Pending));
    ex->ready = xcalloc((size_t)ex->max_items, sizeof(ExplainTarget *));
    return ex;
}

static void target_free(ExplainTarget *t) {
    attr_item_free(&t->item);
    free(t->random_res.attr), free(t->y), free(t);
}

void explainer_free(Explainer *ex) {
    if (!ex) return;
    for (int64_t u = 0; u < ex->n_users; u++) {
        struct Pending *pd = &ex->pend[u];
        for (int j = 0; pd->t && j < ex->opt.per_user; j++)
            if (pd->t[j]) target_free(pd->t[j]);
        free(pd->t);
    }
    for (int i = 0; i < ex->n_ready; i++) target_free(ex->ready[i]);
    attributor_free(ex->at), attributor_free(ex->at_random);
    free(ex->pend), free(ex->ready), free(ex);
}

// ---------------------------------------------------------------- capture

static void start_user(Explainer *ex, struct Pending *pd, const ShardUser *u, const Shard *sh) {
    const ModelShape *s = &ex->sc->model->shape;
    const int W = ex->opt.window, G = ex->fg.n_groups;
    pd->started = 1;
    pd->t = xcalloc((size_t)ex->opt.per_user, sizeof(ExplainTarget *));
    for (int j = 0; j < ex->opt.per_user; j++) {
        int last = (int)u->n_events - 1 - j;
        if (last < 0) break;
        int first = last - W + 1 > 0 ? last - W + 1 : 0;
        ExplainTarget *t = xcalloc(1, sizeof *t);
        attr_item_alloc(&t->item, s, W, G);
        t->item.n = last - first + 1, t->item.carried = first > 0;
        t->item.seed = mix64(u->user_hash ^ mix64((uint64_t)last + 0x51));
        t->user_hash = u->user_hash, t->shard = sh, t->user = u, t->last = last;
        t->y = xcalloc((size_t)model_outputs(s), sizeof(float));
        if (ex->opt.sanity) t->random_res.attr = xcalloc((size_t)W * G, sizeof(double));
        t->sanity_rho = NAN;
        pd->t[j] = t;
        pd->left++;
    }
}

static double event_time(const ExplainTarget *t, int index) {
    return ev_time(t->shard->events + (t->user->first_event + (uint64_t)index) *
                                          t->shard->hdr.event_bytes);
}

int explain_predicted(const Explainer *ex, const ExplainTarget *t) {
    // As predict: <unk> (id 0, values training never had) is never the prediction.
    const int K = ex->sc->model->shape.n_actions;
    int best = K > 1 ? 1 : 0;
    for (int k = best + 1; k < K; k++)
        if (t->y[k] > t->y[best]) best = k;
    return best;
}

// Copies what slot r (event pos of the target's user) holds for the target; 1 once complete.
static int capture(Explainer *ex, ExplainTarget *t, const BatchBuf *bb, int r, int pos) {
    const Model *m = ex->sc->model;
    const ModelShape *s = &m->shape;
    const int H = s->hidden, C = s->n_cat, D = s->n_dense, O = model_outputs(s);
    AttrItem *it = &t->item;
    const int first = t->last - it->n + 1;
    if (pos == first - 1) {
        for (int l = 0; l < s->layers; l++) {
            memcpy(it->h0 + (size_t)l * H, m->act.hout[l] + (size_t)r * H, sizeof(real) * H);
            memcpy(it->c0 + (size_t)l * H, m->act.c[l] + (size_t)r * H, sizeof(real) * H);
        }
        it->prev_time = event_time(t, pos);
    }
    if (pos < first || pos > t->last) return 0;
    const int row = pos - first;
    it->action[row] = bb->action[r];
    memcpy(it->cat + (size_t)row * C, bb->cat + (size_t)r * C, sizeof(int32_t) * (size_t)C);
    memcpy(it->dense + (size_t)row * D, bb->dense + (size_t)r * D, sizeof(real) * (size_t)D);
    it->time[row] = event_time(t, pos);
    if (pos != t->last) return 0;
    memcpy(t->y, m->act.y + (size_t)r * O, sizeof(float) * (size_t)O);
    it->cls = ex->opt.kind == ATTR_ACTION ? ex->action : explain_predicted(ex, t);
    return 1;
}

static double thread_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void process_ready(Explainer *ex) {
    const int n = ex->n_ready;
    if (n == 0) return;
    double t0 = now_seconds(), c0 = thread_cpu_seconds();
    AttrItem **items = xmalloc(sizeof(AttrItem *) * (size_t)n);
    AttrResult **rnd = xmalloc(sizeof(AttrResult *) * (size_t)n);
    for (int i = 0; i < n; i++) items[i] = &ex->ready[i]->item, rnd[i] = &ex->ready[i]->random_res;
    attributor_run(ex->at, items, n, ex->opt.deletion, NULL);
    if (ex->at_random) {
        attributor_run(ex->at_random, items, n, 0, rnd);
        for (int i = 0; i < n; i++)
            ex->ready[i]->sanity_rho = spearman_abs(items[i]->res.attr, rnd[i]->attr,
                                                    items[i]->n * ex->fg.n_groups);
    }
    ex->seconds += now_seconds() - t0;
    ex->cpu_seconds += thread_cpu_seconds() - c0;
    ex->n_explained += n;
    for (int i = 0; i < n; i++) {
        ex->done(ex->ctx, ex, ex->ready[i]);
        target_free(ex->ready[i]);
    }
    ex->n_ready = 0;
    free(items), free(rnd);
}

void explainer_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    Explainer *ex = ctx;
    const int R = bb->view.lanes * bb->view.window;
    for (int r = 0; r < R; r++) {
        const Shard *sh;
        const ShardUser *u = scorer_slot_user(es, bb, r, &sh);
        if (!u || u->user_hash > ex->threshold) continue;
        struct Pending *pd = &ex->pend[bb->slot_user[r]];
        if (!pd->started) start_user(ex, pd, u, sh);
        for (int j = 0; pd->left > 0 && j < ex->opt.per_user; j++) {
            ExplainTarget *t = pd->t[j];
            if (!t || !capture(ex, t, bb, r, bb->slot_pos[r])) continue;
            pd->t[j] = NULL, pd->left--;
            ex->ready[ex->n_ready++] = t;
            if (ex->n_ready == ex->max_items) process_ready(ex);
        }
        if (pd->left == 0 && pd->t) free(pd->t), pd->t = NULL;
    }
}

void explainer_finish(Explainer *ex) {
    process_ready(ex);
}
