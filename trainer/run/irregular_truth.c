// irregular_truth.c: see irregular_truth.h.
#include "irregular_truth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "surprise.h"
#include "synth_irregular.h"
#include "userkey.h"

typedef struct {
    uint64_t hash;
    int kind;
    long long start;
} TruthRow;

typedef struct {
    int kind, flagged, reason;
    long long start, peak_end, n_events;
    double score, base;
} Scored;

static int by_hash(const void *a, const void *b) {
    uint64_t x = ((const TruthRow *)a)->hash, y = ((const TruthRow *)b)->hash;
    return x < y ? -1 : x > y;
}
static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double auroc(double *pos, long long n_pos, double *neg, long long n_neg) {
    if (n_pos == 0 || n_neg == 0) return NAN;
    qsort(pos, (size_t)n_pos, sizeof(double), by_double);
    qsort(neg, (size_t)n_neg, sizeof(double), by_double);
    // For each positive: negatives below it, plus half of those equal.
    double wins = 0;
    long long lo = 0, hi = 0;
    for (long long i = 0; i < n_pos; i++) {
        while (lo < n_neg && neg[lo] < pos[i]) lo++;
        if (hi < lo) hi = lo;
        while (hi < n_neg && neg[hi] <= pos[i]) hi++;
        wins += (double)lo + 0.5 * (double)(hi - lo);
    }
    return wins / ((double)n_pos * (double)n_neg);
}

static TruthRow *read_truth(const char *path, const Config *cfg, long long *n_out) {
    char *text = read_file(path, NULL);
    if (!text) {
        warnf("%s: cannot read (%s)", path, strerror(errno));
        return NULL;
    }
    UserKey key;
    userkey_load(cfg, &key);
    TruthRow *rows = NULL;
    long long n = 0, cap = 0, line_no = 1;
    char *save = NULL, *line = strtok_r(text, "\n", &save); // header
    while ((line = strtok_r(NULL, "\n", &save))) {
        line_no++;
        char *f[5];
        int nf = 0;
        for (char *p = line; nf < 5; p++) {
            f[nf++] = p;
            p = strchr(p, ',');
            if (!p) break;
            *p = 0;
        }
        if (nf != 5) {
            warnf("%s:%lld: expected user,segment,bayes_segment,irregular,irregular_start", path,
                  line_no);
            continue;
        }
        int kind = IRR_NONE;
        for (int k = 1; k < IRR_N_KINDS; k++)
            if (strcmp(f[3], IRREGULAR_KIND_NAMES[k]) == 0) kind = k;
        // The user's hash as --input (and serve) name it, and as the shards of given split
        // files do (ingest.c: mixed with the split), so every output can be matched.
        if (n + 4 > cap) rows = xrealloc(rows, sizeof(TruthRow) * (size_t)(cap = cap ? 2 * cap : 1024));
        uint64_t h = userkey_hash_id(&key, f[0], strlen(f[0]));
        rows[n++] = (TruthRow){h, kind, atoll(f[4])};
        for (int split = 0; split < 3; split++)
            rows[n++] = (TruthRow){userkey_split_hash(h, split), kind, atoll(f[4])};
    }
    free(text);
    qsort(rows, (size_t)n, sizeof(TruthRow), by_hash);
    *n_out = n;
    return rows;
}

static Scored *read_users(const char *path, const TruthRow *truth, long long n_truth,
                          long long *n_out, long long *unknown) {
    char *text = read_file(path, NULL);
    if (!text) {
        warnf("%s: cannot read (%s)", path, strerror(errno));
        return NULL;
    }
    Scored *out = NULL;
    long long n = 0, cap = 0;
    *unknown = 0;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    while ((line = strtok_r(NULL, "\n", &save))) {
        char *f[12];
        int nf = 0;
        for (char *p = line; nf < 12; p++) {
            f[nf++] = p;
            p = strchr(p, ',');
            if (!p) break;
            *p = 0;
        }
        if (nf != 12) continue;
        TruthRow key = {strtoull(f[0], NULL, 16), 0, 0};
        const TruthRow *t = bsearch(&key, truth, (size_t)n_truth, sizeof key, by_hash);
        if (!t) {
            ++*unknown;
            continue;
        }
        int reason = 0;
        for (int p = 0; p < N_PARTS; p++) {
            size_t len = strlen(PART_NAMES[p]);
            if (strncmp(f[3], PART_NAMES[p], len) == 0 && (f[3][len] == 0 || f[3][len] == '-'))
                reason = p;
        }
        if (n == cap) out = xrealloc(out, sizeof(Scored) * (size_t)(cap = cap ? 2 * cap : 1024));
        out[n++] = (Scored){t->kind, atoi(f[2]), reason, t->start, atoll(f[5]), atoll(f[7]),
                            strtod(f[1], NULL), strtod(f[11], NULL)};
    }
    free(text);
    *n_out = n;
    if (!out) warnf("%s: no user of it is in the truth file", path);
    return out;
}

// A JSON number, or null for NaN (a kind with no users, no flagged users).
static const char *jnum(double v, char *buf) {
    if (isnan(v)) return "null";
    snprintf(buf, 32, "%.6f", v);
    return buf;
}

static int by_score_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

// Precision of the top k users by the score at offset `field` (0 model, 1 baseline).
static double top_precision(const Scored *u, long long n, long long k, int baseline,
                            long long *hits) {
    double *pairs = xmalloc(sizeof(double) * 2 * (size_t)n);
    for (long long i = 0; i < n; i++)
        pairs[2 * i] = baseline ? u[i].base : u[i].score, pairs[2 * i + 1] = u[i].kind != IRR_NONE;
    qsort(pairs, (size_t)n, 2 * sizeof(double), by_score_desc);
    *hits = 0;
    for (long long i = 0; i < k && i < n; i++) *hits += pairs[2 * i + 1] > 0;
    free(pairs);
    return k > 0 ? (double)*hits / (double)k : NAN;
}

static int by_pair(const void *a, const void *b) {
    const double *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

// Ranks (1..n, ties averaged) of v[2 i] into v[2 i + 1]'s slot order: Spearman's helper.
static void ranks(const double *v, long long n, double *rank) {
    double *pairs = xmalloc(sizeof(double) * 2 * (size_t)n);
    for (long long i = 0; i < n; i++) pairs[2 * i] = v[i], pairs[2 * i + 1] = (double)i;
    qsort(pairs, (size_t)n, 2 * sizeof(double), by_pair);
    for (long long i = 0; i < n;) {
        long long j = i;
        while (j < n && pairs[2 * j] == pairs[2 * i]) j++;
        for (long long k = i; k < j; k++) rank[(long long)pairs[2 * k + 1]] = 0.5 * (double)(i + j + 1);
        i = j;
    }
    free(pairs);
}

// Length robustness among the normal users: Spearman correlation of score and history length,
// and the share flagged among the shorter and the longer half.
static void length_report(const Scored *u, long long n, StrBuf *json) {
    double *sc = xmalloc(sizeof(double) * (size_t)(n + 1)), *len = xmalloc(sizeof(double) * (size_t)(n + 1));
    long long m = 0;
    for (long long i = 0; i < n; i++)
        if (u[i].kind == IRR_NONE) sc[m] = u[i].score, len[m++] = (double)u[i].n_events;
    if (m < 4) {
        free(sc), free(len);
        return;
    }
    double *rs = xmalloc(sizeof(double) * (size_t)m), *rl = xmalloc(sizeof(double) * (size_t)m);
    ranks(sc, m, rs), ranks(len, m, rl);
    double mean = 0.5 * (double)(m + 1), sxy = 0, sxx = 0, syy = 0;
    for (long long i = 0; i < m; i++)
        sxy += (rs[i] - mean) * (rl[i] - mean), sxx += (rs[i] - mean) * (rs[i] - mean),
            syy += (rl[i] - mean) * (rl[i] - mean);
    double rho = sxy / sqrt(sxx * syy);
    double *sorted = xmalloc(sizeof(double) * (size_t)m);
    memcpy(sorted, len, sizeof(double) * (size_t)m);
    qsort(sorted, (size_t)m, sizeof(double), by_double);
    double median = sorted[m / 2];
    long long nf[2] = {0}, nt[2] = {0};
    for (long long i = 0, j = 0; i < n; i++)
        if (u[i].kind == IRR_NONE) {
            int h = len[j++] >= median;
            nt[h]++, nf[h] += u[i].flagged;
        }
    sb_appendf(json, ", \"normal_length\": {\"spearman_score_vs_events\": %.4f, \"median_events\": %.0f, "
               "\"flagged_share_shorter\": %.5f, \"flagged_share_longer\": %.5f}",
               rho, median, nt[0] ? (double)nf[0] / nt[0] : 0, nt[1] ? (double)nf[1] / nt[1] : 0);
    printf("  normal users: Spearman(score, events) %.3f; flagged %.2f%% of the shorter half, "
           "%.2f%% of the longer (median %.0f events)\n",
           rho, 100.0 * (nt[0] ? (double)nf[0] / nt[0] : 0), 100.0 * (nt[1] ? (double)nf[1] / nt[1] : 0),
           median);
    free(sc), free(len), free(rs), free(rl), free(sorted);
}

int irregular_truth_report(const char *users_csv, const char *truth_csv, const Config *cfg,
                           double rate, StrBuf *json) {
    long long n_truth = 0, n = 0, unknown = 0;
    TruthRow *truth = read_truth(truth_csv, cfg, &n_truth);
    if (!truth) return -1;
    Scored *u = read_users(users_csv, truth, n_truth, &n, &unknown);
    free(truth);
    if (!u) return -1;
    double *pos = xmalloc(sizeof(double) * (size_t)(n + 1)), *neg = xmalloc(sizeof(double) * (size_t)(n + 1));
    long long n_irr = 0;
    for (long long i = 0; i < n; i++) n_irr += u[i].kind != IRR_NONE;
    sb_appendf(json, "{\"file\": \"%s\", \"users\": %lld, \"irregular\": %lld, \"not_in_truth\": %lld, \"kinds\": {",
               truth_csv, n, n_irr, unknown);
    printf("score: against %s: %lld users, %lld irregular\n", truth_csv, n, n_irr);
    printf("  %-9s %6s %10s %10s %10s  reasons (action/timing/engagement)\n", "kind", "users",
           "AUROC", "baseline", "peak>=start");
    for (int k = 0; k < IRR_N_KINDS; k++) {
        int all = k == 0; // k = 0: every irregular user together
        long long np = 0, nn = 0, reach = 0, reasons[N_PARTS] = {0};
        double auc[2];
        for (int b = 0; b < 2; b++) {
            np = nn = 0;
            for (long long i = 0; i < n; i++) {
                double v = b ? u[i].base : u[i].score;
                if (u[i].kind == IRR_NONE)
                    neg[nn++] = v;
                else if (all || u[i].kind == k)
                    pos[np++] = v;
            }
            auc[b] = auroc(pos, np, neg, nn);
        }
        for (long long i = 0; i < n; i++)
            if (u[i].kind != IRR_NONE && (all || u[i].kind == k)) {
                reach += u[i].peak_end >= u[i].start;
                reasons[u[i].reason]++;
            }
        const char *name = all ? "all" : IRREGULAR_KIND_NAMES[k];
        char b1[32], b2[32], b3[32];
        sb_appendf(json,
                   "%s\"%s\": {\"users\": %lld, \"auroc\": %s, \"baseline_auroc\": %s, "
                   "\"peak_reaches_start\": %s, \"reasons\": {\"action\": %lld, \"timing\": %lld, "
                   "\"engagement\": %lld}}",
                   k ? ", " : "", name, np, jnum(auc[0], b1), jnum(auc[1], b2),
                   jnum(np ? (double)reach / np : NAN, b3), reasons[0], reasons[1], reasons[2]);
        printf("  %-9s %6lld %10.4f %10.4f %10.3f  %lld/%lld/%lld\n", name, np, auc[0], auc[1],
               np ? (double)reach / np : NAN, reasons[0], reasons[1], reasons[2]);
    }
    long long k_top = (long long)llround(rate * (double)n), hits_m, hits_b, flagged = 0, hit_f = 0;
    if (k_top < 1) k_top = 1;
    double prec_m = top_precision(u, n, k_top, 0, &hits_m);
    double prec_b = top_precision(u, n, k_top, 1, &hits_b);
    for (long long i = 0; i < n; i++)
        if (u[i].flagged) flagged++, hit_f += u[i].kind != IRR_NONE;
    char b[5][32];
    sb_appendf(json,
               "}, \"top_share\": %.6g, \"top_users\": %lld, \"precision_top\": %s, "
               "\"recall_top\": %s, \"baseline_precision_top\": %s, \"flagged\": %lld, "
               "\"precision_flagged\": %s, \"recall_flagged\": %s",
               rate, k_top, jnum(prec_m, b[0]), jnum(n_irr ? (double)hits_m / n_irr : NAN, b[1]),
               jnum(prec_b, b[2]), flagged, jnum(flagged ? (double)hit_f / flagged : NAN, b[3]),
               jnum(n_irr ? (double)hit_f / n_irr : NAN, b[4]));
    printf("  top %.3g%% (%lld users): precision %.4f (baseline %.4f); flagged by the threshold "
           "%lld, precision %.4f, recall %.4f\n",
           100 * rate, k_top, prec_m, prec_b, flagged, flagged ? (double)hit_f / flagged : NAN,
           n_irr ? (double)hit_f / n_irr : NAN);
    length_report(u, n, json);
    sb_append(json, "}", 1);
    free(pos), free(neg), free(u);
    return 0;
}
