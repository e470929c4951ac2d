// svg.h: charts as inline SVG text, drawn here (no library, no script needed to read them):
// line/point charts with axes, ticks, units, a legend, horizontal reference lines and vertical
// marks; heatmaps with counts; histograms. Output is appended to a StrBuf, meant to sit inside
// an HTML page (html.h); every drawn point carries a <title> so hovering shows its value.
//
// A chart with no finite data renders as a framed note saying so (class "chart empty"), so a
// page never shows a blank box. Log axes drop values <= 0 (and say how many).
#pragma once
#include "util.h"

#define CHART_MAX_SERIES 24
#define CHART_MAX_REFS   8
#define CHART_MAX_MARKS  64

enum { SERIES_LINE, SERIES_POINTS, SERIES_LINE_POINTS, SERIES_DASHED };

typedef struct {
    const char *name;
    const double *x, *y;
    int n;
    int kind;
    const char *color; // NULL: from the palette
} ChartSeries;

typedef struct {
    double value;
    const char *label, *color;
} ChartRef; // horizontal line at y = value

typedef struct {
    double x;
    const char *label, *color;
} ChartMark; // vertical line at x

typedef struct {
    const char *id, *title, *xlabel, *ylabel, *note; // note: a line under the chart (or NULL)
    int logx, logy;
    int width, height; // SVG user units (default 640 x 300)
    int y_zero;        // include y = 0
    int square;        // equal fixed ranges given below (calibration charts)
    double xmin, xmax, ymin, ymax;
    int fixed_range; // use the range above instead of the data's
    int x_integer;   // x ticks at whole numbers only (ranks, counts)
    ChartSeries s[CHART_MAX_SERIES];
    int n_series;
    ChartRef ref[CHART_MAX_REFS];
    int n_ref;
    ChartMark mark[CHART_MAX_MARKS];
    int n_mark;
} Chart;

void chart_init(Chart *c, const char *id, const char *title, const char *xlabel,
                const char *ylabel);
void chart_add(Chart *c, const char *name, const double *x, const double *y, int n, int kind);
void chart_ref(Chart *c, double y, const char *label, const char *color);
void chart_mark(Chart *c, double x, const char *label, const char *color);
// Appends <figure class="chart">...</figure>. Returns the number of data points drawn.
int chart_svg(StrBuf *out, const Chart *c);

// Row-normalised heatmap of counts (rows x cols, row-major); each cell shows the row share
// and the count. Returns the number of non-empty cells.
int heatmap_svg(StrBuf *out, const char *id, const char *title, const char *row_axis,
                const char *col_axis, const char *const *row_labels, const char *const *col_labels,
                const double *counts, int rows, int cols);

// Histogram of values over n_bins equal bins (log10 bins when logx; HIST_INTEGER_BINS: one
// bin per whole number, for counts per id), with optional vertical marks. Returns the number
// of non-empty bins.
#define HIST_INTEGER_BINS (-1)
int histogram_svg(StrBuf *out, const char *id, const char *title, const char *xlabel,
                  const double *values, int n, int n_bins, int logx, const ChartMark *marks,
                  int n_marks);

// Text for HTML/SVG: & < > " escaped.
void html_escape(StrBuf *out, const char *s);
const char *chart_color(int i); // the palette
