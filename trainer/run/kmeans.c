// kmeans.c: see kmeans.h. The math is plain loops over local points; every number that
// crosses ranks goes through comm/ (sums of fixed-point integers, max, argmin, broadcast).
#include "kmeans.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "hash.h"
#include "util.h"

// ---------------------------------------------------------------- exact sums

// The scale 2^e that keeps any sum bounded by `bound` (in absolute value) below 2^62 when
// its terms are rounded to multiples of 2^-e: the sums are then exact in int64.
static double fixed_scale(double bound) {
    if (!(bound > 0) || !isfinite(bound)) return 1.0;
    int e;
    frexp(bound, &e); // bound < 2^e
    return ldexp(1.0, 62 - e);
}

static inline int64_t to_fixed(double v, double scale) {
    return (int64_t)llrint(v * scale);
}

static int64_t global_count(int64_t n) {
    int64_t total = n;
    comm_allreduce_sum_i64(&total, 1);
    return total;
}

// ---------------------------------------------------------------- standardise

void kmeans_standardize(float *x, int64_t n, int dim, double *mean, double *std) {
    const int64_t N = global_count(n);
    double *maxabs = xcalloc((size_t)dim, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) maxabs[j] = fmax(maxabs[j], fabs(x[i * dim + j]));
    comm_allreduce_max_f64(maxabs, dim);
    int64_t *acc = xcalloc((size_t)dim, sizeof(int64_t));
    double *scale = xmalloc(sizeof(double) * (size_t)dim);
    for (int j = 0; j < dim; j++) scale[j] = fixed_scale((double)N * maxabs[j]);
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) acc[j] += to_fixed(x[i * dim + j], scale[j]);
    comm_allreduce_sum_i64(acc, (size_t)dim);
    for (int j = 0; j < dim; j++) {
        mean[j] = N ? (double)acc[j] / scale[j] / (double)N : 0;
        scale[j] = fixed_scale((double)N * 4 * maxabs[j] * maxabs[j]);
        acc[j] = 0;
    }
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++) {
            double d = x[i * dim + j] - mean[j];
            acc[j] += to_fixed(d * d, scale[j]);
        }
    comm_allreduce_sum_i64(acc, (size_t)dim);
    for (int j = 0; j < dim; j++) {
        std[j] = N ? sqrt((double)acc[j] / scale[j] / (double)N) : 0;
        // Spread below float resolution of the column's values is no spread.
        if (!(std[j] > 1e-6 * fmax(1.0, maxabs[j]))) std[j] = 0;
    }
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            x[i * dim + j] = std[j] > 0 ? (float)((x[i * dim + j] - mean[j]) / std[j]) : 0.0f;
    free(maxabs);
    free(acc);
    free(scale);
}

// ---------------------------------------------------------------- one fit

int kmeans_nearest(const float *x, const double *c, int k, int dim, double *dist2) {
    int best = 0;
    double best_d = INFINITY;
    for (int q = 0; q < k; q++) {
        const double *cq = c + (size_t)q * dim;
        double d = 0;
        for (int j = 0; j < dim; j++) {
            double diff = (double)x[j] - cq[j];
            d += diff * diff;
        }
        if (d < best_d) best_d = d, best = q;
    }
    *dist2 = best_d;
    return best;
}

typedef struct {
    const float *x;
    const uint64_t *ids;
    int64_t n, N;
    int k, dim;
    double sx, sd;   // fixed-point scales: coordinates, squared distances
    double *c;       // (k, dim) centroids
    double *pick;    // (1 + dim) key and coordinates of a chosen point
    int64_t *acc;    // (k * dim + k) sums and counts
} Km;

// The point with the smallest (key, id) over all ranks becomes centroid q; returns its key.
// keys: (n) this rank's keys (+INFINITY: not eligible).
static double choose_point(Km *km, const double *keys, int q, int64_t *chosen) {
    int64_t best = -1;
    for (int64_t i = 0; i < km->n; i++)
        if (best < 0 || keys[i] < keys[best] || (keys[i] == keys[best] && km->ids[i] < km->ids[best]))
            best = i;
    double key = best >= 0 ? keys[best] : INFINITY;
    int owner = comm_argmin_rank(key, best >= 0 ? km->ids[best] : UINT64_MAX);
    if (comm_rank() == owner) {
        km->pick[0] = key;
        for (int j = 0; j < km->dim; j++) km->pick[1 + j] = km->x[best * km->dim + j];
    }
    comm_bcast(km->pick, sizeof(double) * (size_t)(1 + km->dim), owner);
    memcpy(km->c + (size_t)q * km->dim, km->pick + 1, sizeof(double) * (size_t)km->dim);
    *chosen = comm_rank() == owner ? best : -1;
    return km->pick[0];
}

// k-means++ by exponential race. mind2 and keys: (n) scratch.
static void seed_centroids(Km *km, uint64_t seed, int restart, double *mind2, double *keys) {
    const uint64_t stream = 0x5e6000 + (uint64_t)restart * 1024;
    for (int q = 0; q < km->k; q++) {
        for (int64_t i = 0; i < km->n; i++) {
            double e = -log(1.0 - rng_uniform_at(seed, stream + (uint64_t)q, km->ids[i]));
            keys[i] = q == 0 ? e : mind2[i] > 0 ? e / mind2[i] : INFINITY;
        }
        int64_t chosen;
        if (choose_point(km, keys, q, &chosen) == INFINITY) {
            // Every point sits on a centroid already (fewer distinct points than k): draw
            // uniformly; the duplicate cluster stays empty and is handled by re-seeding.
            for (int64_t i = 0; i < km->n; i++)
                keys[i] = -log(1.0 - rng_uniform_at(seed, stream + (uint64_t)q, km->ids[i]));
            choose_point(km, keys, q, &chosen);
        }
        const double *cq = km->c + (size_t)q * km->dim;
        for (int64_t i = 0; i < km->n; i++) {
            double d = 0;
            for (int j = 0; j < km->dim; j++) {
                double diff = (double)km->x[i * km->dim + j] - cq[j];
                d += diff * diff;
            }
            mind2[i] = q == 0 || d < mind2[i] ? d : mind2[i];
        }
    }
}

// Labels every point with its nearest centroid; returns the number of labels that changed
// (all ranks) and the inertia in *inertia.
static int64_t assign(Km *km, int32_t *labels, double *dist2, double *inertia) {
    int64_t red[2] = {0, 0}; // changed labels, inertia (fixed point)
    for (int64_t i = 0; i < km->n; i++) {
        int q = kmeans_nearest(km->x + i * km->dim, km->c, km->k, km->dim, &dist2[i]);
        red[0] += q != labels[i];
        labels[i] = q;
        red[1] += to_fixed(dist2[i], km->sd);
    }
    comm_allreduce_sum_i64(red, 2);
    *inertia = (double)red[1] / km->sd;
    return red[0];
}

// Centroids = means of their points; an empty cluster gets the point farthest from its
// centroid (once per point: its distance is zeroed). Returns the clusters re-seeded.
static int update(Km *km, const int32_t *labels, double *dist2, double *keys) {
    const int k = km->k, dim = km->dim;
    memset(km->acc, 0, sizeof(int64_t) * (size_t)(k * dim + k));
    for (int64_t i = 0; i < km->n; i++) {
        int64_t *row = km->acc + (size_t)labels[i] * dim;
        for (int j = 0; j < dim; j++) row[j] += to_fixed(km->x[i * dim + j], km->sx);
        km->acc[k * dim + labels[i]]++;
    }
    comm_allreduce_sum_i64(km->acc, (size_t)(k * dim + k));
    int reseeded = 0;
    for (int q = 0; q < k; q++) {
        int64_t count = km->acc[k * dim + q];
        if (count > 0) {
            for (int j = 0; j < dim; j++)
                km->c[q * dim + j] = (double)km->acc[q * dim + j] / km->sx / (double)count;
            continue;
        }
        for (int64_t i = 0; i < km->n; i++) keys[i] = dist2[i] > 0 ? -dist2[i] : INFINITY;
        int64_t chosen;
        if (choose_point(km, keys, q, &chosen) == INFINITY) continue; // nothing to take
        if (chosen >= 0) dist2[chosen] = 0;
        reseeded++;
    }
    return reseeded;
}

// One restart: seeds, iterates; labels and dist2 get its result.
static double fit_once(Km *km, const KmeansConfig *kc, int restart, int32_t *labels,
                       double *dist2, double *keys, int *iterations, int *converged,
                       int *reseeded) {
    if (kc->init)
        memcpy(km->c, kc->init, sizeof(double) * (size_t)(km->k * km->dim));
    else
        seed_centroids(km, kc->seed, restart, dist2, keys);
    for (int64_t i = 0; i < km->n; i++) labels[i] = -1;
    double inertia;
    assign(km, labels, dist2, &inertia);
    *converged = 0;
    int it = 0;
    while (it < kc->max_iter) {
        it++;
        int empties = update(km, labels, dist2, keys);
        *reseeded += empties;
        if (assign(km, labels, dist2, &inertia) == 0 && empties == 0) {
            *converged = 1;
            break;
        }
    }
    *iterations = it;
    return inertia;
}

void kmeans_fit(const float *x, const uint64_t *ids, int64_t n, const KmeansConfig *kc,
                int32_t *labels, double *dist2, KmeansResult *res) {
    const int k = kc->k, dim = kc->dim;
    Km km = {.x = x, .ids = ids, .n = n, .k = k, .dim = dim};
    km.N = global_count(n);
    double maxabs = 0;
    for (int64_t i = 0; i < n * dim; i++) maxabs = fmax(maxabs, fabs(x[i]));
    comm_allreduce_max_f64(&maxabs, 1);
    // Centroids are means of points, so every coordinate is within maxabs.
    km.sx = fixed_scale((double)km.N * maxabs);
    km.sd = fixed_scale((double)km.N * dim * 4 * maxabs * maxabs);
    km.c = xmalloc(sizeof(double) * (size_t)(k * dim));
    km.pick = xmalloc(sizeof(double) * (size_t)(1 + dim));
    km.acc = xmalloc(sizeof(int64_t) * (size_t)(k * dim + k));
    int32_t *lab = xmalloc(sizeof(int32_t) * (size_t)(n + 1));
    double *d2 = xmalloc(sizeof(double) * (size_t)(n + 1));
    double *keys = xmalloc(sizeof(double) * (size_t)(n + 1));
    memset(res, 0, sizeof *res);
    res->k = k, res->dim = dim, res->n_points = km.N;
    res->centroids = xmalloc(sizeof(double) * (size_t)(k * dim));
    res->sizes = xcalloc((size_t)k, sizeof(int64_t));
    res->inertia = INFINITY;
    for (int r = 0; r < (kc->restarts > 0 ? kc->restarts : 1); r++) {
        int iterations, converged;
        double inertia = fit_once(&km, kc, r, lab, d2, keys, &iterations, &converged,
                                  &res->reseeded);
        if (!(inertia < res->inertia)) continue;
        res->inertia = inertia, res->restart = r;
        res->iterations = iterations, res->converged = converged;
        memcpy(res->centroids, km.c, sizeof(double) * (size_t)(k * dim));
        memcpy(labels, lab, sizeof(int32_t) * (size_t)n);
        memcpy(dist2, d2, sizeof(double) * (size_t)n);
    }
    for (int64_t i = 0; i < n; i++) res->sizes[labels[i]]++;
    comm_allreduce_sum_i64(res->sizes, (size_t)k);
    free(km.c), free(km.pick), free(km.acc), free(lab), free(d2), free(keys);
}

void kmeans_cluster_sums(const float *x, const double *w, const int32_t *labels, int64_t n,
                         int dim, int k, double *sums) {
    const int64_t N = global_count(n);
    double *maxabs = xcalloc((size_t)dim, sizeof(double));
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            maxabs[j] = fmax(maxabs[j], fabs((w ? w[i] : 1.0) * x[i * dim + j]));
    comm_allreduce_max_f64(maxabs, dim);
    int64_t *acc = xcalloc((size_t)k * (size_t)dim, sizeof(int64_t));
    for (int j = 0; j < dim; j++) maxabs[j] = fixed_scale((double)N * maxabs[j]); // now scales
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            acc[(size_t)labels[i] * dim + j] +=
                to_fixed((w ? w[i] : 1.0) * x[i * dim + j], maxabs[j]);
    comm_allreduce_sum_i64(acc, (size_t)k * (size_t)dim);
    for (int q = 0; q < k; q++)
        for (int j = 0; j < dim; j++)
            sums[q * dim + j] = (double)acc[(size_t)q * dim + j] / maxabs[j];
    free(maxabs);
    free(acc);
}

void kmeans_result_free(KmeansResult *res) {
    free(res->centroids);
    free(res->sizes);
    memset(res, 0, sizeof *res);
}

void kmeans_order_by_size(KmeansResult *res, int32_t *labels, int64_t n) {
    const int k = res->k, dim = res->dim;
    int *order = xmalloc(sizeof(int) * (size_t)k), *rank_of = xmalloc(sizeof(int) * (size_t)k);
    for (int q = 0; q < k; q++) order[q] = q;
    for (int a = 1; a < k; a++) // insertion sort: k is small; stable, so ties keep index order
        for (int b = a; b > 0 && res->sizes[order[b]] > res->sizes[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1], order[b - 1] = t;
        }
    double *c = xmalloc(sizeof(double) * (size_t)(k * dim));
    int64_t *sizes = xmalloc(sizeof(int64_t) * (size_t)k);
    for (int q = 0; q < k; q++) {
        rank_of[order[q]] = q;
        memcpy(c + q * dim, res->centroids + order[q] * dim, sizeof(double) * (size_t)dim);
        sizes[q] = res->sizes[order[q]];
    }
    for (int64_t i = 0; i < n; i++) labels[i] = rank_of[labels[i]];
    free(res->centroids), free(res->sizes);
    res->centroids = c, res->sizes = sizes;
    free(order), free(rank_of);
}

// ---------------------------------------------------------------- judging a clustering

static double pairs(double n) {
    return n * (n - 1) / 2;
}

double adjusted_rand_index(const int64_t *table, int ka, int kb) {
    double sum_ij = 0, sum_a = 0, sum_b = 0, n = 0;
    for (int i = 0; i < ka; i++) {
        double a = 0;
        for (int j = 0; j < kb; j++) {
            a += (double)table[i * kb + j];
            sum_ij += pairs((double)table[i * kb + j]);
        }
        sum_a += pairs(a);
        n += a;
    }
    for (int j = 0; j < kb; j++) {
        double b = 0;
        for (int i = 0; i < ka; i++) b += (double)table[i * kb + j];
        sum_b += pairs(b);
    }
    if (n < 2) return 1.0;
    double expected = sum_a * sum_b / pairs(n), max_index = 0.5 * (sum_a + sum_b);
    if (max_index == expected) return 1.0; // both trivial (one cluster, or all singletons)
    return (sum_ij - expected) / (max_index - expected);
}

double silhouette(const float *x, const int32_t *labels, int64_t m, int dim, int k) {
    double *sum = xmalloc(sizeof(double) * (size_t)k);
    int64_t *count = xcalloc((size_t)k, sizeof(int64_t));
    for (int64_t i = 0; i < m; i++) count[labels[i]]++;
    double total = 0;
    for (int64_t i = 0; i < m; i++) {
        memset(sum, 0, sizeof(double) * (size_t)k);
        for (int64_t p = 0; p < m; p++) {
            if (p == i) continue;
            double d = 0;
            for (int j = 0; j < dim; j++) {
                double diff = (double)x[i * dim + j] - x[p * dim + j];
                d += diff * diff;
            }
            sum[labels[p]] += sqrt(d);
        }
        int own = labels[i];
        if (count[own] < 2) continue; // s(i) = 0
        double a = sum[own] / (double)(count[own] - 1), b = INFINITY;
        for (int q = 0; q < k; q++)
            if (q != own && count[q] > 0) b = fmin(b, sum[q] / (double)count[q]);
        if (b == INFINITY) continue;
        double mx = fmax(a, b);
        total += mx > 0 ? (b - a) / mx : 0;
    }
    free(sum);
    free(count);
    return m > 0 ? total / (double)m : 0;
}
