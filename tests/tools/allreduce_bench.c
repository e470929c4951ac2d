// allreduce_bench.c: bench tool. Times the gradient allreduce of comm/ (one bucket through
// the GradReducer plus the step header, exactly a step's path) for message sizes from 4 B to
// 64 MiB, for the scaling model (tests/bench/scaling_model.py).
//
//   mpirun -np P allreduce_bench [--max-mb M] [--seconds S]
//
// Per size, repeats (a barrier, then start + finish of the bucket) for about S seconds
// (default 0.25, at least 5 and at most 2000 times) and prints, on rank 0, one JSON line:
// {"ranks":P,"bytes":N,"reps":R,"us_med":...,"us_min":...}. Size 0 is the header alone.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "util.h"

#define HEADER_LEN 8

static int by_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median and minimum (microseconds) of reps timed allreduces of n floats (0: header only).
static void time_size(float *grads, size_t n, double seconds, double *times, int *reps,
                      double *med, double *min) {
    size_t offset = 0, count = n;
    GradReducer *r = comm_reducer_create(grads, 1, &offset, &count, HEADER_LEN);
    double header[HEADER_LEN] = {0}, t_end = 0;
    int k = 0;
    for (; k < 2000; k++) {
        comm_barrier();
        double t0 = now_seconds();
        if (k == 0) t_end = t0 + seconds;
        if (n) comm_reducer_start(r, 0);
        comm_reducer_finish(r, header);
        times[k] = 1e6 * (now_seconds() - t0);
        // Every rank stops after the same rep: rank 0's clock decides.
        double stop = now_seconds() > t_end && k >= 4;
        comm_bcast(&stop, sizeof stop, 0);
        if (stop) break;
    }
    *reps = k + (k < 2000);
    qsort(times, (size_t)*reps, sizeof *times, by_double);
    *med = times[*reps / 2], *min = times[0];
    comm_reducer_free(r);
}

int main(int argc, char **argv) {
    double max_mb = 64, seconds = 0.25;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-mb") == 0 && i + 1 < argc) max_mb = atof(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: allreduce_bench [--max-mb M] [--seconds S]\n");
            return 2;
        }
    }
    comm_init(&argc, &argv);
    comm_set_timeout(120);
    size_t max_n = (size_t)(max_mb * (1 << 20) / 4);
    float *grads = xcalloc(max_n ? max_n : 1, sizeof(float));
    double *times = xmalloc(sizeof(double) * 2001);
    for (size_t n = 0; n <= max_n; n = n ? n * 4 : 1) {
        int reps;
        double med, min;
        time_size(grads, n, seconds, times, &reps, &med, &min);
        if (comm_rank() == 0)
            printf("{\"tool\":\"allreduce_bench\",\"ranks\":%d,\"launcher\":\"%s\",\"bytes\":%zu,"
                   "\"reps\":%d,\"us_med\":%.2f,\"us_min\":%.2f}\n",
                   comm_size(), comm_launcher(), 4 * n, reps, med, min);
        fflush(stdout);
    }
    free(times);
    free(grads);
    comm_finalize();
    return 0;
}
