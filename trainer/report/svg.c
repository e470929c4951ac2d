// svg.c: see svg.h. Plot area in SVG user units; data mapped linearly (or by log10).
#include "svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const PALETTE[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};

const char *chart_color(int i) {
    return PALETTE[i % (int)ARRAY_LEN(PALETTE)];
}

void html_escape(StrBuf *out, const char *s) {
    for (; s && *s; s++) {
        const char *e = *s == '&'   ? "&amp;"
                        : *s == '<' ? "&lt;"
                        : *s == '>' ? "&gt;"
                        : *s == '"' ? "&quot;"
                                    : NULL;
        if (e)
            sb_append(out, e, strlen(e));
        else
            sb_append(out, s, 1);
    }
}

void chart_init(Chart *c, const char *id, const char *title, const char *xlabel,
                const char *ylabel) {
    memset(c, 0, sizeof *c);
    c->id = id, c->title = title, c->xlabel = xlabel, c->ylabel = ylabel;
    c->width = 640, c->height = 300;
    c->x_integer = xlabel && strcmp(xlabel, "step") == 0; // no step 0.5
}

void chart_add(Chart *c, const char *name, const double *x, const double *y, int n, int kind) {
    if (c->n_series == CHART_MAX_SERIES) return;
    c->s[c->n_series++] = (ChartSeries){name, x, y, n, kind, NULL};
}

void chart_ref(Chart *c, double y, const char *label, const char *color) {
    if (c->n_ref < CHART_MAX_REFS && isfinite(y)) c->ref[c->n_ref++] = (ChartRef){y, label, color};
}

void chart_mark(Chart *c, double x, const char *label, const char *color) {
    if (c->n_mark < CHART_MAX_MARKS && isfinite(x))
        c->mark[c->n_mark++] = (ChartMark){x, label, color};
}

// ---------------------------------------------------------------- axes

typedef struct {
    double lo, hi; // data range (log10 of it on a log axis)
    int log, integer;
    double px0, px1; // pixel range
} Axis;

static int usable(double v, int log) {
    return isfinite(v) && (!log || v > 0);
}
static double tr(double v, int log) {
    return log ? log10(v) : v;
}
static double ax_px(const Axis *a, double v) {
    return a->px0 + (tr(v, a->log) - a->lo) / (a->hi - a->lo) * (a->px1 - a->px0);
}

static void fmt_num(char *out, size_t cap, double v) {
    double a = fabs(v);
    if (v == 0)
        snprintf(out, cap, "0");
    else if (a >= 1e5 || a < 1e-3)
        snprintf(out, cap, "%.2g", v);
    else
        snprintf(out, cap, "%.4g", v);
}

static void widen(Axis *a) {
    if (!(a->hi > a->lo)) { // one value: a unit (or a decade) around it
        double d = a->log ? 0.5 : (a->lo != 0 ? fabs(a->lo) * 0.1 : 1);
        // Counts, steps and seconds that start at 0 do not get a negative axis.
        a->lo = !a->log && a->lo >= 0 && a->lo - d < 0 ? 0 : a->lo - d, a->hi += d;
    } else {
        double pad = (a->hi - a->lo) * 0.04; // on a log axis: 4% of the decades shown
        a->lo -= pad, a->hi += pad;
    }
}

// Ticks at 1, 2, 5 x 10^k (linear) or at decades (log); appends grid lines and labels.
static void axis_ticks(StrBuf *o, const Axis *a, int vertical, double other0, double other1) {
    double vals[32];
    int n = 0;
    if (a->log) {
        // Decades; within a decade or two also 2 and 5 (or every digit) times them.
        static const double m125[] = {1, 2, 5}, m19[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        const double span = a->hi - a->lo;
        const double *m = span < 0.7 ? m19 : m125;
        const int nm = span < 0.7 ? 9 : span < 2.5 ? 3 : 1;
        const double step = span > 8 ? ceil(span / 8) : 1;
        for (double e = floor(a->lo); e <= a->hi && n < 32; e += step)
            for (int k = 0; k < nm && n < 32; k++) {
                double v = m[k] * pow(10, e);
                if (log10(v) >= a->lo - 1e-9 && log10(v) <= a->hi + 1e-9) vals[n++] = v;
            }
        if (n < 2) vals[0] = pow(10, a->lo), vals[1] = pow(10, a->hi), n = 2;
    } else {
        double raw = (a->hi - a->lo) / 6, mag = pow(10, floor(log10(raw))), step = mag;
        if (raw / mag > 5)
            step = 10 * mag;
        else if (raw / mag > 2)
            step = 5 * mag;
        else if (raw / mag > 1)
            step = 2 * mag;
        if (a->integer && step < 1) step = 1;
        for (double v = ceil(a->lo / step) * step; v <= a->hi + step * 1e-9 && n < 32; v += step)
            vals[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    }
    for (int i = 0; i < n; i++) {
        char lab[32];
        fmt_num(lab, sizeof lab, vals[i]);
        double p = ax_px(a, vals[i]);
        if (vertical) {
            sb_appendf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                       other0, other1, p, p);
            sb_appendf(o,
                       "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                       other0 - 4, p + 4, lab);
        } else {
            sb_appendf(o, "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>",
                       p, p, other0, other1);
            sb_appendf(o,
                       "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
                       "</text>",
                       p, other0 + 14, lab);
        }
    }
}

// The data range over all series (and references, and marks on x).
static int data_range(const Chart *c, Axis *ax, Axis *ay, int *dropped) {
    double xl = INFINITY, xh = -INFINITY, yl = INFINITY, yh = -INFINITY;
    int n = 0;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->s[s].n; i++) {
            double x = c->s[s].x[i], y = c->s[s].y[i];
            if (!usable(x, c->logx) || !usable(y, c->logy)) {
                *dropped += isfinite(x) && isfinite(y);
                continue;
            }
            x = tr(x, c->logx), y = tr(y, c->logy);
            xl = fmin(xl, x), xh = fmax(xh, x), yl = fmin(yl, y), yh = fmax(yh, y), n++;
        }
    if (n == 0) return 0;
    for (int r = 0; r < c->n_ref; r++)
        if (usable(c->ref[r].value, c->logy)) {
            double y = tr(c->ref[r].value, c->logy);
            // A reference far outside the data would flatten the curves: keep it within reach.
            if (y >= yl - (yh - yl) && y <= yh + (yh - yl)) yl = fmin(yl, y), yh = fmax(yh, y);
        }
    if (c->y_zero && !c->logy) yl = fmin(yl, 0), yh = fmax(yh, 0);
    if (c->fixed_range) {
        xl = tr(c->xmin, c->logx), xh = tr(c->xmax, c->logx);
        yl = tr(c->ymin, c->logy), yh = tr(c->ymax, c->logy);
    }
    *ax = (Axis){xl, xh, c->logx, c->x_integer, 0, 0};
    *ay = (Axis){yl, yh, c->logy, 0, 0, 0};
    if (!c->fixed_range) widen(ax), widen(ay);
    return n;
}

static void figure_open(StrBuf *o, const char *id, const char *title, int empty) {
    sb_appendf(o, "<figure class=\"chart%s\" id=\"", empty ? " empty" : "");
    html_escape(o, id);
    sb_appendf(o, "\"><figcaption>");
    html_escape(o, title);
    sb_appendf(o, "</figcaption>");
}

static void empty_note(StrBuf *o, const char *id, const char *title, const char *why) {
    figure_open(o, id, title, 1);
    sb_appendf(o, "<p class=\"note\">");
    html_escape(o, why);
    sb_appendf(o, "</p></figure>\n");
}

static void legend(StrBuf *o, const Chart *c, double x0, double y) {
    double x = x0;
    for (int s = 0; s < c->n_series + c->n_ref; s++) {
        const int is_ref = s >= c->n_series;
        const char *name = is_ref ? c->ref[s - c->n_series].label : c->s[s].name;
        const char *col =
            is_ref ? (c->ref[s - c->n_series].color ? c->ref[s - c->n_series].color : "#555")
                   : (c->s[s].color ? c->s[s].color : chart_color(s));
        if (!name) continue;
        double w = 22 + 6.2 * (double)strlen(name) + 12;
        if (x + w > c->width - 10 && x > x0) x = x0, y += 14;
        if (!is_ref && c->s[s].kind == SERIES_POINTS)
            sb_appendf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>", x + 8, y - 4,
                       col);
        else
            sb_appendf(o,
                       "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"2\"%s/>",
                       x, x + 16, y - 4, y - 4, col,
                       is_ref || c->s[s].kind == SERIES_DASHED ? " stroke-dasharray=\"5 3\"" : "");
        sb_appendf(o, "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">", x + 20, y);
        html_escape(o, name);
        sb_appendf(o, "</text>");
        x += w;
    }
}

static int legend_rows(const Chart *c, double x0) {
    double x = x0;
    int rows = 1;
    for (int s = 0; s < c->n_series + c->n_ref; s++) {
        const char *name = s >= c->n_series ? c->ref[s - c->n_series].label : c->s[s].name;
        if (!name) continue;
        double w = 22 + 6.2 * (double)strlen(name) + 12;
        if (x + w > c->width - 10 && x > x0) x = x0, rows++;
        x += w;
    }
    return rows;
}

// One series: a path through its usable points (broken at unusable ones) and hoverable dots.
static int draw_series(StrBuf *o, const Chart *c, int s, const Axis *ax, const Axis *ay) {
    const ChartSeries *cs = &c->s[s];
    const char *col = cs->color ? cs->color : chart_color(s);
    int drawn = 0, pen = 0;
    if (cs->kind != SERIES_POINTS) {
        sb_appendf(o,
                   "<path class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s "
                   "d=\"",
                   col, cs->kind == SERIES_DASHED ? " stroke-dasharray=\"5 3\"" : "");
        for (int i = 0; i < cs->n; i++) {
            if (!usable(cs->x[i], c->logx) || !usable(cs->y[i], c->logy)) {
                pen = 0;
                continue;
            }
            sb_appendf(o, "%c%.1f %.1f", pen ? 'L' : 'M', ax_px(ax, cs->x[i]), ax_px(ay, cs->y[i]));
            pen = 1;
        }
        sb_appendf(o, "\"/>");
    }
    const int dots = cs->kind == SERIES_POINTS || cs->kind == SERIES_LINE_POINTS || cs->n <= 60;
    const int every = cs->n > 400 ? cs->n / 400 + 1 : 1;
    sb_appendf(o, "<g fill=\"%s\">", col);
    for (int i = 0; i < cs->n; i++) {
        if (!usable(cs->x[i], c->logx) || !usable(cs->y[i], c->logy)) continue;
        drawn++;
        if (i % every) continue;
        char xs[32], ys[32];
        fmt_num(xs, sizeof xs, cs->x[i]);
        snprintf(ys, sizeof ys, "%.6g", cs->y[i]);
        sb_appendf(o, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"%s\"><title>",
                   ax_px(ax, cs->x[i]), ax_px(ay, cs->y[i]), dots ? "2.6" : "4\" opacity=\"0");
        html_escape(o, cs->name ? cs->name : "");
        sb_appendf(o, ": ");
        html_escape(o, c->xlabel);
        sb_appendf(o, " %s, %s</title></circle>", xs, ys);
    }
    sb_appendf(o, "</g>");
    return drawn;
}

int chart_svg(StrBuf *o, const Chart *c) {
    Axis ax, ay;
    int dropped = 0;
    if (data_range(c, &ax, &ay, &dropped) == 0) {
        empty_note(o, c->id, c->title, "no data recorded for this chart in this run");
        return 0;
    }
    const double left = 64, right = 14, top = 12 + 14.0 * legend_rows(c, 64), bottom = 40;
    const double W = c->width, Hh = c->height + top - 26;
    ax.px0 = left, ax.px1 = W - right, ay.px0 = Hh - bottom, ay.px1 = top;
    figure_open(o, c->id, c->title, 0);
    sb_appendf(o, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\">", W, Hh);
    legend(o, c, left, 14);
    axis_ticks(o, &ay, 1, left, W - right);
    axis_ticks(o, &ax, 0, Hh - bottom, top);
    sb_appendf(o, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>",
               left, top, W - right - left, Hh - bottom - top);
    sb_appendf(o, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
               (left + W - right) / 2, Hh - 6);
    html_escape(o, c->xlabel);
    sb_appendf(o,
               "</text><text class=\"label\" transform=\"translate(13 %.1f) rotate(-90)\" "
               "text-anchor=\"middle\">",
               (top + Hh - bottom) / 2);
    html_escape(o, c->ylabel);
    sb_appendf(o, "</text>");
    sb_appendf(o,
               "<svg x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" overflow=\"hidden\" "
               "viewBox=\"%.1f %.1f %.1f %.1f\">",
               left, top, W - right - left, Hh - bottom - top, left, top, W - right - left,
               Hh - bottom - top);
    for (int m = 0; m < c->n_mark; m++) {
        if (!usable(c->mark[m].x, c->logx)) continue;
        double px = ax_px(&ax, c->mark[m].x);
        sb_appendf(o,
                   "<line class=\"mark\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                   "stroke=\"%s\"><title>",
                   px, px, top, Hh - bottom, c->mark[m].color ? c->mark[m].color : "#999");
        html_escape(o, c->mark[m].label);
        sb_appendf(o, "</title></line>");
    }
    for (int r = 0; r < c->n_ref; r++) {
        if (!usable(c->ref[r].value, c->logy)) continue;
        double py = ax_px(&ay, c->ref[r].value);
        sb_appendf(o,
                   "<line class=\"ref\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                   "stroke=\"%s\"><title>",
                   left, W - right, py, py, c->ref[r].color ? c->ref[r].color : "#555");
        html_escape(o, c->ref[r].label);
        sb_appendf(o, ": %.6g</title></line>", c->ref[r].value);
    }
    int drawn = 0;
    for (int s = 0; s < c->n_series; s++) drawn += draw_series(o, c, s, &ax, &ay);
    sb_appendf(o, "</svg></svg>");
    if (c->note || dropped) {
        sb_appendf(o, "<p class=\"note\">");
        if (c->note) html_escape(o, c->note);
        if (dropped)
            sb_appendf(o, "%s%d value%s &lt;= 0 not shown on the log axis.", c->note ? " " : "",
                       dropped, dropped == 1 ? "" : "s");
        sb_appendf(o, "</p>");
    }
    sb_appendf(o, "</figure>\n");
    return drawn;
}

// ---------------------------------------------------------------- heatmap, histogram

int heatmap_svg(StrBuf *o, const char *id, const char *title, const char *row_axis,
                const char *col_axis, const char *const *row_labels, const char *const *col_labels,
                const double *counts, int rows, int cols) {
    double total = 0;
    for (int i = 0; i < rows * cols; i++) total += counts[i];
    if (rows < 1 || cols < 1 || total <= 0) {
        empty_note(o, id, title, "no counts to show");
        return 0;
    }
    const double cell = cols <= 8 ? 56 : cols <= 16 ? 34 : 600.0 / cols, left = 120, top = 96;
    const double W = left + cell * cols + 16, H = top + cell * rows + 16;
    figure_open(o, id, title, 0);
    sb_appendf(o, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" style=\"max-width:%.0fpx\">", W, H,
               W * 1.3);
    sb_appendf(o, "<text class=\"label\" x=\"%.1f\" y=\"12\" text-anchor=\"middle\">",
               left + cell * cols / 2);
    html_escape(o, col_axis);
    sb_appendf(o, "</text><text class=\"label\" x=\"4\" y=\"%.1f\">", top - 8);
    html_escape(o, row_axis);
    sb_appendf(o, "</text>");
    for (int j = 0; j < cols; j++) {
        sb_appendf(o, "<text class=\"tick\" transform=\"translate(%.1f %.1f) rotate(-50)\">",
                   left + cell * (j + 0.5), top - 4);
        html_escape(o, col_labels[j]);
        sb_appendf(o, "</text>");
    }
    int nonempty = 0;
    for (int i = 0; i < rows; i++) {
        double row_sum = 0;
        for (int j = 0; j < cols; j++) row_sum += counts[i * cols + j];
        sb_appendf(o, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 6,
                   top + cell * (i + 0.5) + 4);
        html_escape(o, row_labels[i]);
        sb_appendf(o, "</text>");
        for (int j = 0; j < cols; j++) {
            const double n = counts[i * cols + j], share = row_sum > 0 ? n / row_sum : 0;
            nonempty += n > 0;
            const int shade = (int)lround(255 - 200 * share);
            sb_appendf(o,
                       "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                       "height=\"%.1f\" fill=\"rgb(%d,%d,255)\" stroke=\"#fff\"><title>",
                       left + cell * j, top + cell * i, cell, cell, shade, shade);
            html_escape(o, row_labels[i]);
            sb_appendf(o, " -&gt; ");
            html_escape(o, col_labels[j]);
            sb_appendf(o, ": %.0f of %.0f (%.1f%%)</title></rect>", n, row_sum, 100 * share);
            if (cell >= 30)
                sb_appendf(o,
                           "<text class=\"cellv%s\" x=\"%.1f\" y=\"%.1f\" "
                           "text-anchor=\"middle\">%.0f%%<tspan x=\"%.1f\" dy=\"11\">%.0f"
                           "</tspan></text>",
                           share > 0.55 ? " dark" : "", left + cell * (j + 0.5),
                           top + cell * (i + 0.5) - 1, 100 * share, left + cell * (j + 0.5), n);
        }
    }
    sb_appendf(o, "</svg><p class=\"note\">Each row sums to 100%% (share of that row's targets); "
                  "the small number is the count.</p></figure>\n");
    return nonempty;
}

int histogram_svg(StrBuf *o, const char *id, const char *title, const char *xlabel,
                  const double *values, int n, int n_bins, int logx, const ChartMark *marks,
                  int n_marks) {
    double lo = INFINITY, hi = -INFINITY;
    int used = 0;
    for (int i = 0; i < n; i++)
        if (usable(values[i], logx)) {
            double v = tr(values[i], logx);
            lo = fmin(lo, v), hi = fmax(hi, v), used++;
        }
    if (used == 0 || (n_bins < 1 && n_bins != HIST_INTEGER_BINS)) {
        empty_note(o, id, title, "no values to show");
        return 0;
    }
    if (n_bins == HIST_INTEGER_BINS) { // one bin per whole number, centred on it
        n_bins = (int)(hi - lo) + 1;
        lo -= 0.5, hi += 0.5;
    }
    if (!(hi > lo)) lo -= 0.5, hi += 0.5;
    double *count = xcalloc((size_t)n_bins, sizeof(double));
    double *xs = xmalloc(sizeof(double) * (2 * (size_t)n_bins + 2));
    double *ys = xmalloc(sizeof(double) * (2 * (size_t)n_bins + 2));
    for (int i = 0; i < n; i++)
        if (usable(values[i], logx)) {
            int b = (int)((tr(values[i], logx) - lo) / (hi - lo) * n_bins);
            count[b < 0 ? 0 : b >= n_bins ? n_bins - 1 : b]++;
        }
    // A step outline from 0 to 0: (edge, count) pairs, drawn as one line series.
    int k = 0, nonempty = 0;
    xs[k] = logx ? pow(10, lo) : lo, ys[k++] = 0;
    for (int b = 0; b < n_bins; b++) {
        double e0 = lo + (hi - lo) * b / n_bins, e1 = lo + (hi - lo) * (b + 1) / n_bins;
        xs[k] = logx ? pow(10, e0) : e0, ys[k++] = count[b];
        xs[k] = logx ? pow(10, e1) : e1, ys[k++] = count[b];
        nonempty += count[b] > 0;
    }
    xs[k] = logx ? pow(10, hi) : hi, ys[k++] = 0;
    Chart c;
    chart_init(&c, id, title, xlabel, "count");
    c.logx = logx, c.y_zero = 1;
    chart_add(&c, NULL, xs, ys, k, SERIES_LINE);
    char note[160] = "";
    for (int m = 0; m < n_marks; m++) {
        chart_mark(&c, marks[m].x, marks[m].label, marks[m].color);
        snprintf(note + strlen(note), sizeof note - strlen(note), "%sDotted line: %s = %.6g.",
                 m ? " " : "", marks[m].label ? marks[m].label : "mark", marks[m].x);
    }
    c.note = note[0] ? note : NULL;
    chart_svg(o, &c);
    free(count), free(xs), free(ys);
    return nonempty;
}
