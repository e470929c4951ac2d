// test_kmeans.c: the clustering math of `trainer segment` (run/kmeans.h).
//
//   1. ARI of a hand-computed case, and of the labelings in fixtures/ari.txt (written by
//      tools/make_ari_reference.py, which counts pairs in float64: an independent computation).
//   2. Planted Gaussian blobs (5 blobs in 8 dimensions, well separated): k-means++ and Lloyd
//      recover them (ARI 1, centroids within 0.2 of the planted means), on this rank's share
//      of the points (point i on rank i % size); standardisation gives mean 0, std 1.
//   3. Fewer distinct points than K: no crash, no NaN, an empty cluster reported as such; a
//      cluster emptied by Lloyd is re-seeded with the farthest point and the groups recovered.
//   4. Silhouette: near 1 for the blobs, lower for a wrong K.
//   5. A tie for the farthest point (points at -10 and +10, centroid 0) goes to the smallest
//      point id over all ranks, whichever rank holds it (else the clustering depends on P).
//   6. Restarts: on unclustered points (many local optima) the fit keeps the restart of lowest
//      inertia: 6 restarts never do worse than the first alone, and beat it for some seeds.
// Prints "digest <hex>" of the labels (by point id), distances and centroids: the test
// script runs this under mpirun -np 1, 2 and 4 and requires the same digest.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "hash.h"
#include "kmeans.h"
#include "util.h"

#include "check.h"

enum { N_BLOB = 5, DIM = 8, PER_BLOB = 400 };

static void test_ari_hand(void) {
    // a = 000111, b = 001122: table [[2,1,0],[0,1,2]]; sum C(n_ij,2) = 2; rows C(3,2)*2 = 6;
    // columns C(2,2)*3 = 3; expected = 6*3/C(6,2) = 1.2; max = 4.5; ARI = 0.8/3.3.
    const int64_t table[6] = {2, 1, 0, 0, 1, 2};
    double ari = adjusted_rand_index(table, 2, 3);
    CHECK(fabs(ari - 0.8 / 3.3) < 1e-12, "hand case: ARI %.15f, want %.15f", ari, 0.8 / 3.3);
    const int64_t same[4] = {3, 0, 0, 3}, one[2] = {6, 0};
    CHECK(adjusted_rand_index(same, 2, 2) == 1.0, "identical partitions: ARI != 1");
    CHECK(adjusted_rand_index(one, 1, 2) == 1.0, "both trivial: ARI != 1 (scikit-learn's convention)");
}

static void test_ari_fixture(const char *path) {
    FILE *f = xfopen(path, "r");
    int n, ka, kb, cases = 0;
    double want;
    while (fscanf(f, "%d %d %d %lf", &n, &ka, &kb, &want) == 4) {
        int *a = xmalloc(sizeof(int) * (size_t)n), *b = xmalloc(sizeof(int) * (size_t)n);
        for (int i = 0; i < n; i++) CHECK(fscanf(f, "%d", &a[i]) == 1, "%s: short case", path);
        for (int i = 0; i < n; i++) CHECK(fscanf(f, "%d", &b[i]) == 1, "%s: short case", path);
        int64_t *table = xcalloc((size_t)(ka * kb), sizeof(int64_t));
        for (int i = 0; i < n; i++) table[a[i] * kb + b[i]]++;
        double got = adjusted_rand_index(table, ka, kb);
        CHECK(fabs(got - want) < 1e-12, "%s case %d: ARI %.15f, reference %.15f", path, cases, got, want);
        free(a), free(b), free(table);
        cases++;
    }
    fclose(f);
    CHECK(cases == 5, "%s: %d cases read, want 5", path, cases);
}

// Planted blobs: centre of blob c has coordinate j = 10 * ((c * 7 + j * 3) % 5) - 20 (distinct
// rows, pairwise far apart), noise N(0, 1). Rank r keeps points i with i % size == r.
static int64_t make_blobs(float *x, uint64_t *ids, int *truth, int rank, int size) {
    int64_t n = 0;
    for (int i = 0; i < N_BLOB * PER_BLOB; i++) {
        if (i % size != rank) continue;
        Rng r = rng_make(77, (uint64_t)i);
        int c = i % N_BLOB;
        for (int j = 0; j < DIM; j++)
            x[n * DIM + j] = (float)(10.0 * ((c * 7 + j * 3) % 5) - 20.0 + rng_normal(&r));
        ids[n] = mix64((uint64_t)i), truth[n] = c;
        n++;
    }
    return n;
}

static uint64_t test_blobs(int rank, int size) {
    const int N = N_BLOB * PER_BLOB;
    float *x = xmalloc(sizeof(float) * N * DIM);
    uint64_t *ids = xmalloc(sizeof(uint64_t) * N);
    int *truth = xmalloc(sizeof(int) * N);
    int64_t n = make_blobs(x, ids, truth, rank, size);
    double mean[DIM], sd[DIM];
    float *z = xmalloc(sizeof(float) * N * DIM);
    memcpy(z, x, sizeof(float) * (size_t)(n * DIM));
    kmeans_standardize(z, n, DIM, mean, sd);
    double zs[2 * DIM] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < DIM; j++) zs[j] += z[i * DIM + j], zs[DIM + j] += z[i * DIM + j] * z[i * DIM + j];
    comm_allreduce_sum_f64(zs, 2 * DIM);
    for (int j = 0; j < DIM; j++)
        CHECK(fabs(zs[j] / N) < 1e-5 && fabs(zs[DIM + j] / N - 1) < 1e-4,
              "standardised column %d: mean %g, var %g", j, zs[j] / N, zs[DIM + j] / N);
    KmeansConfig kc = {.k = N_BLOB, .dim = DIM, .restarts = 3, .max_iter = 100, .seed = 5};
    int32_t *labels = xmalloc(sizeof(int32_t) * N);
    double *dist2 = xmalloc(sizeof(double) * N);
    KmeansResult res;
    kmeans_fit(x, ids, n, &kc, labels, dist2, &res);
    kmeans_order_by_size(&res, labels, n);
    int64_t table[N_BLOB * N_BLOB] = {0};
    for (int64_t i = 0; i < n; i++) table[labels[i] * N_BLOB + truth[i]]++;
    comm_allreduce_sum_i64(table, N_BLOB * N_BLOB);
    double ari = adjusted_rand_index(table, N_BLOB, N_BLOB);
    CHECK(ari == 1.0, "blobs: ARI %.6f, want 1 (every planted blob one cluster)", ari);
    CHECK(res.converged && res.n_points == N, "blobs: not converged or %lld points", (long long)res.n_points);
    for (int q = 0; q < N_BLOB; q++) {
        int c = 0;
        for (int s = 1; s < N_BLOB; s++) c = table[q * N_BLOB + s] > table[q * N_BLOB + c] ? s : c;
        for (int j = 0; j < DIM; j++) {
            double planted = 10.0 * ((c * 7 + j * 3) % 5) - 20.0;
            CHECK(fabs(res.centroids[q * DIM + j] - planted) < 0.2, "blob %d coordinate %d: %.3f vs planted %.1f",
                  c, j, res.centroids[q * DIM + j], planted);
        }
        CHECK(res.sizes[q] == PER_BLOB, "cluster %d holds %lld points, want %d", q, (long long)res.sizes[q], PER_BLOB);
    }
    // Silhouette on the (gathered) points of rank 0 only when alone: the full set is small.
    if (size == 1) {
        double s_good = silhouette(x, labels, n, DIM, N_BLOB);
        KmeansConfig k2 = kc;
        k2.k = 2;
        KmeansResult r2;
        int32_t *l2 = xmalloc(sizeof(int32_t) * N);
        double *d2 = xmalloc(sizeof(double) * N);
        kmeans_fit(x, ids, n, &k2, l2, d2, &r2);
        double s_bad = silhouette(x, l2, n, DIM, 2);
        CHECK(s_good > 0.8 && s_good > s_bad + 0.1, "silhouette: K=5 %.3f, K=2 %.3f", s_good, s_bad);
        kmeans_result_free(&r2);
        free(l2), free(d2);
    }
    // Digest: labels and distances by point id (a sum of per-point hashes: order-free), centroids.
    uint64_t digest[2] = {0, hash_bytes(res.centroids, sizeof(double) * N_BLOB * DIM, 1)};
    for (int64_t i = 0; i < n; i++) {
        uint64_t rec[3] = {ids[i], (uint64_t)labels[i], 0};
        memcpy(&rec[2], &dist2[i], sizeof(double));
        digest[0] += hash_bytes(rec, sizeof rec, 2);
    }
    comm_allreduce_sum_i64((int64_t *)digest, 1);
    kmeans_result_free(&res);
    free(x), free(ids), free(truth), free(z), free(labels), free(dist2);
    return digest[0] ^ digest[1];
}

static void test_degenerate(int rank, int size) {
    // 30 points at 3 locations, K = 4: one cluster cannot hold anything.
    float x[30 * 2];
    uint64_t ids[30];
    int64_t n = 0;
    for (int i = 0; i < 30; i++) {
        if (i % size != rank) continue;
        x[n * 2] = (float)(i % 3), x[n * 2 + 1] = (float)(i % 3 == 1);
        ids[n++] = (uint64_t)i + 1;
    }
    KmeansConfig kc = {.k = 4, .dim = 2, .restarts = 2, .max_iter = 20, .seed = 1};
    int32_t labels[30];
    double dist2[30];
    KmeansResult res;
    kmeans_fit(x, ids, n, &kc, labels, dist2, &res);
    int64_t total = 0, empty = 0;
    for (int q = 0; q < 4; q++) {
        total += res.sizes[q], empty += res.sizes[q] == 0;
        for (int j = 0; j < 2; j++) CHECK(isfinite(res.centroids[q * 2 + j]), "degenerate: centroid not finite");
    }
    CHECK(total == 30 && empty == 1 && res.inertia == 0, "degenerate: %lld points, %lld empty, inertia %g",
          (long long)total, (long long)empty, res.inertia);
    for (int64_t i = 0; i < n; i++) CHECK(labels[i] >= 0 && labels[i] < 4 && dist2[i] == 0, "degenerate label");
    kmeans_result_free(&res);
}

static void test_reseed(int rank, int size) {
    // 1-D points: 20 near 0, 20 near 10. Started from centroids 0 and 100, every point goes to
    // the first; the second, empty, is re-seeded with the farthest point, and Lloyd then
    // separates the two groups.
    float x[40];
    uint64_t ids[40];
    int truth[40];
    int64_t n = 0;
    for (int i = 0; i < 40; i++) {
        if (i % size != rank) continue;
        x[n] = (float)((i < 20 ? 0.0 : 10.0) + 0.01 * (i % 7)), truth[n] = i >= 20;
        ids[n++] = mix64((uint64_t)i);
    }
    const double init[2] = {0.0, 100.0};
    KmeansConfig kc = {.k = 2, .dim = 1, .restarts = 1, .max_iter = 20, .seed = 1, .init = init};
    int32_t labels[40];
    double dist2[40];
    KmeansResult res;
    kmeans_fit(x, ids, n, &kc, labels, dist2, &res);
    int64_t table[4] = {0};
    for (int64_t i = 0; i < n; i++) table[labels[i] * 2 + truth[i]]++;
    comm_allreduce_sum_i64(table, 4);
    CHECK(res.reseeded == 1 && res.converged && adjusted_rand_index(table, 2, 2) == 1.0 &&
              res.sizes[0] == 20 && res.sizes[1] == 20,
          "reseed: %d re-seeded, converged %d, sizes %lld/%lld", res.reseeded, res.converged,
          (long long)res.sizes[0], (long long)res.sizes[1]);
    kmeans_result_free(&res);
}

static void test_tie(int rank, int size) {
    // i < 20: even i at -10, odd i at +10 (ids i + 1: the smallest, id 1, is at -10, while on
    // 2 or 4 ranks the other ranks' smallest are at +10); i >= 20 at 0.
    float x[30];
    uint64_t ids[30];
    int64_t n = 0;
    for (int i = 0; i < 30; i++) {
        if (i % size != rank) continue;
        x[n] = i >= 20 ? 0.0f : i % 2 ? 10.0f : -10.0f;
        ids[n++] = (uint64_t)i + 1;
    }
    const double init[2] = {0.0, 100.0};
    KmeansConfig kc = {.k = 2, .dim = 1, .restarts = 1, .max_iter = 20, .seed = 1, .init = init};
    int32_t labels[30];
    double dist2[30];
    KmeansResult res;
    kmeans_fit(x, ids, n, &kc, labels, dist2, &res);
    double wrong = 0;
    for (int64_t i = 0; i < n; i++) wrong += labels[i] != (x[i] == -10.0f);
    comm_allreduce_sum_f64(&wrong, 1);
    CHECK(res.reseeded == 1 && wrong == 0, "tie: %d re-seeded, %.0f points not where the "
          "smallest id's re-seed puts them (the -10 points alone)", res.reseeded, wrong);
    kmeans_result_free(&res);
}

static void test_restarts(int rank, int size) {
    enum { NP = 300 };
    float x[NP * 2];
    uint64_t ids[NP];
    int64_t n = 0;
    for (int i = 0; i < NP; i++) {
        if (i % size != rank) continue;
        x[n * 2] = (float)((mix64((uint64_t)i) >> 11) * 0x1.0p-53);
        x[n * 2 + 1] = (float)((mix64((uint64_t)i + NP) >> 11) * 0x1.0p-53);
        ids[n++] = (uint64_t)i + 1;
    }
    int32_t labels[NP];
    double dist2[NP];
    int better = 0, worse = 0;
    for (uint64_t seed = 1; seed <= 8; seed++) {
        KmeansConfig k1 = {.k = 7, .dim = 2, .restarts = 1, .max_iter = 50, .seed = seed};
        KmeansConfig k6 = k1;
        k6.restarts = 6;
        KmeansResult r1, r6;
        kmeans_fit(x, ids, n, &k1, labels, dist2, &r1);
        kmeans_fit(x, ids, n, &k6, labels, dist2, &r6);
        better += r6.inertia < r1.inertia * (1 - 1e-9) && r6.restart > 0;
        worse += r6.inertia > r1.inertia;
        kmeans_result_free(&r1), kmeans_result_free(&r6);
    }
    CHECK(worse == 0 && better > 0, "restarts: 6 restarts beat the first alone for %d of 8 seeds, "
          "did worse for %d (want > 0 and 0)", better, worse);
}

int main(int argc, char **argv) {
    comm_init(&argc, &argv);
    int rank = comm_rank(), size = comm_size();
    if (argc > 1) {
        test_ari_hand();
        test_ari_fixture(argv[1]);
    }
    uint64_t digest = test_blobs(rank, size);
    test_degenerate(rank, size);
    test_reseed(rank, size);
    test_tie(rank, size);
    test_restarts(rank, size);
    double fails = g_failures;
    comm_allreduce_max_f64(&fails, 1);
    if (rank == 0) printf("digest %016llx\n%s\n", (unsigned long long)digest, fails ? "FAILED" : "all checks passed");
    comm_finalize();
    return fails ? 1 : 0;
}
