// drift.c: see drift.h.
#include "drift.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "comm.h"
#include "util.h"

const char *const DRIFT_VERDICT_TEXT[3] = {"no drift", "drift: fine-tune recommended",
                                           "retrain"};

static void add_feature(DriftHist *h, const char *name, int n_bins, int vocab) {
    DriftFeature *f = &h->f[h->n++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->n_bins = n_bins, f->vocab = vocab;
    f->ref = xcalloc((size_t)n_bins, sizeof(double));
    f->cur = xcalloc((size_t)n_bins, sizeof(double));
}

void drift_hist_init(DriftHist *h, const DataMeta *meta) {
    memset(h, 0, sizeof *h);
    add_feature(h, "action", meta->vocab_size[0], 0);
    for (uint32_t c = 0; c < meta->n_cat; c++)
        add_feature(h, meta->column[1 + c], meta->vocab_size[1 + c], 1 + (int)c);
    add_feature(h, "gap", DRIFT_GAP_BINS, -1);
    if (meta->time_unit_seconds > 0) add_feature(h, "hour", 24, -1);
}

void drift_hist_free(DriftHist *h) {
    for (int i = 0; i < h->n; i++) free(h->f[i].ref), free(h->f[i].cur);
    memset(h, 0, sizeof *h);
}

static int gap_bin(const DataMeta *m, double gap) {
    double z = (log(gap + m->gap_offset) - m->loggap_mean) / (m->loggap_std > 0 ? m->loggap_std : 1);
    if (!(z >= -3.0)) return 0;
    if (z >= 3.0) return DRIFT_GAP_BINS - 1;
    return 1 + (int)((z + 3.0) / 0.25);
}

// One event (e, the previous one of its user: prev or NULL) into side `hist` of every feature.
static void add_event(DriftHist *h, const DataMeta *m, const uint8_t *e, const uint8_t *prev,
                      int cur) {
    int k = 0;
    double *bins;
    bins = cur ? h->f[k].cur : h->f[k].ref;
    int32_t a = ev_action(e);
    if (a >= 0 && a < h->f[k].n_bins) bins[a] += 1;
    for (uint32_t c = 0; c < m->n_cat; c++) {
        k++;
        bins = cur ? h->f[k].cur : h->f[k].ref;
        int32_t v = ev_cat(e, (int)c);
        if (v >= 0 && v < h->f[k].n_bins) bins[v] += 1;
    }
    k++;
    if (prev) (cur ? h->f[k].cur : h->f[k].ref)[gap_bin(m, ev_time(e) - ev_time(prev))] += 1;
    if (m->time_unit_seconds > 0) {
        k++;
        double s = fmod(ev_time(e) * m->time_unit_seconds, 86400.0);
        int hour = (int)((s < 0 ? s + 86400.0 : s) / 3600.0);
        (cur ? h->f[k].cur : h->f[k].ref)[hour < 0 ? 0 : hour > 23 ? 23 : hour] += 1;
    }
}

void drift_hist_add(DriftHist *h, const Dataset *ds, int split, int cur) {
    const DataMeta *m = &ds->meta;
    for (int s = 0; s < ds->n_shards; s++) {
        const Shard *sh = &ds->shards[split][s];
        const size_t eb = sh->hdr.event_bytes;
        for (uint64_t u = 0; u < sh->hdr.n_users; u++) {
            const uint8_t *first = sh->events + sh->users[u].first_event * eb;
            for (uint32_t i = 0; i < sh->users[u].n_events; i++)
                add_event(h, m, first + i * eb, i ? first + (i - 1) * eb : NULL, cur);
        }
    }
}

// Jensen-Shannon distance (base 2) and PSI of two histograms (PSI with shares floored at
// 1e-4, as is usual, so an empty bin does not make it infinite).
static void compare(DriftFeature *f) {
    double np = 0, nq = 0, jsd = 0, psi = 0;
    for (int i = 0; i < f->n_bins; i++) np += f->ref[i], nq += f->cur[i];
    np = np > 0 ? np : 1, nq = nq > 0 ? nq : 1;
    for (int i = 0; i < f->n_bins; i++) {
        double p = f->ref[i] / np, q = f->cur[i] / nq, mid = 0.5 * (p + q);
        if (p > 0) jsd += 0.5 * p * log2(p / mid);
        if (q > 0) jsd += 0.5 * q * log2(q / mid);
        double pp = p > 1e-4 ? p : 1e-4, qq = q > 1e-4 ? q : 1e-4;
        psi += (qq - pp) * log(qq / pp);
    }
    f->js = sqrt(jsd > 0 ? jsd : 0), f->psi = psi;
    if (f->vocab >= 0) f->ref_unk = f->ref[0] / np, f->cur_unk = f->cur[0] / nq;
}

void drift_hist_finish(DriftHist *h, double threshold) {
    for (int i = 0; i < h->n; i++) {
        comm_allreduce_sum_f64(h->f[i].ref, h->f[i].n_bins);
        comm_allreduce_sum_f64(h->f[i].cur, h->f[i].n_bins);
        compare(&h->f[i]);
        h->f[i].shifted = h->f[i].js >= threshold;
    }
}

DriftVerdict drift_verdict(const DriftHist *h, const Metrics *ref, const Metrics *cur) {
    const double d_action = ref->action_nll > 0 ? cur->action_nll / ref->action_nll - 1 : 0;
    const double d_time = cur->time_nll - ref->time_nll;
    if (d_action > 0.20) return DRIFT_RETRAIN;
    int any = d_action > 0.03 || d_time > 0.2;
    for (int i = 0; i < h->n; i++)
        any |= h->f[i].shifted || (h->f[i].vocab >= 0 && h->f[i].cur_unk - h->f[i].ref_unk > 0.005);
    return any ? DRIFT_FINE_TUNE : DRIFT_NONE;
}
