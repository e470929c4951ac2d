// comm.h: every MPI call of the program. Nothing outside comm/ includes mpi.h.
//
// Start-up under mpirun, srun or as a singleton; rank and size; collective agreement on
// the config; broadcast of the initial parameters; the gradient allreduce in buckets that
// start (non-blocking) as soon as backward has finished the layer they hold, plus a small
// header reduced with every step (sums, then two MAX flags); reductions of metrics; abort.
// Only the main thread calls into comm (MPI_THREAD_FUNNELED).
//
// Watchdog: every collective wait has a deadline of comm.timeout_s seconds without progress
// (default COMM_DEFAULT_TIMEOUT_S, 0 = off). On expiry the waiting ranks print which ranks
// never arrived, at which step and collective, and the job ends with EXIT_HUNG.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define COMM_DEFAULT_TIMEOUT_S 300.0

void comm_init(int *argc, char ***argv); // also routes fatal() to MPI_Abort
int comm_rank(void);
int comm_size(void);
const char *comm_launcher(void); // "mpirun", "srun" or "singleton"
void comm_finalize(void);
_Noreturn void comm_abort(int status);

void comm_set_timeout(double seconds); // 0: wait forever
double comm_timeout(void);
void comm_set_step(int64_t step); // named by the watchdog's message
// Between begin and end, waits have no deadline: every rank waits while one does long local
// work whose length has no bound (rank 0 preparing the data set).
void comm_long_wait_begin(void);
void comm_long_wait_end(void);
// Between on (1) and off (0), called at the same point on every rank: a rank's fatal error
// first asks every other rank to stop and waits (at most COMM_STOP_WAIT_S) until each has
// said it stopped, which each does in its next wait for a collective (never in the middle of
// its own writes), ending there with an error naming the failed rank; only then does the
// failed rank run its cleanups (remove the files all ranks shared) and abort the job.
#define COMM_STOP_WAIT_S 60.0
void comm_agree_on_fatal(int on);

void comm_barrier(void);
void comm_bcast(void *buf, size_t bytes, int root);
// 1 if every rank passed the same value, else 0 (on every rank).
int comm_all_equal_u64(uint64_t value);
void comm_allreduce_sum_f64(double *x, int n);
void comm_allreduce_max_f64(double *x, int n);
void comm_allreduce_sum_i64(int64_t *x, size_t n);
// Gathers `bytes` from every rank into out (size * bytes, rank order) on root.
void comm_gather_bytes(const void *in, size_t bytes, void *out, int root);
// Every rank's `bytes` (any length, also 0) concatenated in rank order, on every rank: a
// malloc'd buffer (the caller frees it) and its length in *total.
void *comm_allgatherv_bytes(const void *in, size_t bytes, size_t *total);
// Every rank sends send_counts[r] bytes (its buffer holds them concatenated in rank order) to
// rank r and receives what every rank sent it: a malloc'd buffer (the caller frees it) in
// source rank order, recv_counts[r] bytes from rank r. Each rank's total must stay < 1 GiB:
// callers exchange in bounded rounds (data prepare: a few MiB each).
void *comm_alltoallv_bytes(const void *send, const size_t *send_counts, size_t *recv_counts);
// The rank holding the smallest (key, tie) pair over all ranks (key compared first, then
// tie; then the lower rank), the same answer on every rank. A rank with nothing to offer
// passes key = +INFINITY.
int comm_argmin_rank(double key, uint64_t tie);

// Bucketed, non-blocking gradient allreduce (sum, in place) over one float buffer.
typedef struct GradReducer GradReducer;
// header_len doubles travel with every step: the first header_len - 2 are summed, the
// last two (non-finite flag, stop flag) are reduced with MAX.
GradReducer *comm_reducer_create(float *grads, int n_buckets, const size_t *offsets,
                                 const size_t *counts, int header_len);
void comm_reducer_free(GradReducer *r);
void comm_reducer_start(GradReducer *r, int bucket); // begin reducing one bucket
void comm_reducer_progress(GradReducer *r);          // let outstanding reductions advance
// Reduces the header, waits for every bucket; header is replaced by the global values.
void comm_reducer_finish(GradReducer *r, double *header);
// Seconds spent blocked in this module since the last call (then reset).
double comm_take_wait_seconds(void);

// Where the ranks run (placement.c). Collective, once at start: gathers each rank's host
// name, machine (kernel boot id: namespaces and containers of one machine share it) and CPU
// affinity; rank 0 warns when bound ranks of one machine overlap with more ranks than CPUs
// (they take turns on a core). Returns the number of distinct host names.
int comm_placement_check(void);
