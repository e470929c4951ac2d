// report_dir.c: the page of another command's output directory (segment, score, explain, ...),
// read generically: summary.json and every other *.json as a table (nested keys dotted;
// arrays of numbers as histograms), and every *.csv with its row count, its first rows and a
// histogram of each numeric column (one bin per value for small integer ranges: segment
// sizes). A numeric "threshold" in summary.json is marked on the histogram of a column named
// "score" (`trainer score` writes users.csv with one).
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"
#include "json.h"
#include "report.h"
#include "svg.h"

#define MAX_COLS  64
#define SHOW_ROWS 15
#define MAX_FILES 32

// Rows of (dotted key, value); arrays of objects by index (the first 50), arrays of numbers
// inline (up to 12) or as a histogram into hist.
static void flatten(StrBuf *o, const JsonNode *n, const char *prefix, StrBuf *hist) {
    int index = 0;
    for (const JsonNode *c = n->child; c; c = c->next, index++) {
        char key[512];
        if (n->type == JSON_OBJECT)
            snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", c->key);
        else
            snprintf(key, sizeof key, "%s[%d]", prefix, index);
        if (c->type == JSON_OBJECT ||
            (c->type == JSON_ARRAY && c->child && c->child->type == JSON_OBJECT)) {
            if (index < 50) flatten(o, c, key, hist);
            continue;
        }
        if (index >= 50) continue;
        sb_appendf(o, "<tr><th>");
        html_escape(o, key);
        sb_appendf(o, "</th><td>");
        if (c->type == JSON_NUMBER)
            sb_appendf(o, "%.6g", c->number);
        else if (c->type == JSON_STRING)
            html_escape(o, c->string);
        else if (c->type == JSON_BOOL)
            sb_appendf(o, "%s", c->number ? "true" : "false");
        else if (c->type == JSON_NULL)
            sb_appendf(o, "null");
        else {
            int numbers = 0;
            for (const JsonNode *e = c->child; e; e = e->next) numbers += e->type == JSON_NUMBER;
            sb_appendf(o, "array of %d", c->n_children);
            if (numbers == c->n_children && numbers > 0) {
                double *v = xmalloc(sizeof(double) * (size_t)numbers);
                int i = 0;
                for (const JsonNode *e = c->child; e; e = e->next) v[i++] = e->number;
                if (numbers <= 12)
                    for (i = 0; i < numbers; i++) sb_appendf(o, "%s%.6g", i ? ", " : ": ", v[i]);
                else
                    histogram_svg(hist, key, key, key, v, numbers, 30, 0, NULL, 0);
                free(v);
            } else if (c->child && c->child->type == JSON_STRING) {
                int i = 0;
                for (const JsonNode *e = c->child; e && i < 12; e = e->next, i++) {
                    sb_appendf(o, "%s", i ? ", " : ": ");
                    if (e->type == JSON_STRING) html_escape(o, e->string);
                }
            }
        }
        sb_appendf(o, "</td></tr>");
    }
}

// Splits one CSV line in place (double quotes honoured); returns the field count.
static int split_csv(char *line, char **f, int cap) {
    int n = 0;
    for (char *p = line; n < cap;) {
        if (*p == '"') {
            char *w = ++p;
            f[n++] = w;
            for (; *p && !(*p == '"' && p[1] != '"'); p++) *w++ = *p == '"' ? *++p : *p;
            if (*p == '"') p++;
            *w = '\0';
            if (*p == ',')
                *p++ = '\0';
            else
                break;
        } else {
            f[n++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = '\0', p = c + 1;
        }
    }
    return n;
}

static void csv_section(StrBuf *o, const char *dir, const char *name, double threshold) {
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n;
    char *text = read_file(path, &n);
    page_section(o, name, name);
    if (!text) {
        page_note(o, "warn", "cannot read this file");
        return;
    }
    char *save, *line = strtok_r(text, "\r\n", &save);
    char *hdr[MAX_COLS];
    int nh = line ? split_csv(line, hdr, MAX_COLS) : 0;
    double *vals[MAX_COLS] = {0};
    int numeric[MAX_COLS], rows = 0, cap = 0;
    for (int k = 0; k < nh; k++) numeric[k] = 1;
    StrBuf table = {0};
    sb_appendf(&table, "<table><tr>");
    for (int k = 0; k < nh; k++)
        sb_appendf(&table, "<th>"), html_escape(&table, hdr[k]), sb_appendf(&table, "</th>");
    sb_appendf(&table, "</tr>");
    for (line = strtok_r(NULL, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        char *f[MAX_COLS];
        int nf = split_csv(line, f, MAX_COLS);
        if (rows == cap) {
            cap = cap ? 2 * cap : 1024;
            for (int k = 0; k < nh; k++) vals[k] = xrealloc(vals[k], sizeof(double) * (size_t)cap);
        }
        if (rows < SHOW_ROWS) sb_appendf(&table, "<tr>");
        for (int k = 0; k < nh; k++) {
            char *end;
            const char *s = k < nf ? f[k] : "";
            double v = strtod(s, &end);
            if (!s[0] || *end) numeric[k] = 0;
            vals[k][rows] = v;
            if (rows < SHOW_ROWS)
                sb_appendf(&table, "<td>"), html_escape(&table, s), sb_appendf(&table, "</td>");
        }
        if (rows < SHOW_ROWS) sb_appendf(&table, "</tr>");
        rows++;
    }
    sb_appendf(&table, "</table>");
    char m[200];
    snprintf(m, sizeof m, "%d rows, %d columns; the first %d rows:", rows, nh,
             rows < SHOW_ROWS ? rows : SHOW_ROWS);
    page_note(o, "note", m);
    sb_append(o, table.data, table.len);
    sb_free(&table);
    sb_appendf(o, "<div class=\"grid2\">");
    for (int k = 0, shown = 0; k < nh && shown < 12 && rows > 0; k++) {
        if (!numeric[k]) continue;
        char id[300], title[300];
        snprintf(id, sizeof id, "%s-%s", name, hdr[k]);
        snprintf(title, sizeof title, "%s: distribution of %s", name, hdr[k]);
        ChartMark mk = {threshold, "threshold (summary.json)", "#d62728"};
        int mark = strcmp(hdr[k], "score") == 0 && isfinite(threshold);
        double lo = INFINITY, hi = -INFINITY;
        int integral = 1;
        for (int r = 0; r < rows; r++)
            lo = fmin(lo, vals[k][r]), hi = fmax(hi, vals[k][r]),
            integral &= vals[k][r] == floor(vals[k][r]);
        const int bins = integral && hi - lo < 40 ? HIST_INTEGER_BINS : 30;
        histogram_svg(o, id, title, hdr[k], vals[k], rows, bins, 0, mark ? &mk : NULL, mark);
        shown++;
    }
    sb_appendf(o, "</div>");
    for (int k = 0; k < nh; k++) free(vals[k]);
    free(text);
}

// A JSON document as a table of its flattened keys, then the histograms found in it.
static void json_table(StrBuf *o, const JsonNode *root) {
    StrBuf hist = {0};
    sb_appendf(o, "<table>");
    flatten(o, root, "", &hist);
    sb_appendf(o, "</table><div class=\"grid2\">");
    if (hist.len) sb_append(o, hist.data, hist.len);
    sb_appendf(o, "</div>");
    sb_free(&hist);
}

// Another JSON file of the directory (profiles.json, ...): the same table.
static void json_section(StrBuf *o, const char *dir, const char *name) {
    char path[1400], jerr[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n;
    char *text = read_file(path, &n);
    page_section(o, name, name);
    JsonDoc doc;
    if (!text || json_parse(&doc, text, n, jerr, sizeof jerr) != 0) {
        char m[300];
        snprintf(m, sizeof m, "%s: %s", name, text ? jerr : "cannot read");
        page_note(o, "warn", m);
        free(text);
        return;
    }
    if (doc.root->type == JSON_OBJECT || doc.root->type == JSON_ARRAY) json_table(o, doc.root);
    json_free(&doc);
    free(text);
}

static int by_name(const void *a, const void *b) {
    return strcmp((const char *)a, (const char *)b);
}

int report_outputs(StrBuf *o, const char *dir, char *err, size_t errlen) {
    char path[1400];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    size_t n;
    char *text = read_file(path, &n), jerr[128];
    static char files[MAX_FILES][256], jsons[MAX_FILES][256];
    int n_files = 0, n_jsons = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && len < 256 && strcmp(e->d_name + len - 4, ".csv") == 0 && n_files < MAX_FILES)
            snprintf(files[n_files++], 256, "%s", e->d_name);
        if (len > 5 && len < 256 && strcmp(e->d_name + len - 5, ".json") == 0 &&
            strcmp(e->d_name, "summary.json") != 0 && n_jsons < MAX_FILES)
            snprintf(jsons[n_jsons++], 256, "%s", e->d_name);
    }
    if (d) closedir(d);
    if (!text && n_files == 0 && n_jsons == 0) {
        snprintf(err, errlen,
                 "%s: not a run directory (log.jsonl), a sweep (plan.txt) or an "
                 "output directory (summary.json, *.json or *.csv)",
                 dir);
        return -1;
    }
    qsort(files, (size_t)n_files, sizeof files[0], by_name);
    qsort(jsons, (size_t)n_jsons, sizeof jsons[0], by_name);
    JsonDoc doc;
    int have_json = text && json_parse(&doc, text, n, jerr, sizeof jerr) == 0;
    const char *command = have_json ? json_str(doc.root, "command") : NULL;
    char title[1300], sub[200];
    snprintf(title, sizeof title, "Output %s", dir);
    snprintf(sub, sizeof sub, "%s%s%s%d JSON and %d CSV file%s",
             command ? "written by `trainer " : "", command ? command : "", command ? "`; " : "",
             n_jsons + (text != NULL), n_files, n_files == 1 ? "" : "s");
    page_begin(o, title, sub);
    double threshold = NAN;
    page_section(o, "summary", "summary.json");
    if (have_json && doc.root->type == JSON_OBJECT) {
        threshold = json_num(doc.root, "threshold", NAN);
        json_table(o, doc.root);
    } else if (text) {
        char m[300];
        snprintf(m, sizeof m, "summary.json does not parse as a JSON object (%s)",
                 have_json ? "not an object" : jerr);
        page_note(o, "warn", m);
    } else {
        page_note(o, "note", "No summary.json here.");
    }
    if (have_json) json_free(&doc);
    free(text);
    for (int i = 0; i < n_jsons; i++) json_section(o, dir, jsons[i]);
    for (int i = 0; i < n_files; i++) csv_section(o, dir, files[i], threshold);
    page_end(o);
    return 0;
}
