// explain_words.c: explanations in words (explain.h: explain_reasons, explain_target_name).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"

void explain_target_name(const Explainer *ex, const ExplainTarget *t, char *out, size_t cap) {
    if (ex->opt.kind == ATTR_GAP)
        snprintf(out, cap, "gap");
    else
        snprintf(out, cap, "log p(%s)", ex->sc->ds.meta.vocab[0][t->item.cls]);
}

// "last event", "2nd last event", ... for offset o (1 = the event the prediction follows).
static void which_event(int o, char *out, size_t cap) {
    const char *suffix = (o % 100) / 10 == 1 ? "th" : o % 10 == 2 ? "nd" : o % 10 == 3 ? "rd" : "th";
    if (o == 1)
        snprintf(out, cap, "last event");
    else
        snprintf(out, cap, "%d%s last event", o, suffix);
}

// A duration in the data's time unit, in words ("12 s", "3.5 min", "2.1 h", "4.0 d").
static void duration(double units, double unit_seconds, char *out, size_t cap) {
    if (unit_seconds <= 0) {
        snprintf(out, cap, "%.3g time units", units);
        return;
    }
    double s = units * unit_seconds;
    if (s < 90)
        snprintf(out, cap, "%.3g s", s);
    else if (s < 5400)
        snprintf(out, cap, "%.3g min", s / 60);
    else if (s < 2 * 86400)
        snprintf(out, cap, "%.3g h", s / 3600);
    else
        snprintf(out, cap, "%.3g d", s / 86400);
}

// What cell (row t of the window, group g) says, e.g. "content of last event: video".
static void describe_cell(const Explainer *ex, const ExplainTarget *t, int row, int g, char *out,
                          size_t cap) {
    const FeatureGroups *fg = &ex->fg;
    const DataMeta *meta = &ex->sc->ds.meta;
    const AttrItem *it = &t->item;
    const int index = t->last - it->n + 1 + row, C = (int)meta->n_cat;
    const uint8_t *e = t->shard->events + (t->user->first_event + (uint64_t)index) *
                                              t->shard->hdr.event_bytes;
    char where[48], of[64] = "";
    which_event(it->n - row, where, sizeof where);
    if (it->n - row > 1) snprintf(of, sizeof of, " of %s", where);
    const double secs = ev_time(e) * fg->fs.unit_seconds;
    if (g == fg->action_group) {
        snprintf(out, cap, "%s: %s", where, meta->vocab[0][ev_action(e)]);
    } else if (g == fg->gap_group) {
        char d[48];
        if (index == 0) {
            snprintf(out, cap, "%s: first event of the user", where);
            return;
        }
        duration(ev_time(e) - ev_time(e - t->shard->hdr.event_bytes), fg->fs.unit_seconds, d,
                 sizeof d);
        snprintf(out, cap, "gap before %s: %s", where, d);
    } else if (g == fg->tod_group) {
        double day = floor(secs / 86400.0);
        snprintf(out, cap, "time of day%s: %02dh", of, (int)floor((secs - day * 86400.0) / 3600.0));
    } else if (g == fg->dow_group) {
        static const char *const DAYS[7] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
        double dow = fmod(floor(secs / 86400.0) + 3.0, 7.0); // 1970-01-01 was a Thursday
        snprintf(out, cap, "day of week%s: %s", of, DAYS[(int)(dow < 0 ? dow + 7 : dow)]);
    } else {
        for (int c = 0; c < C; c++)
            if (g == fg->cat_group[c]) {
                snprintf(out, cap, "%s%s: %s", meta->column[1 + c], of,
                         meta->vocab[1 + c][ev_cat(e, c)]);
                return;
            }
        for (int k = 0; k < fg->fs.n_num; k++)
            if (g == fg->num_group[k]) {
                snprintf(out, cap, "%s%s: %.3g", meta->column[1 + C + k], of, ev_num(e, C, k));
                return;
            }
        snprintf(out, cap, "%s%s", fg->name[g], of);
    }
}

int explain_reasons(const Explainer *ex, const ExplainTarget *t, int n_reasons,
                    char (*out)[EXPLAIN_REASON_LEN]) {
    const int G = ex->fg.n_groups, cells = t->item.n * G;
    const double *a = t->item.res.attr;
    double total = 0;
    for (int i = 0; i < cells; i++) total += fabs(a[i]);
    int used[8], n = 0;
    for (int k = 0; k < n_reasons && k < 8; k++) {
        int best = -1;
        for (int i = 0; i < cells; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= used[j] == i;
            if (!taken && (best < 0 || fabs(a[i]) > fabs(a[best]))) best = i;
        }
        if (best < 0 || a[best] == 0 || total <= 0) break;
        used[n++] = best;
        char what[EXPLAIN_REASON_LEN - 16];
        describe_cell(ex, t, best / G, best % G, what, sizeof what);
        snprintf(out[k], EXPLAIN_REASON_LEN, "%s (%.0f%%)", what, 100.0 * a[best] / total);
    }
    return n;
}
