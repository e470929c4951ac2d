// report_sweep.c: the page of a sweep directory (cmd/sweep.c: plan.txt, sweep.txt and one
// run directory per trial with DONE or FAILED when it ended).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "json.h"
#include "report.h"
#include "svg.h"

#define MAX_TRIALS 1024
#define MAX_AXES   32

typedef struct {
    char name[32], overrides[1024];
    char value[MAX_AXES][128]; // per swept key, "" when the trial does not set it
    int status;                // 0 DONE, 1 FAILED, 2 pending
    double metric;
    double *curve_x, *curve_y; // validation metric over steps
    int n_curve;
} Trial;

typedef struct {
    Trial *t;
    int n;
    char keys[MAX_AXES][128];
    int n_keys;
    char metric[64];
    int maximize;
} Sweep;

static void read_plan(Sweep *sw, char *text) {
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || sw->n == MAX_TRIALS) continue;
        Trial *t = &sw->t[sw->n++];
        memset(t, 0, sizeof *t);
        t->metric = NAN;
        char *tab = strchr(line, '\t');
        snprintf(t->name, sizeof t->name, "%.*s", (int)(tab ? tab - line : (long)strlen(line)),
                 line);
        for (char *f = tab; f; f = strchr(f + 1, '\t')) {
            char *end = strchr(f + 1, '\t'), *eq = strchr(f + 1, '=');
            int len = (int)(end ? end - f - 1 : (long)strlen(f + 1));
            if (!eq || (end && eq > end)) continue;
            int klen = (int)(eq - f - 1), k = 0;
            snprintf(t->overrides + strlen(t->overrides),
                     sizeof t->overrides - strlen(t->overrides), "%s%.*s",
                     t->overrides[0] ? " " : "", len, f + 1);
            while (k < sw->n_keys &&
                   (strncmp(sw->keys[k], f + 1, (size_t)klen) != 0 || sw->keys[k][klen] != '\0'))
                k++;
            if (k == sw->n_keys && k < MAX_AXES)
                snprintf(sw->keys[sw->n_keys++], 128, "%.*s", klen, f + 1);
            if (k < MAX_AXES) snprintf(t->value[k], 128, "%.*s", len - klen - 1, eq + 1);
        }
    }
}

static void read_trial(const char *dir, Sweep *sw, Trial *t) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/DONE", dir, t->name);
    t->status = path_exists(path) ? 0 : 2;
    snprintf(path, sizeof path, "%s/%s/FAILED", dir, t->name);
    if (t->status == 2 && path_exists(path)) t->status = 1;
    const char *key = strchr(sw->metric, '.') ? strchr(sw->metric, '.') + 1 : sw->metric;
    snprintf(path, sizeof path, "%s/%s/metrics.json", dir, t->name);
    size_t n;
    char *text = read_file(path, &n), err[128];
    JsonDoc doc;
    if (text && t->status == 0 && json_parse(&doc, text, n, err, sizeof err) == 0) {
        t->metric = json_num(json_get(doc.root, "valid"), key, NAN);
        json_free(&doc);
    }
    free(text);
    snprintf(path, sizeof path, "%s/%s/log.jsonl", dir, t->name);
    text = read_file(path, &n);
    int cap = 0;
    for (char *p = text, *end = text + (text ? n : 0); text && p < end;) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if (eol > p && memmem(p, (size_t)(eol - p), "\"event\":\"valid\"", 15) &&
            json_parse(&doc, p, (size_t)(eol - p), err, sizeof err) == 0) {
            double st = json_num(doc.root, "step", NAN), v = json_num(doc.root, key, NAN);
            // A resume redoes steps past its checkpoint: keep the curve monotone in steps.
            while (t->n_curve > 0 && t->curve_x[t->n_curve - 1] >= st) t->n_curve--;
            if (t->n_curve == cap) {
                cap = cap ? 2 * cap : 16;
                t->curve_x = xrealloc(t->curve_x, sizeof(double) * (size_t)cap);
                t->curve_y = xrealloc(t->curve_y, sizeof(double) * (size_t)cap);
            }
            t->curve_x[t->n_curve] = st, t->curve_y[t->n_curve++] = v;
            json_free(&doc);
        }
        p = eol + 1;
    }
    free(text);
}

static int g_maximize;
static int by_metric(const void *a, const void *b) {
    const Trial *x = a, *y = b;
    if (x->status != y->status) return x->status - y->status;
    int xn = isnan(x->metric), yn = isnan(y->metric);
    if (xn || yn) return xn - yn;
    double d = g_maximize ? y->metric - x->metric : x->metric - y->metric;
    return d < 0 ? -1 : d > 0;
}

static void trials_table(StrBuf *o, const Sweep *sw) {
    static const char *const status[] = {"DONE", "FAILED", "pending"};
    sb_appendf(o, "<table><tr><th>rank</th><th>trial</th><th>status</th><th>");
    html_escape(o, sw->metric);
    sb_appendf(o, " (%s)</th>", sw->maximize ? "max" : "min");
    for (int k = 0; k < sw->n_keys; k++) {
        sb_appendf(o, "<th>");
        html_escape(o, sw->keys[k]);
        sb_appendf(o, "</th>");
    }
    sb_appendf(o, "</tr>");
    for (int i = 0; i < sw->n; i++) {
        const Trial *t = &sw->t[i];
        sb_appendf(o, "<tr><td class=\"num\">%d</td><td>", i + 1);
        html_escape(o, t->name);
        sb_appendf(o, "</td><td>%s</td><td class=\"num\">", status[t->status]);
        if (isfinite(t->metric)) sb_appendf(o, "%.6g", t->metric);
        sb_appendf(o, "</td>");
        for (int k = 0; k < sw->n_keys; k++) {
            sb_appendf(o, "<td>");
            html_escape(o, t->value[k]);
            sb_appendf(o, "</td>");
        }
        sb_appendf(o, "</tr>");
    }
    sb_appendf(o, "</table>\n");
}

// Metric against one swept key: numbers on a (log when they span >= 20x) axis; other values
// as categories 0..n-1 named in the note.
static int param_chart(StrBuf *o, const Sweep *sw, int k) {
    double *x = xmalloc(sizeof(double) * (size_t)sw->n),
           *y = xmalloc(sizeof(double) * (size_t)sw->n);
    int n = 0, numeric = 1;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < sw->n; i++) {
        char *end;
        strtod(sw->t[i].value[k], &end);
        if (sw->t[i].value[k][0] && *end) numeric = 0;
    }
    static char cats[64][128];
    int n_cats = 0;
    char note[1200] = "";
    for (int i = 0; i < sw->n; i++) {
        const Trial *t = &sw->t[i];
        if (!isfinite(t->metric) || !t->value[k][0]) continue;
        double v;
        if (numeric) {
            v = strtod(t->value[k], NULL);
        } else {
            int c = 0;
            while (c < n_cats && strcmp(cats[c], t->value[k]) != 0) c++;
            if (c == n_cats && n_cats < 64) snprintf(cats[n_cats++], 128, "%s", t->value[k]);
            v = c;
        }
        x[n] = v, y[n++] = t->metric;
        lo = fmin(lo, v), hi = fmax(hi, v);
    }
    for (int c = 0; !numeric && c < n_cats; c++)
        snprintf(note + strlen(note), sizeof note - strlen(note), "%s%d = %s",
                 c ? ", " : "Values: ", c, cats[c]);
    char id[160], title[300];
    snprintf(id, sizeof id, "param-%s", sw->keys[k]);
    snprintf(title, sizeof title, "%s vs %s", sw->metric, sw->keys[k]);
    Chart c;
    chart_init(&c, id, title, sw->keys[k], sw->metric);
    c.logx = numeric && lo > 0 && hi / lo >= 20;
    c.note = note[0] ? note : c.logx ? "Log axis: the values span a factor of 20 or more." : NULL;
    chart_add(&c, "finished trials", x, y, n, SERIES_POINTS);
    int drawn = chart_svg(o, &c);
    free(x), free(y);
    return drawn;
}

// The plan, the metric and mode, every trial's state, sorted best first; -1 without a plan.
static Sweep *sweep_read(const char *dir, char *err, size_t errlen) {
    char path[1200];
    snprintf(path, sizeof path, "%s/plan.txt", dir);
    char *text = read_file(path, NULL);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read (is %s a sweep directory?)", path, dir);
        return NULL;
    }
    Sweep *sw = xcalloc(1, sizeof *sw);
    sw->t = xcalloc(MAX_TRIALS, sizeof(Trial));
    snprintf(sw->metric, sizeof sw->metric, "valid.action_nll");
    read_plan(sw, text);
    free(text);
    snprintf(path, sizeof path, "%s/sweep.txt", dir);
    if ((text = read_file(path, NULL))) {
        char m[64] = "", mode[16] = "";
        if (sscanf(text, "metric %63s\nmode %15s", m, mode) == 2)
            snprintf(sw->metric, sizeof sw->metric, "%s", m),
                sw->maximize = strcmp(mode, "max") == 0;
        free(text);
    }
    for (int i = 0; i < sw->n; i++) read_trial(dir, sw, &sw->t[i]);
    g_maximize = sw->maximize;
    qsort(sw->t, (size_t)sw->n, sizeof(Trial), by_metric);
    return sw;
}

static void curves_chart(StrBuf *o, const Sweep *sw) {
    char title[200];
    Chart c;
    snprintf(title, sizeof title, "%s over steps, every trial", sw->metric);
    chart_init(&c, "curves", title, "step", sw->metric);
    sb_appendf(o, "<div class=\"grid2\">");
    for (int i = 0; i < sw->n && c.n_series < CHART_MAX_SERIES; i++)
        chart_add(&c, sw->t[i].name, sw->t[i].curve_x, sw->t[i].curve_y, sw->t[i].n_curve,
                  SERIES_LINE_POINTS);
    if (sw->n > CHART_MAX_SERIES) c.note = "The best 24 trials are shown.";
    chart_svg(o, &c);
    sb_appendf(o, "</div>");
}

static void best_section(StrBuf *o, const Sweep *sw, const char *dir, int done) {
    if (done == 0 || !isfinite(sw->t[0].metric)) {
        page_note(o, "note", "No finished trial yet.");
        return;
    }
    char m[1400], path[1200];
    snprintf(m, sizeof m, "%s: %s = %.6g with %s", sw->t[0].name, sw->metric, sw->t[0].metric,
             sw->t[0].overrides[0] ? sw->t[0].overrides : "(no overrides)");
    page_note(o, "note", m);
    snprintf(path, sizeof path, "%s/%s/config.yaml", dir, sw->t[0].name);
    char *text = read_file(path, NULL);
    page_pre(o, text ? text : "(config.yaml missing)");
    free(text);
}

int report_sweep(StrBuf *o, const char *dir, char *err, size_t errlen) {
    Sweep *sw = sweep_read(dir, err, errlen);
    if (!sw) return -1;
    int done = 0, failed = 0;
    for (int i = 0; i < sw->n; i++) done += sw->t[i].status == 0, failed += sw->t[i].status == 1;
    char title[1300], sub[400];
    snprintf(title, sizeof title, "Sweep %s", dir);
    snprintf(sub, sizeof sub, "%d trials: %d done, %d failed, %d pending; sorted by %s (%s)", sw->n,
             done, failed, sw->n - done - failed, sw->metric,
             sw->maximize ? "higher is better" : "lower is better");
    page_begin(o, title, sub);
    if (sw->n == 0)
        page_note(o, "warn", "The plan holds no trials.");
    else if (done == 0)
        page_note(o, "warn",
                  "No trial has finished yet: the table lists the plan; charts fill in "
                  "as trials end (trainer sweep run DIR).");
    page_section(o, "trials", "Trials");
    trials_table(o, sw);
    page_section(o, "params", "Metric vs each swept parameter");
    sb_appendf(o, "<div class=\"grid2\">");
    for (int k = 0; k < sw->n_keys; k++) param_chart(o, sw, k);
    if (sw->n_keys == 0) page_note(o, "note", "The plan sweeps no parameter.");
    sb_appendf(o, "</div>");
    page_section(o, "curves", "Validation curves of all trials");
    curves_chart(o, sw);
    page_section(o, "best", "Best configuration");
    best_section(o, sw, dir, done);
    page_end(o);
    for (int i = 0; i < sw->n; i++) free(sw->t[i].curve_x), free(sw->t[i].curve_y);
    free(sw->t);
    free(sw);
    return 0;
}
