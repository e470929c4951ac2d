// user_features.c: see user_features.h (not features.h: that name is glibc's).
#include "user_features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const EMBEDDING_NAMES[N_EMBEDDINGS] = {"last", "mean", "last+mean"};

int embedding_from_name(const char *name) {
    for (int i = 0; i < N_EMBEDDINGS; i++)
        if (strcmp(name, EMBEDDING_NAMES[i]) == 0) return i;
    return -1;
}

// ---------------------------------------------------------------- model features

void model_embedder_init(ModelEmbedder *e, const ModelShape *s, int lanes, int embedding) {
    memset(e, 0, sizeof *e);
    e->embedding = embedding, e->hidden = s->hidden, e->lanes = lanes;
    e->dim = embedding == EMB_LAST_MEAN ? 2 * s->hidden : s->hidden;
    e->acc = xcalloc((size_t)lanes * (size_t)e->dim, sizeof(double));
}

void model_embedder_free(ModelEmbedder *e) {
    free(e->acc);
    memset(e, 0, sizeof *e);
}

void model_embedder_visit(ModelEmbedder *e, const Model *m, const EvalStream *es,
                          const BatchBuf *bb, EmbedDone done, void *ctx) {
    const int B = bb->view.lanes, T = bb->view.window, H = e->hidden, dim = e->dim;
    const real *hout = m->act.hout[m->shape.layers - 1]; // (T, B, H)
    float *vec = xmalloc(sizeof(float) * (size_t)dim);
    // Slot (t, b) = t * B + b: each lane's slots come in time order.
    for (int r = 0; r < B * T; r++) {
        if (bb->slot_user[r] < 0) continue;
        const Shard *sh;
        const ShardUser *u = eval_stream_user(es, bb->slot_user[r], &sh);
        const int pos = bb->slot_pos[r], b = r % B, n = (int)u->n_events;
        double *acc = e->acc + (size_t)b * dim;
        const real *h = hout + (size_t)r * H;
        if (pos == 0) memset(acc, 0, sizeof(double) * (size_t)dim);
        int mean_off = e->embedding == EMB_LAST_MEAN ? H : 0;
        if (e->embedding != EMB_LAST)
            for (int j = 0; j < H; j++) acc[mean_off + j] += (double)h[j];
        if (pos != n - 1) continue;
        for (int j = 0; j < dim; j++) vec[j] = (float)acc[j];
        if (e->embedding != EMB_LAST)
            for (int j = 0; j < H; j++) vec[mean_off + j] = (float)(acc[mean_off + j] / n);
        if (e->embedding != EMB_MEAN)
            for (int j = 0; j < H; j++) vec[j] = (float)h[j];
        done(ctx, bb->slot_user[r], u, sh, vec, r);
    }
    free(vec);
}

// ---------------------------------------------------------------- handmade features

static const char *const WEEKDAYS[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};

void handmade_init(HandmadeSpec *h, const DataMeta *meta) {
    memset(h, 0, sizeof *h);
    h->n_actions = meta->vocab_size[0];
    h->calendar = meta->time_unit_seconds > 0;
    h->unit_seconds = meta->time_unit_seconds;
    h->gap_offset = meta->gap_offset;
    h->n_cat = (int)meta->n_cat, h->n_num = (int)meta->n_num;
    h->log1p = meta->numeric_log1p;
    int d = 0;
    h->off_action = d, d += h->n_actions;
    h->off_hour = h->calendar ? d : -1, d += h->calendar ? 24 : 0;
    h->off_weekday = h->calendar ? d : -1, d += h->calendar ? 7 : 0;
    for (int c = 0; c < h->n_cat; c++)
        h->cat_vocab[c] = meta->vocab_size[1 + c], h->off_cat[c] = d, d += h->cat_vocab[c];
    h->off_gap = d, d += 2;
    h->off_num = d, d += 2 * h->n_num;
    h->off_events = d++;
    h->dim = d;
    h->names = xcalloc((size_t)d, sizeof *h->names);
    for (int a = 0; a < h->n_actions; a++)
        snprintf(h->names[h->off_action + a], 64, "%s=%s", meta->column[0], meta->vocab[0][a]);
    for (int k = 0; h->calendar && k < 24; k++) snprintf(h->names[h->off_hour + k], 64, "hour=%02d", k);
    for (int k = 0; h->calendar && k < 7; k++)
        snprintf(h->names[h->off_weekday + k], 64, "weekday=%s", WEEKDAYS[k]);
    for (int c = 0; c < h->n_cat; c++)
        for (int v = 0; v < h->cat_vocab[c]; v++)
            snprintf(h->names[h->off_cat[c] + v], 64, "%s=%s", meta->column[1 + c],
                     meta->vocab[1 + c][v]);
    snprintf(h->names[h->off_gap], 64, "log_gap_mean");
    snprintf(h->names[h->off_gap + 1], 64, "log_gap_std");
    for (int k = 0; k < h->n_num; k++) {
        snprintf(h->names[h->off_num + 2 * k], 64, "%s_mean", meta->column[1 + h->n_cat + k]);
        snprintf(h->names[h->off_num + 2 * k + 1], 64, "%s_std", meta->column[1 + h->n_cat + k]);
    }
    snprintf(h->names[h->off_events], 64, "log_events");
}

void handmade_free(HandmadeSpec *h) {
    free(h->names);
    memset(h, 0, sizeof *h);
}

// Mean and standard deviation from sums of x and x^2 over n values (0, 0 when n = 0).
static void mean_std(double s, double s2, double n, float *mean, float *std) {
    double m = n > 0 ? s / n : 0, v = n > 0 ? s2 / n - m * m : 0;
    *mean = (float)m, *std = (float)sqrt(v > 0 ? v : 0);
}

void handmade_user(const HandmadeSpec *h, const Shard *sh, const ShardUser *u, float *out) {
    memset(out, 0, sizeof(float) * (size_t)h->dim);
    const uint32_t eb = sh->hdr.event_bytes;
    const uint8_t *ev = sh->events + u->first_event * eb;
    const double n = (double)u->n_events, w = 1.0 / n;
    double gap_s = 0, gap_s2 = 0, num_s[CFG_LIST_MAX] = {0}, num_s2[CFG_LIST_MAX] = {0};
    double num_n[CFG_LIST_MAX] = {0};
    for (uint32_t i = 0; i < u->n_events; i++, ev += eb) {
        int a = ev_action(ev);
        if (a >= 0 && a < h->n_actions) out[h->off_action + a] += (float)w;
        double t = ev_time(ev);
        if (h->calendar) {
            double secs = t * h->unit_seconds, day = floor(secs / 86400.0);
            int hour = (int)((secs - day * 86400.0) / 3600.0);
            hour = hour < 0 ? 0 : hour > 23 ? 23 : hour;
            int64_t wd = ((int64_t)day + 3) % 7; // 1970-01-01 was a Thursday; Monday = 0
            out[h->off_hour + hour] += (float)w;
            out[h->off_weekday + (wd + 7) % 7] += (float)w;
        }
        for (int c = 0; c < h->n_cat; c++) {
            int v = ev_cat(ev, c);
            if (v >= 0 && v < h->cat_vocab[c]) out[h->off_cat[c] + v] += (float)w;
        }
        if (i > 0) {
            double gap = t - ev_time(ev - eb), lg = log((gap > 0 ? gap : 0) + h->gap_offset);
            gap_s += lg, gap_s2 += lg * lg;
        }
        for (int k = 0; k < h->n_num; k++) {
            double x = ev_num(ev, h->n_cat, k);
            x = h->log1p ? log1p(x) : x;
            if (!isfinite(x)) continue;
            num_s[k] += x, num_s2[k] += x * x, num_n[k] += 1;
        }
    }
    mean_std(gap_s, gap_s2, n - 1, &out[h->off_gap], &out[h->off_gap + 1]);
    for (int k = 0; k < h->n_num; k++)
        mean_std(num_s[k], num_s2[k], num_n[k], &out[h->off_num + 2 * k],
                 &out[h->off_num + 2 * k + 1]);
    out[h->off_events] = (float)log(n);
}
