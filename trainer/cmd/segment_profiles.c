// segment_profiles.c: see segment_profiles.h.
#include "segment_profiles.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "kmeans.h"
#include "util.h"

enum { N_DISTINGUISH = 5, N_PEAK_HOURS = 3 };

// s as the body of a JSON string (quotes, backslashes and control characters escaped) in one
// of a few rotating buffers, so several can appear in one format call.
static const char *js(const char *s) {
    static char bufs[4][512];
    static int next = 0;
    char *out = bufs[next++ % 4];
    size_t n = 0;
    for (; *s && n + 7 < sizeof bufs[0]; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            out[n++] = '\\', out[n++] = (char)c;
        else if (c < 0x20)
            n += (size_t)snprintf(out + n, 7, "\\u%04x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = 0;
    return out;
}

void profiles_compute(Profiles *p, const HandmadeSpec *hs, const float *hand,
                      const double *n_events, const int32_t *labels, int64_t n, int k,
                      const double *pop_mean, const double *pop_std) {
    memset(p, 0, sizeof *p);
    const int dim = hs->dim;
    p->hs = hs, p->k = k, p->dim = dim, p->pop_mean = pop_mean, p->pop_std = pop_std;
    p->sizes = xcalloc((size_t)k, sizeof(int64_t));
    p->events = xcalloc((size_t)k, sizeof(double));
    p->user_mean = xmalloc(sizeof(double) * (size_t)(k * dim));
    p->event_mean = xmalloc(sizeof(double) * (size_t)(k * dim));
    int64_t *ev = xcalloc((size_t)k, sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) p->sizes[labels[i]]++, ev[labels[i]] += (int64_t)n_events[i];
    comm_allreduce_sum_i64(p->sizes, (size_t)k);
    comm_allreduce_sum_i64(ev, (size_t)k);
    kmeans_cluster_sums(hand, NULL, labels, n, dim, k, p->user_mean);
    kmeans_cluster_sums(hand, n_events, labels, n, dim, k, p->event_mean);
    for (int q = 0; q < k; q++) {
        p->events[q] = (double)ev[q];
        for (int j = 0; j < dim; j++) {
            p->user_mean[q * dim + j] /= p->sizes[q] > 0 ? (double)p->sizes[q] : 1;
            p->event_mean[q * dim + j] /= ev[q] > 0 ? (double)ev[q] : 1;
        }
    }
    free(ev);
}

void profiles_free(Profiles *p) {
    free(p->sizes), free(p->events), free(p->user_mean), free(p->event_mean);
    memset(p, 0, sizeof *p);
}

// The segment's mean of feature j in population standard deviations (0: no spread).
static double effect(const Profiles *p, int q, int j) {
    return p->pop_std[j] > 0 ? (p->user_mean[q * p->dim + j] - p->pop_mean[j]) / p->pop_std[j] : 0;
}

// The n features with the largest |effect|, ties by index.
static void distinguishing(const Profiles *p, int q, int *out, int n) {
    for (int i = 0; i < n; i++) {
        int best = -1;
        for (int j = 0; j < p->dim; j++) {
            int used = 0;
            for (int u = 0; u < i; u++) used |= out[u] == j;
            if (!used && (best < 0 || fabs(effect(p, q, j)) > fabs(effect(p, q, best)))) best = j;
        }
        out[i] = best;
    }
}

// Hours of day by share of the segment's events, most active first.
static void peak_hours(const Profiles *p, int q, int *out) {
    const double *h = p->event_mean + q * p->dim + p->hs->off_hour;
    for (int i = 0; i < N_PEAK_HOURS; i++) {
        int best = -1;
        for (int hr = 0; hr < 24; hr++) {
            int used = 0;
            for (int u = 0; u < i; u++) used |= out[u] == hr;
            if (!used && (best < 0 || h[hr] > h[best])) best = hr;
        }
        out[i] = best;
    }
}

// Typical gap: exp of the segment's mean log(gap + offset), minus the offset (time units).
static double typical_gap(const Profiles *p, int q) {
    double g = exp(p->user_mean[q * p->dim + p->hs->off_gap]) - p->hs->gap_offset;
    return g > 0 ? g : 0;
}

// A numeric column's typical value: the mean of its (transformed) values, transformed back.
static double typical_num(const Profiles *p, int q, int k) {
    double m = p->event_mean[q * p->dim + p->hs->off_num + 2 * k];
    return p->hs->log1p ? expm1(m) : m;
}

// The name of numeric column k (its "_mean" feature without the suffix) into buf.
static const char *num_name(const HandmadeSpec *hs, int k, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", hs->names[hs->off_num + 2 * k]);
    size_t n = strlen(buf);
    if (n >= 5) buf[n - 5] = 0;
    return buf;
}

static void json_segment(StrBuf *sb, const Profiles *p, const ProfileRun *run, int q) {
    const HandmadeSpec *hs = p->hs;
    const int dim = p->dim;
    sb_appendf(sb, "    {\"segment\": %d, \"users\": %lld, \"share\": %.4f, \"events_per_user\": %.2f,\n",
               q, (long long)p->sizes[q], (double)p->sizes[q] / (double)(run->n_users ? run->n_users : 1),
               p->events[q] / (double)(p->sizes[q] ? p->sizes[q] : 1));
    sb_appendf(sb, "     \"action_mix\": {");
    for (int a = 0; a < hs->n_actions; a++)
        sb_appendf(sb, "%s\"%s\": %.4f", a ? ", " : "", js(strchr(hs->names[hs->off_action + a], '=') + 1),
                   p->event_mean[q * dim + hs->off_action + a]);
    sb_appendf(sb, "},\n");
    if (hs->calendar) {
        int peak[N_PEAK_HOURS];
        peak_hours(p, q, peak);
        sb_appendf(sb, "     \"peak_hours_utc\": [%d, %d, %d], \"hour_share\": [", peak[0], peak[1], peak[2]);
        for (int h = 0; h < 24; h++)
            sb_appendf(sb, "%s%.4f", h ? ", " : "", p->event_mean[q * dim + hs->off_hour + h]);
        double weekend = p->event_mean[q * dim + hs->off_weekday + 5] +
                         p->event_mean[q * dim + hs->off_weekday + 6];
        sb_appendf(sb, "], \"weekend_share\": %.4f,\n", weekend);
    }
    sb_appendf(sb, "     \"typical_gap\": %.6g, \"log_gap_std\": %.4f", typical_gap(p, q),
               p->user_mean[q * dim + hs->off_gap + 1]);
    for (int k = 0; k < hs->n_num; k++) {
        char name[64];
        sb_appendf(sb, ", \"typical_%s\": %.6g", js(num_name(hs, k, name, sizeof name)),
                   typical_num(p, q, k));
    }
    int top[N_DISTINGUISH];
    distinguishing(p, q, top, N_DISTINGUISH < dim ? N_DISTINGUISH : dim);
    sb_appendf(sb, ",\n     \"distinguishing\": [");
    for (int i = 0; i < N_DISTINGUISH && i < dim; i++)
        sb_appendf(sb, "%s{\"feature\": \"%s\", \"segment_mean\": %.4g, \"population_mean\": %.4g, "
                       "\"effect_sd\": %.3f}",
                   i ? ", " : "", js(hs->names[top[i]]), p->user_mean[q * dim + top[i]],
                   p->pop_mean[top[i]], effect(p, q, top[i]));
    sb_appendf(sb, "]");
    if (run->has_truth) {
        sb_appendf(sb, ",\n     \"true_segments\": {");
        for (int s = 0; s < run->n_true; s++)
            sb_appendf(sb, "%s\"%s\": %lld", s ? ", " : "", run->true_names[s],
                       (long long)run->truth_table[q * run->n_true + s]);
        sb_appendf(sb, "}");
    }
    sb_appendf(sb, "}%s\n", q + 1 < p->k ? "," : "");
}

static void json_write(const Profiles *p, const ProfileRun *run, const char *path) {
    StrBuf sb = {0};
    sb_appendf(&sb, "{\"k\": %d, \"k_rule\": \"%s\", \"features\": \"%s\", \"embedding\": \"%s\", "
                    "\"users\": %lld, \"of\": \"%s\",\n \"checkpoint\": \"%s\", \"checkpoint_step\": %lld, "
                    "\"time_unit\": \"%s\",\n",
               p->k, run->k_rule, run->features, run->embedding, (long long)run->n_users,
               js(run->what), js(run->ckpt_path), (long long)run->step, run->time_unit);
    if (run->has_truth)
        sb_appendf(&sb, " \"ari\": {\"%s\": %.4f, \"%s\": %.4f, \"bayes_ceiling\": %.4f, \"users\": %lld},\n",
                   run->features, run->ari, run->other_features, run->ari_other, run->ari_bayes,
                   (long long)run->truth_users);
    sb_appendf(&sb, " \"segments\": [\n");
    for (int q = 0; q < p->k; q++) json_segment(&sb, p, run, q);
    sb_appendf(&sb, " ]}\n");
    char err[1400];
    if (write_file_atomic(path, sb.data, sb.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&sb);
}

// Three largest entries of a mix (offset off, n values) as "name 41%, name 22%, ...".
static void top_mix(StrBuf *sb, const Profiles *p, int q, int off, int n) {
    int used[3] = {-1, -1, -1};
    for (int i = 0; i < 3 && i < n; i++) {
        int best = -1;
        for (int j = 0; j < n; j++)
            if (j != used[0] && j != used[1] &&
                (best < 0 || p->event_mean[q * p->dim + off + j] > p->event_mean[q * p->dim + off + best]))
                best = j;
        used[i] = best;
        sb_appendf(sb, "%s%s %.0f%%", i ? ", " : "", strchr(p->hs->names[off + best], '=') + 1,
                   100 * p->event_mean[q * p->dim + off + best]);
    }
}

static void md_segment(StrBuf *sb, const Profiles *p, const ProfileRun *run, int q) {
    const HandmadeSpec *hs = p->hs;
    sb_appendf(sb, "\n## Segment %d: %lld users (%.1f%%)\n\n", q, (long long)p->sizes[q],
               100.0 * (double)p->sizes[q] / (double)(run->n_users ? run->n_users : 1));
    sb_appendf(sb, "- events per user: %.1f\n- actions: ", p->events[q] / (double)(p->sizes[q] ? p->sizes[q] : 1));
    top_mix(sb, p, q, hs->off_action, hs->n_actions);
    for (int c = 0; c < hs->n_cat; c++) {
        char col[64];
        snprintf(col, sizeof col, "%s", hs->names[hs->off_cat[c]]);
        char *eq = strchr(col, '=');
        if (eq) *eq = 0;
        sb_appendf(sb, "\n- %s: ", col);
        top_mix(sb, p, q, hs->off_cat[c], hs->cat_vocab[c]);
    }
    if (hs->calendar) {
        int peak[N_PEAK_HOURS];
        peak_hours(p, q, peak);
        sb_appendf(sb, "\n- most active hours (UTC): %02d, %02d, %02d; weekend share %.0f%%", peak[0],
                   peak[1], peak[2],
                   100 * (p->event_mean[q * p->dim + hs->off_weekday + 5] +
                          p->event_mean[q * p->dim + hs->off_weekday + 6]));
    }
    sb_appendf(sb, "\n- typical gap between events: %.4g %s", typical_gap(p, q), run->time_unit);
    for (int k = 0; k < hs->n_num; k++) {
        char name[64];
        sb_appendf(sb, "\n- typical %s: %.4g", num_name(hs, k, name, sizeof name), typical_num(p, q, k));
    }
    int top[N_DISTINGUISH], n_top = N_DISTINGUISH < p->dim ? N_DISTINGUISH : p->dim;
    distinguishing(p, q, top, n_top);
    sb_appendf(sb, "\n- most distinguishing (segment mean vs everyone, in standard deviations): ");
    for (int i = 0; i < n_top; i++)
        sb_appendf(sb, "%s`%s` %+.2f", i ? ", " : "", hs->names[top[i]], effect(p, q, top[i]));
    if (run->has_truth) {
        sb_appendf(sb, "\n- true segments (synthetic truth):");
        for (int s = 0; s < run->n_true; s++)
            sb_appendf(sb, " %s %lld", run->true_names[s], (long long)run->truth_table[q * run->n_true + s]);
    }
    sb_appendf(sb, "\n");
}

static void md_write(const Profiles *p, const ProfileRun *run, const char *path) {
    StrBuf sb = {0};
    int model = strcmp(run->features, "model") == 0;
    sb_appendf(&sb, "# Segments\n\n%d segments (K %s) of %lld users of %s, clustered on %s features%s%s%s, "
                    "with %s (step %lld).\n",
               p->k, run->k_rule, (long long)run->n_users, run->what, run->features,
               model ? " (embedding " : "", model ? run->embedding : "", model ? ")" : "",
               run->ckpt_path, (long long)run->step);
    if (run->has_truth)
        sb_appendf(&sb, "\nAgreement with the generator's true segments (adjusted Rand index, %lld users): "
                        "%s features %.3f, %s features %.3f, Bayes ceiling %.3f.\n",
                   (long long)run->truth_users, run->features, run->ari, run->other_features,
                   run->ari_other, run->ari_bayes);
    sb_appendf(&sb, "\n| segment | users | share | events/user | typical gap (%s) |\n|---|---|---|---|---|\n",
               run->time_unit);
    for (int q = 0; q < p->k; q++)
        sb_appendf(&sb, "| %d | %lld | %.1f%% | %.1f | %.4g |\n", q, (long long)p->sizes[q],
                   100.0 * (double)p->sizes[q] / (double)(run->n_users ? run->n_users : 1),
                   p->events[q] / (double)(p->sizes[q] ? p->sizes[q] : 1), typical_gap(p, q));
    for (int q = 0; q < p->k; q++) md_segment(&sb, p, run, q);
    char err[1400];
    if (write_file_atomic(path, sb.data, sb.len, err, sizeof err) != 0) fatal("%s", err);
    sb_free(&sb);
}

void profiles_write(const Profiles *p, const ProfileRun *run, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/profiles.json", dir);
    json_write(p, run, path);
    snprintf(path, sizeof path, "%s/profiles.md", dir);
    md_write(p, run, path);
}
