// nextk.c: see nextk.h.
#include "nextk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void nextk_init(NextK *nk, const Scorer *sc, int k) {
    memset(nk, 0, sizeof *nk);
    if (k > NEXTK_MAX) fatal("eval.next_k: at most %d", NEXTK_MAX);
    ModelShape s = sc->model->shape;
    s.window = 1, s.max_lanes = sc->lanes;
    nk->k = k;
    nk->roll = model_create(&s);
    memcpy(nk->roll->params, sc->model->params, sizeof(real) * sc->model->n_params);
    nk->st = lane_state_alloc(&s, sc->lanes);
    batchbuf_init(&nk->bb, sc->lanes, 1, s.n_cat, s.n_dense);
    nk->t_last = xcalloc((size_t)sc->lanes, sizeof(double));
    nk->pos = xcalloc((size_t)sc->lanes, sizeof(int32_t));
    nk->user = xcalloc((size_t)sc->lanes, sizeof(*nk->user));
    nk->shard = xcalloc((size_t)sc->lanes, sizeof(*nk->shard));
}

void nextk_free(NextK *nk) {
    model_free(nk->roll);
    lane_state_free(&nk->st);
    batchbuf_free(&nk->bb);
    free(nk->t_last), free(nk->pos), free(nk->user), free(nk->shard);
    memset(nk, 0, sizeof *nk);
}

static int argmax(const real *y, int K) {
    int best = 0;
    for (int k = 1; k < K; k++) best = y[k] > y[best] ? k : best;
    return best;
}

// The roll-out's next input event of lane b from the prediction y (O): type, gap, numerics.
static void predicted_input(NextK *nk, const Scorer *sc, const FeatureSpec *fs, int b,
                            const real *y) {
    const ModelShape *s = &nk->roll->shape;
    BatchBuf *bb = &nk->bb;
    bb->action[b] = argmax(y, s->n_actions);
    for (int c = 0; c < s->n_cat; c++) bb->cat[(size_t)b * s->n_cat + c] = 0; // <unk>
    real *d = bb->dense + (size_t)b * s->n_dense;
    for (int j = 0; j < fs->n_num; j++) d[j] = 0; // the train mean, normalised
    if (s->engagement) d[fs->engagement_index] = y[model_eng_index(s)];
    const double t = nk->t_last[b] + head_gap_point(s, &sc->lc, y);
    feature_time_inputs(fs, d + fs->n_num, t, nk->t_last[b]);
    nk->t_last[b] = t;
    bb->keep[b] = 1;
}

// The user's event pos + j of lane b's roll-out.
static const uint8_t *event_at(const NextK *nk, int b, int j) {
    const size_t eb = nk->shard[b]->hdr.event_bytes;
    return nk->shard[b]->events + (nk->user[b]->first_event + (uint64_t)(nk->pos[b] + j)) * eb;
}

// Lanes whose slot (t, b) has a target: step 1 scored from the pass's own prediction, the
// roll-out state set to the pass's state after step t. Returns whether there is any.
static int rollout_start(NextK *nk, Scorer *sc, const EvalStream *es, const BatchBuf *bb, int t) {
    const ModelShape *s = &sc->model->shape;
    const int B = bb->view.lanes, H = s->hidden, O = model_outputs(s);
    int any = 0;
    for (int b = 0; b < B; b++) {
        const int r = t * B + b;
        nk->user[b] =
            bb->view.tgt_action[r] >= 0 ? scorer_slot_user(es, bb, r, &nk->shard[b]) : NULL;
        if (!nk->user[b]) continue;
        any = 1;
        nk->pos[b] = bb->slot_pos[r];
        nk->t_last[b] = ev_time(event_at(nk, b, 0));
        for (int j = 1; j <= nk->k && nk->pos[b] + j < (int)nk->user[b]->n_events; j++)
            nk->sums[NEXTK_MAX + j - 1] += 1;
        const real *y = sc->model->act.y + (size_t)r * O;
        nk->sums[0] += argmax(y, s->n_actions) == ev_action(event_at(nk, b, 1));
        for (int l = 0; l < s->layers; l++) {
            memcpy(nk->st.h[l] + (size_t)b * H, sc->model->act.hout[l] + (size_t)r * H,
                   sizeof(real) * (size_t)H);
            memcpy(nk->st.c[l] + (size_t)b * H, sc->model->act.c[l] + (size_t)r * H,
                   sizeof(real) * (size_t)H);
        }
        predicted_input(nk, sc, &es->fs, b, y);
    }
    return any;
}

// Roll-outs from step t of the window: steps 2..k, one window-1 forward each.
static void rollout_from(NextK *nk, Scorer *sc, const EvalStream *es, const BatchBuf *bb, int t) {
    const ModelShape *s = &sc->model->shape;
    const int B = bb->view.lanes, O = model_outputs(s);
    if (!rollout_start(nk, sc, es, bb, t)) return;
    const Batch v = {.lanes = B,
                     .window = 1,
                     .action = nk->bb.action,
                     .cat = nk->bb.cat,
                     .dense = nk->bb.dense,
                     .keep = nk->bb.keep,
                     .tgt_action = nk->bb.tgt_action,
                     .tgt_loggap = nk->bb.tgt_loggap,
                     .tgt_eng = nk->bb.tgt_eng,
                     .lane_id = bb->view.lane_id};
    for (int j = 2; j <= nk->k; j++) {
        model_forward(nk->roll, &v, &nk->st, &sc->lc, NULL, NULL, 0);
        for (int b = 0; b < B; b++) {
            if (!nk->user[b] || nk->pos[b] + j >= (int)nk->user[b]->n_events) continue;
            const real *y = nk->roll->act.y + (size_t)b * O;
            nk->sums[j - 1] += argmax(y, s->n_actions) == ev_action(event_at(nk, b, j));
            predicted_input(nk, sc, &es->fs, b, y);
        }
    }
}

void nextk_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb) {
    NextK *nk = ctx;
    for (int t = 0; t < bb->view.window; t++) rollout_from(nk, sc, es, bb, t);
}
