// explain_summary.c: see explain_summary.h.
#include "explain_summary.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char EXPLAIN_EVENTS_HEADER[] = "user_hash,target_index,offset,group,attribution\n";
const char EXPLAIN_TARGETS_HEADER[] =
    "user_hash,target_index,target,predicted,p_predicted,f_input,f_baseline,attribution_sum,"
    "completeness_error,steps,delete_top_offset,delete_top_change,delete_random_offset,"
    "delete_random_change,sanity_spearman\n";

#define MAX_PRED 256 // predicted actions listed separately (the rest are not broken down)

typedef struct {
    int n_targets, W, G;
    double *cell;          // (W, G) sum |a| per (offset - 1, group)
    double *group, *off;   // (G), (W) sums of |per-target totals|
    double *pred_group;    // (MAX_PRED, G)
    int n_pred, pred_count[MAX_PRED];
    char pred_name[MAX_PRED][64];
    double *err, *rho;     // (n_targets) completeness errors, sanity correlations
    int n_rho, steps_n[32], steps_v[32], n_steps;
    int del_cases, del_wins, del_ties;
    double del_top, del_random;
} Acc;

// Splits a CSV line (no quoted fields: the files are ours) into at most n fields in place.
static int split_fields(char *line, char **f, int n) {
    int k = 0;
    for (char *p = line; k < n;) {
        f[k++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0, p = c + 1;
    }
    return k;
}

static int pred_index(Acc *a, const char *name) {
    for (int i = 0; i < a->n_pred; i++)
        if (strcmp(a->pred_name[i], name) == 0) return i;
    if (a->n_pred == MAX_PRED) return -1;
    snprintf(a->pred_name[a->n_pred], sizeof a->pred_name[0], "%s", name);
    return a->n_pred++;
}

static void add_target_row(Acc *a, char **f, int nf) {
    a->err[a->n_targets] = strtod(f[8], NULL);
    int steps = atoi(f[9]), s = 0;
    while (s < a->n_steps && a->steps_v[s] != steps) s++;
    if (s == a->n_steps && s < 32) a->steps_v[a->n_steps++] = steps, a->steps_n[s] = 0;
    if (s < 32) a->steps_n[s]++;
    if (f[11][0] && f[13][0]) {
        double top = strtod(f[11], NULL), rnd = strtod(f[13], NULL);
        a->del_cases++, a->del_wins += top > rnd, a->del_ties += top == rnd;
        a->del_top += top, a->del_random += rnd;
    }
    if (nf > 14 && f[14][0]) a->rho[a->n_rho++] = strtod(f[14], NULL);
}

// One target's block of events rows: totals per group and offset.
static void add_block(Acc *a, const double *cells, int n_off, int pred) {
    for (int g = 0; g < a->G; g++) {
        double tot = 0;
        for (int o = 0; o < n_off; o++) tot += cells[o * a->G + g];
        a->group[g] += fabs(tot);
        if (pred >= 0) a->pred_group[pred * a->G + g] += fabs(tot);
    }
    for (int o = 0; o < n_off; o++) {
        double tot = 0;
        for (int g = 0; g < a->G; g++) {
            tot += cells[o * a->G + g];
            a->cell[o * a->G + g] += fabs(cells[o * a->G + g]);
        }
        a->off[o] += fabs(tot);
    }
}

static int group_of(const FeatureGroups *fg, const char *name) {
    for (int g = 0; g < fg->n_groups; g++)
        if (strcmp(fg->name[g], name) == 0) return g;
    return -1;
}

// Reads both files in step: target row i owns the i-th block of events rows.
static int accumulate(const char *dir, const SummaryInfo *info, Acc *a, char *err, size_t cap) {
    char path_e[CFG_PATH_LEN + 32], path_t[CFG_PATH_LEN + 32];
    snprintf(path_e, sizeof path_e, "%s/events.csv", dir);
    snprintf(path_t, sizeof path_t, "%s/targets.csv", dir);
    size_t ne, nt;
    char *ev = read_file(path_e, &ne), *tg = read_file(path_t, &nt);
    if (!ev || !tg) {
        snprintf(err, cap, "%s: cannot read (%s)", ev ? path_t : path_e, strerror(errno));
        free(ev), free(tg);
        return -1;
    }
    int rows = 0;
    for (size_t i = 0; i < nt; i++) rows += tg[i] == '\n';
    a->err = xcalloc((size_t)rows + 1, sizeof(double));
    a->rho = xcalloc((size_t)rows + 1, sizeof(double));
    double *cells = xcalloc((size_t)a->W * a->G, sizeof(double));
    char *tline = strchr(tg, '\n'), *eline = strchr(ev, '\n'), *f[16], *g[6];
    int rc = 0;
    while (rc == 0 && tline && tline[1]) {
        char *t = tline + 1, *tend = strchr(t, '\n');
        if (!tend) break;
        *tend = 0, tline = tend;
        int nf = split_fields(t, f, 16);
        if (nf < 14) {
            snprintf(err, cap, "%s: short row %d", path_t, a->n_targets + 2);
            rc = -1;
            break;
        }
        memset(cells, 0, sizeof(double) * (size_t)a->W * a->G);
        int n_off = 0;
        char key[64];
        int klen = snprintf(key, sizeof key, "%s,%s,", f[0], f[1]);
        for (char *e = eline ? eline + 1 : NULL; e && *e;) { // this target's events rows
            char *eend = strchr(e, '\n');
            if (!eend || strncmp(e, key, (size_t)klen) != 0) break;
            *eend = 0;
            if (split_fields(e, g, 6) < 5) break;
            int o = atoi(g[2]), gi = group_of(info->fg, g[3]);
            if (o >= 1 && o <= a->W && gi >= 0) {
                cells[(o - 1) * a->G + gi] += strtod(g[4], NULL);
                if (o > n_off) n_off = o;
            }
            eline = eend, e = eend + 1;
        }
        add_target_row(a, f, nf);
        int p = pred_index(a, f[3]);
        add_block(a, cells, n_off, p);
        if (p >= 0) a->pred_count[p]++;
        a->n_targets++;
    }
    free(cells), free(ev), free(tg);
    return rc;
}

static int by_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double quantile(const double *sorted, int n, double q) {
    if (n == 0) return NAN;
    int i = (int)floor(q * (n - 1) + 0.5);
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static double share(double x, double total) {
    return total > 0 ? x / total : 0;
}

// JSON numbers: NaN (no cases) becomes null.
static void num(StrBuf *sb, double v) {
    if (isfinite(v))
        sb_appendf(sb, "%.6g", v);
    else
        sb_appendf(sb, "null");
}

// A JSON string member's value (quotes, backslashes and control characters escaped).
static void json_str(StrBuf *sb, const char *s) {
    sb_appendf(sb, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_appendf(sb, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            sb_appendf(sb, "\\u%04x", (unsigned char)*s);
        else
            sb_append(sb, s, 1);
    }
    sb_appendf(sb, "\"");
}

static void json_groups(StrBuf *sb, const Acc *a, const FeatureGroups *fg, const double *v) {
    double tot = 0;
    for (int g = 0; g < a->G; g++) tot += v[g];
    sb_appendf(sb, "{");
    for (int g = 0; g < a->G; g++) {
        sb_appendf(sb, "%s", g ? "," : "");
        json_str(sb, fg->name[g]);
        sb_appendf(sb, ":");
        num(sb, share(v[g], tot));
    }
    sb_appendf(sb, "}");
}

typedef struct {
    double err_mean, err_med, err_p90, err_p99, err_max, within;
    double rho_mean, rho_med;
    int top_cell[10], n_top;
    double cell_total, off_total, group_total;
} Figures;

static void figures(Acc *a, Figures *fi) {
    memset(fi, 0, sizeof *fi);
    for (int i = 1; i < a->n_steps; i++) // steps used, ascending
        for (int j = i; j > 0 && a->steps_v[j - 1] > a->steps_v[j]; j--) {
            int v = a->steps_v[j], c = a->steps_n[j];
            a->steps_v[j] = a->steps_v[j - 1], a->steps_n[j] = a->steps_n[j - 1];
            a->steps_v[j - 1] = v, a->steps_n[j - 1] = c;
        }
    int n = a->n_targets;
    qsort(a->err, (size_t)n, sizeof(double), by_double);
    for (int i = 0; i < n; i++) fi->err_mean += a->err[i] / n, fi->within += a->err[i] <= ATTR_TOLERANCE;
    fi->within = n ? fi->within / n : NAN;
    if (!n) fi->err_mean = NAN;
    fi->err_med = quantile(a->err, n, 0.5), fi->err_p90 = quantile(a->err, n, 0.9);
    fi->err_p99 = quantile(a->err, n, 0.99), fi->err_max = n ? a->err[n - 1] : NAN;
    qsort(a->rho, (size_t)a->n_rho, sizeof(double), by_double);
    fi->rho_mean = a->n_rho ? 0 : NAN;
    for (int i = 0; i < a->n_rho; i++) fi->rho_mean += a->rho[i] / a->n_rho;
    fi->rho_med = quantile(a->rho, a->n_rho, 0.5);
    const int cells = a->W * a->G;
    for (int c = 0; c < cells; c++) fi->cell_total += a->cell[c];
    for (int o = 0; o < a->W; o++) fi->off_total += a->off[o];
    for (int g = 0; g < a->G; g++) fi->group_total += a->group[g];
    for (int k = 0; k < 10 && k < cells; k++) { // the ten largest cells
        int best = -1;
        for (int c = 0; c < cells; c++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= fi->top_cell[j] == c;
            if (!taken && (best < 0 || a->cell[c] > a->cell[best])) best = c;
        }
        fi->top_cell[fi->n_top++] = best;
    }
}

static void summary_json(StrBuf *sb, const Acc *a, const Figures *fi, const SummaryInfo *in) {
    const FeatureGroups *fg = in->fg;
    sb_appendf(sb, "{\"targets\":%d,\"target\":", a->n_targets);
    json_str(sb, in->target);
    sb_appendf(sb, ",\"source\":");
    json_str(sb, in->source);
    sb_appendf(sb, ",\"steps\":%d,\"max_steps\":%d,\"window\":%d,", in->steps, in->max_steps,
               in->window);
    sb_appendf(sb, "\"baseline\":\"embedding mean over known values; 0 for every dense feature\",");
    sb_appendf(sb, "\"group_shares\":");
    json_groups(sb, a, fg, a->group);
    sb_appendf(sb, ",\"by_predicted_action\":{");
    for (int p = 0; p < a->n_pred; p++) {
        sb_appendf(sb, "%s", p ? "," : "");
        json_str(sb, a->pred_name[p]);
        sb_appendf(sb, ":{\"targets\":%d,\"group_shares\":", a->pred_count[p]);
        json_groups(sb, a, fg, a->pred_group + (size_t)p * a->G);
        sb_appendf(sb, "}");
    }
    sb_appendf(sb, "},\"offset_shares\":[");
    for (int o = 0; o < a->W; o++) {
        sb_appendf(sb, "%s", o ? "," : "");
        num(sb, share(a->off[o], fi->off_total));
    }
    sb_appendf(sb, "],\"top_cells\":[");
    for (int k = 0; k < fi->n_top; k++) {
        int c = fi->top_cell[k];
        sb_appendf(sb, "%s{\"offset\":%d,\"group\":", k ? "," : "", c / a->G + 1);
        json_str(sb, fg->name[c % a->G]);
        sb_appendf(sb, ",\"share\":");
        num(sb, share(a->cell[c], fi->cell_total));
        sb_appendf(sb, "}");
    }
    sb_appendf(sb, "],\"completeness\":{\"mean\":");
    num(sb, fi->err_mean);
    sb_appendf(sb, ",\"median\":"), num(sb, fi->err_med);
    sb_appendf(sb, ",\"p90\":"), num(sb, fi->err_p90);
    sb_appendf(sb, ",\"p99\":"), num(sb, fi->err_p99);
    sb_appendf(sb, ",\"max\":"), num(sb, fi->err_max);
    sb_appendf(sb, ",\"within_1pct\":"), num(sb, fi->within);
    sb_appendf(sb, ",\"steps_used\":{");
    for (int s = 0; s < a->n_steps; s++)
        sb_appendf(sb, "%s\"%d\":%d", s ? "," : "", a->steps_v[s], a->steps_n[s]);
    sb_appendf(sb, "}},\"deletion\":{\"cases\":%d,\"top_beats_random\":", a->del_cases);
    num(sb, a->del_cases ? (double)a->del_wins / a->del_cases : NAN);
    sb_appendf(sb, ",\"ties\":%d,\"mean_change_top\":", a->del_ties);
    num(sb, a->del_cases ? a->del_top / a->del_cases : NAN);
    sb_appendf(sb, ",\"mean_change_random\":");
    num(sb, a->del_cases ? a->del_random / a->del_cases : NAN);
    sb_appendf(sb, "},\"sanity\":");
    if (a->n_rho) {
        sb_appendf(sb, "{\"targets\":%d,\"spearman_mean\":", a->n_rho);
        num(sb, fi->rho_mean);
        sb_appendf(sb, ",\"spearman_median\":"), num(sb, fi->rho_med);
        sb_appendf(sb, "}");
    } else {
        sb_appendf(sb, "null");
    }
    sb_appendf(sb, "}\n");
}

static void md_group_table(StrBuf *sb, const Acc *a, const FeatureGroups *fg) {
    sb_appendf(sb, "| predicted | targets |");
    for (int g = 0; g < a->G; g++) sb_appendf(sb, " %s |", fg->name[g]);
    sb_appendf(sb, "\n| --- | --- |");
    for (int g = 0; g < a->G; g++) sb_appendf(sb, " --- |");
    sb_appendf(sb, "\n| (all) | %d |", a->n_targets);
    double tot = 0;
    for (int g = 0; g < a->G; g++) tot += a->group[g];
    for (int g = 0; g < a->G; g++) sb_appendf(sb, " %.1f%% |", 100 * share(a->group[g], tot));
    for (int p = 0; p < a->n_pred; p++) {
        const double *v = a->pred_group + (size_t)p * a->G;
        double t = 0;
        for (int g = 0; g < a->G; g++) t += v[g];
        sb_appendf(sb, "\n| %s | %d |", a->pred_name[p], a->pred_count[p]);
        for (int g = 0; g < a->G; g++) sb_appendf(sb, " %.1f%% |", 100 * share(v[g], t));
    }
    sb_appendf(sb, "\n\n");
}

static void summary_md(StrBuf *sb, const Acc *a, const Figures *fi, const SummaryInfo *in) {
    const FeatureGroups *fg = in->fg;
    sb_appendf(sb, "# Explanations: %s of %s\n\n", in->target, in->source);
    if (strcmp(in->target, "change") == 0) // run/explain_change.h: no gradients
        sb_appendf(sb, "%d users flagged for a change point: per event of the segment that "
                       "explains each (up to %d events) and part, what it added to the "
                       "segment's ratio (nats; \"predicted\" is the reason). Shares are of sum "
                       "|attribution|.\n\n",
                   a->n_targets, in->window);
    else
        sb_appendf(sb, "%d predictions explained by integrated gradients (%d steps, doubled up to "
                       "%d where the completeness error exceeded 1%%) over windows of up to %d "
                       "past events. Baseline: each embedding's mean over its known values, 0 for "
                       "every dense feature. Shares are of sum |attribution|.\n\n",
                   a->n_targets, in->steps, in->max_steps, in->window);
    sb_appendf(sb, "## Feature groups\n\n");
    md_group_table(sb, a, fg);
    sb_appendf(sb, "## Strongest (offset, group) cells\n\n| offset | group | share |\n"
                   "| --- | --- | --- |\n");
    for (int k = 0; k < fi->n_top; k++) {
        int c = fi->top_cell[k];
        sb_appendf(sb, "| %d | %s | %.1f%% |\n", c / a->G + 1, fg->name[c % a->G],
                   100 * share(a->cell[c], fi->cell_total));
    }
    sb_appendf(sb, "\n## How far back influence reaches\n\n| offset | share | cumulative |\n"
                   "| --- | --- | --- |\n");
    double cum = 0;
    for (int o = 0; o < a->W; o++) {
        cum += share(a->off[o], fi->off_total);
        if (o < 10 || o == a->W - 1)
            sb_appendf(sb, "| %d | %.1f%% | %.1f%% |\n", o + 1,
                       100 * share(a->off[o], fi->off_total), 100 * cum);
    }
    sb_appendf(sb, "\n## Completeness (|sum of attributions - (f(x) - f(baseline))|, relative)\n\n"
                   "mean %.2e, median %.2e, p90 %.2e, p99 %.2e, max %.2e; within 1%%: %.1f%% of "
                   "targets. Steps used:",
               fi->err_mean, fi->err_med, fi->err_p90, fi->err_p99, fi->err_max, 100 * fi->within);
    for (int s = 0; s < a->n_steps; s++) sb_appendf(sb, " %d (%d)", a->steps_v[s], a->steps_n[s]);
    sb_appendf(sb, ".\n\n## Deletion check\n\n");
    if (a->del_cases)
        sb_appendf(sb, "Removing the top-attributed past event changed the output more than "
                       "removing a random other one in %.1f%% of %d cases (mean change %.4g vs "
                       "%.4g).\n\n",
                   100.0 * a->del_wins / a->del_cases, a->del_cases, a->del_top / a->del_cases,
                   a->del_random / a->del_cases);
    else
        sb_appendf(sb, "No window had two events or more.\n\n");
    if (a->n_rho)
        sb_appendf(sb, "## Sanity (trained vs randomly initialised model)\n\nSpearman rank "
                       "correlation of |attributions| per target: mean %.3f, median %.3f over %d "
                       "targets (1 would mean explanations that ignore what the model learned).\n",
                   fi->rho_mean, fi->rho_med, a->n_rho);
}

int explain_write_summary(const char *dir, const SummaryInfo *info, char *err, size_t cap) {
    Acc a;
    memset(&a, 0, sizeof a);
    a.W = info->window, a.G = info->fg->n_groups;
    a.cell = xcalloc((size_t)a.W * a.G, sizeof(double));
    a.group = xcalloc((size_t)a.G, sizeof(double));
    a.off = xcalloc((size_t)a.W, sizeof(double));
    a.pred_group = xcalloc((size_t)MAX_PRED * a.G, sizeof(double));
    int rc = accumulate(dir, info, &a, err, cap);
    if (rc == 0) {
        Figures fi;
        figures(&a, &fi);
        StrBuf js = {0}, md = {0};
        summary_json(&js, &a, &fi, info);
        summary_md(&md, &a, &fi, info);
        char path[CFG_PATH_LEN + 32];
        snprintf(path, sizeof path, "%s/summary.json", dir);
        rc = write_file_atomic(path, js.data, js.len, err, cap);
        snprintf(path, sizeof path, "%s/summary.md", dir);
        if (rc == 0) rc = write_file_atomic(path, md.data, md.len, err, cap);
        if (rc == 0) {
            printf("  completeness error: median %.2e, max %.2e, within 1%%: %.1f%%\n",
                   fi.err_med, fi.err_max, 100 * fi.within);
            if (a.del_cases)
                printf("  deletion check: top event beats a random one in %.1f%% of %d cases\n",
                       100.0 * a.del_wins / a.del_cases, a.del_cases);
            if (a.n_rho)
                printf("  sanity: Spearman trained vs random init: mean %.3f\n", fi.rho_mean);
        }
        sb_free(&js), sb_free(&md);
    }
    free(a.cell), free(a.group), free(a.off), free(a.pred_group), free(a.err), free(a.rho);
    return rc;
}
