// comm.c: see comm.h.
#include "comm.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

static int g_rank = 0, g_size = 1, g_up = 0;
static double g_wait = 0;

static double clock_s(void) {
    return MPI_Wtime();
}

static void abort_hook(int status) {
    comm_abort(status);
}

static void check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fatal("MPI %s failed: %s", what, msg);
}

void comm_init(int *argc, char ***argv) {
    int provided;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "init");
    // Errors come back to us so they can be reported with the rank before aborting.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_up = 1;
    if (g_size > 1) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[rank %d] ", g_rank);
        set_log_prefix(prefix);
    }
    set_abort_hook(abort_hook);
}

int comm_rank(void) {
    return g_rank;
}
int comm_size(void) {
    return g_size;
}
const char *comm_launcher(void) {
    if (getenv("OMPI_COMM_WORLD_SIZE") && !getenv("SLURM_STEP_ID")) return "mpirun";
    if (getenv("SLURM_STEP_ID") && getenv("PMIX_RANK")) return "srun";
    if (getenv("OMPI_COMM_WORLD_SIZE")) return "mpirun";
    return "singleton";
}

void comm_finalize(void) {
    if (!g_up) return;
    g_up = 0;
    set_abort_hook(NULL);
    MPI_Finalize();
}

_Noreturn void comm_abort(int status) {
    fflush(stdout);
    fflush(stderr);
    // One rank has no one to abort: finalise and exit with the status, without the abort
    // banner (and without the singleton's ORTE_ERROR_LOG noise that MPI_Abort prints).
    if (g_up && g_size == 1) {
        g_up = 0;
        set_abort_hook(NULL);
        MPI_Finalize();
    }
    if (g_up) MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
    exit(status);
}

void comm_barrier(void) {
    double t = clock_s();
    check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
    g_wait += clock_s() - t;
}

void comm_bcast(void *buf, size_t bytes, int root) {
    char *p = buf;
    while (bytes > 0) { // MPI counts are int: large buffers go in pieces
        int n = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
        check(MPI_Bcast(p, n, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
        p += n;
        bytes -= (size_t)n;
    }
}

int comm_all_equal_u64(uint64_t value) {
    uint64_t lo = value, hi = value;
    check(MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD), "allreduce");
    check(MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    return lo == hi;
}

void comm_allreduce_sum_f64(double *x, int n) {
    double t = clock_s();
    check(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "allreduce");
    g_wait += clock_s() - t;
}

void comm_allreduce_max_f64(double *x, int n) {
    double t = clock_s();
    check(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "allreduce");
    g_wait += clock_s() - t;
}

void comm_allreduce_sum_i64(int64_t *x, size_t n) {
    double t = clock_s();
    while (n > 0) {
        int k = n > (1u << 27) ? (1 << 27) : (int)n;
        check(MPI_Allreduce(MPI_IN_PLACE, x, k, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD), "allreduce");
        x += k;
        n -= (size_t)k;
    }
    g_wait += clock_s() - t;
}

void comm_gather_bytes(const void *in, size_t bytes, void *out, int root) {
    if (bytes > (1u << 30)) fatal("comm_gather_bytes: %zu bytes per rank is too large", bytes);
    check(MPI_Gather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD),
          "gather");
}

double comm_take_wait_seconds(void) {
    double w = g_wait;
    g_wait = 0;
    return w;
}

// ---------------------------------------------------------------- gradient reducer

struct GradReducer {
    float *grads;
    int n_buckets, header_len;
    size_t *offsets, *counts;
    MPI_Request *req; // n_buckets + 1 (the header): every bucket may be in flight at once
    int n_req;
    MPI_Datatype header_type;
    MPI_Op header_op;
    double header[64];
};

static int g_header_len; // MPI user ops carry no context; the header length is fixed per run

// Header reduction: elementwise sum, except the last two entries (flags), which take the max.
static void header_op_fn(void *in, void *inout, int *len, MPI_Datatype *type) {
    const double *a = in;
    double *b = inout;
    for (int e = 0; e < *len; e++, a += g_header_len, b += g_header_len) {
        for (int i = 0; i < g_header_len - 2; i++) b[i] += a[i];
        for (int i = g_header_len - 2; i < g_header_len; i++) b[i] = a[i] > b[i] ? a[i] : b[i];
    }
}

GradReducer *comm_reducer_create(float *grads, int n_buckets, const size_t *offsets,
                                 const size_t *counts, int header_len) {
    if (header_len < 2 || header_len > 64) fatal("comm: header length %d out of range", header_len);
    GradReducer *r = xcalloc(1, sizeof *r);
    r->grads = grads;
    r->n_buckets = n_buckets;
    r->header_len = header_len;
    r->offsets = xmalloc(sizeof(size_t) * (size_t)n_buckets);
    r->counts = xmalloc(sizeof(size_t) * (size_t)n_buckets);
    memcpy(r->offsets, offsets, sizeof(size_t) * (size_t)n_buckets);
    memcpy(r->counts, counts, sizeof(size_t) * (size_t)n_buckets);
    r->req = xmalloc(sizeof(MPI_Request) * ((size_t)n_buckets + 1));
    for (int i = 0; i < n_buckets; i++)
        if (counts[i] > (size_t)1 << 30) fatal("comm: bucket %d too large", i);
    g_header_len = header_len;
    check(MPI_Type_contiguous(header_len, MPI_DOUBLE, &r->header_type), "type");
    check(MPI_Type_commit(&r->header_type), "type commit");
    check(MPI_Op_create(header_op_fn, 1, &r->header_op), "op create");
    return r;
}

void comm_reducer_free(GradReducer *r) {
    if (!r) return;
    if (g_up) {
        MPI_Op_free(&r->header_op);
        MPI_Type_free(&r->header_type);
    }
    free(r->offsets);
    free(r->counts);
    free(r->req);
    free(r);
}

void comm_reducer_start(GradReducer *r, int bucket) {
    if (bucket < 0 || bucket >= r->n_buckets) fatal("comm: no bucket %d", bucket);
    if (r->n_req >= r->n_buckets) fatal("comm: bucket %d started twice in one step", bucket);
    if (g_size == 1 || r->counts[bucket] == 0) return;
    check(MPI_Iallreduce(MPI_IN_PLACE, r->grads + r->offsets[bucket], (int)r->counts[bucket],
                         MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r->req[r->n_req++]),
          "iallreduce");
}

void comm_reducer_progress(GradReducer *r) {
    if (r->n_req == 0) return;
    int done;
    check(MPI_Testall(r->n_req, r->req, &done, MPI_STATUSES_IGNORE), "test");
}

void comm_reducer_finish(GradReducer *r, double *header) {
    double t = clock_s();
    if (g_size > 1) {
        memcpy(r->header, header, sizeof(double) * (size_t)r->header_len);
        check(MPI_Iallreduce(MPI_IN_PLACE, r->header, 1, r->header_type, r->header_op,
                             MPI_COMM_WORLD, &r->req[r->n_req++]),
              "iallreduce (header)");
        check(MPI_Waitall(r->n_req, r->req, MPI_STATUSES_IGNORE), "wait");
        memcpy(header, r->header, sizeof(double) * (size_t)r->header_len);
    }
    r->n_req = 0;
    g_wait += clock_s() - t;
}
