// ckpt_compare.c: test tool. Compares the parameters, optimizer moments and lane state of
// two checkpoints.
//
//   ckpt_compare A.ckpt B.ckpt [--tol X]
//
// Prints the largest absolute and relative difference per kind and exits 0 when every
// value agrees within X (default 0: bitwise identical), 1 when not, 2 on a read error.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

static double worst(const float *a, const float *b, size_t n, double *rel, size_t *n_diff) {
    double w = 0, r = 0;
    *n_diff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) ++*n_diff;
        double s = fabs((double)a[i]) > 1e-3 ? fabs((double)a[i]) : 1e-3;
        w = d > w ? d : w;
        r = d / s > r ? d / s : r;
    }
    *rel = r;
    return w;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: ckpt_compare A.ckpt B.ckpt [--tol X]\n");
        return 2;
    }
    double tol = argc >= 5 && strcmp(argv[3], "--tol") == 0 ? atof(argv[4]) : 0.0;
    LoadedCheckpoint a, b;
    char err[1024];
    if (checkpoint_read_file(argv[1], &a, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 2;
    }
    if (checkpoint_read_file(argv[2], &b, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[2], err);
        return 2;
    }
    if (a.d.n_params != b.d.n_params || a.d.n_lanes != b.d.n_lanes ||
        a.d.shape.layers != b.d.shape.layers || a.d.shape.hidden != b.d.shape.hidden) {
        printf("different shapes\n");
        return 1;
    }
    const size_t nl = (size_t)a.d.shape.layers * a.d.n_lanes * a.d.shape.hidden;
    struct {
        const char *name;
        const float *x, *y;
        size_t n;
    } parts[] = {{"params", a.params, b.params, a.d.n_params},
                 {"adam_m", a.adam_m, b.adam_m, a.d.n_params},
                 {"adam_v", a.adam_v, b.adam_v, a.d.n_params},
                 {"lane_h", a.lane_h, b.lane_h, nl},
                 {"lane_c", a.lane_c, b.lane_c, nl}};
    int ok = a.d.step == b.d.step;
    printf("steps %lld and %lld\n", (long long)a.d.step, (long long)b.d.step);
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        double rel;
        size_t nd;
        double w = worst(parts[k].x, parts[k].y, parts[k].n, &rel, &nd);
        printf("%-7s %9zu values: %zu differ, max abs diff %.3e, max rel diff %.3e\n",
               parts[k].name, parts[k].n, nd, w, rel);
        if (tol == 0 ? nd != 0 : w > tol) ok = 0;
    }
    int same_cursor = memcmp(a.lanes, b.lanes, sizeof(LaneCursor) * (size_t)a.d.n_lanes) == 0 &&
                      memcmp(a.shards, b.shards, sizeof(ShardCursor) * (size_t)a.d.n_vshards) == 0;
    printf("data cursor: %s\n", same_cursor ? "identical" : "DIFFERENT");
    ok = ok && same_cursor;
    printf(ok ? "MATCH (tolerance %g)\n" : "MISMATCH (tolerance %g)\n", tol);
    checkpoint_free(&a);
    checkpoint_free(&b);
    return ok ? 0 : 1;
}
