// kmeans.h: k-means over points spread across ranks, the same on any number of ranks; and
// the measures used to judge a clustering (adjusted Rand index, silhouette).
//
// Each rank holds its own points (n rows of dim floats) and a 64-bit id per point (the user
// hash: unique, and independent of which rank holds the point). Only sums, counts and single
// chosen points cross ranks (through comm/); no point row is ever sent to another rank.
//
// Same result on any number of ranks, bit for bit: every random draw is a function of
// (seed, restart, round, point id); sums of coordinates and of squared distances are
// accumulated as 64-bit fixed-point integers whose scale is fixed from the global maximum
// before summing, so they are exact and independent of the order of summation; ties go to
// the smaller key, then the smaller id, then the lower cluster index.
//
// Seeding: k-means++ (D^2 weighting) by an exponential race: point i draws
// key_i = -log(u_i) / d_i^2 and the smallest key over all ranks wins, which picks i with
// probability d_i^2 / sum_j d_j^2 without a global prefix sum. Then Lloyd iterations until
// no label changes (or max_iter). A cluster left empty is re-seeded with the point farthest
// from its centroid. Restarts: the lowest inertia is kept (ties: the earlier restart).
// Distances are Euclidean in the (standardised) feature space; sums in double.
#pragma once
#include <stdint.h>

typedef struct {
    int k, dim;
    int restarts; // >= 1
    int max_iter; // Lloyd iterations per restart
    uint64_t seed;
    const double *init; // (k, dim) start every restart from these centroids instead of seeding
                        // (NULL: k-means++)
} KmeansConfig;

typedef struct {
    int k, dim;
    double *centroids; // (k, dim)
    int64_t *sizes;    // (k) points per cluster, all ranks
    double inertia;    // sum of squared distances to the own centroid, all ranks
    int64_t n_points;  // all ranks
    int restart;       // the restart kept
    int iterations;    // its Lloyd iterations
    int converged;     // 1 if it stopped because no label changed
    int reseeded;      // empty clusters re-seeded, over all restarts
} KmeansResult;

// Standardises x (n, dim) in place to mean 0 and standard deviation 1 per column over the
// points of all ranks (a column with no spread becomes 0); mean and std (dim) get the
// statistics used. Collective.
void kmeans_standardize(float *x, int64_t n, int dim, double *mean, double *std);

// Fits k-means to the points of all ranks; labels (n) and dist2 (n) get each local point's
// cluster and squared distance to its centroid. Collective. The caller frees res.
void kmeans_fit(const float *x, const uint64_t *ids, int64_t n, const KmeansConfig *kc,
                int32_t *labels, double *dist2, KmeansResult *res);
void kmeans_result_free(KmeansResult *res);

// sums (k, dim) = sum over the points of all ranks labelled q of w_i x_i (w = NULL: 1),
// exact and the same on any number of ranks (fixed point, as the Lloyd sums). Collective.
void kmeans_cluster_sums(const float *x, const double *w, const int32_t *labels, int64_t n,
                         int dim, int k, double *sums);

// Nearest of k centroids (k, dim) to one point (ties: the lower index); *dist2 its squared
// distance.
int kmeans_nearest(const float *x, const double *centroids, int k, int dim, double *dist2);

// Renumbers clusters by size, largest first (ties: the lower old index), in res and labels.
void kmeans_order_by_size(KmeansResult *res, int32_t *labels, int64_t n);

// Adjusted Rand index (Hubert and Arabie 1985) of two labelings given their contingency
// table (ka rows, kb columns, row major: counts of points with label i in one and j in the
// other). 1 for identical partitions, about 0 for independent ones; 1 when both put
// everything in one cluster (as scikit-learn).
double adjusted_rand_index(const int64_t *table, int ka, int kb);

// Mean silhouette (Rousseeuw 1987) of m points (m, dim) with labels in [0, k), Euclidean
// distances; a point alone in its cluster scores 0. O(m^2 dim), on one process.
double silhouette(const float *x, const int32_t *labels, int64_t m, int dim, int k);
