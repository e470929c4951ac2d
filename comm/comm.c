// comm.c: see comm.h.
#include "comm.h"

#include <mpi.h>
#include <sched.h>
#include <stdarg.h>
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

// ---------------------------------------------------------------- watchdog
//
// Every collective is started non-blocking and waited for here, polling MPI_Testsome: the
// main thread stays the only MPI caller (MPI_THREAD_FUNNELED), and the deadline applies to
// exactly the time this rank is blocked. A wait that sees no request complete for
// comm.timeout_s seconds fires: this rank asks every other rank, on a private communicator,
// where it is; ranks inside a wait answer at once (also before their own deadline), a rank
// that is stopped, hung in I/O or still computing does not. After a short grace period the
// rank prints who never arrived, and at which step and collective, and aborts the job with
// EXIT_HUNG. (A watchdog thread would need MPI_THREAD_MULTIPLE to call MPI_Abort, and would
// know less: only the waiting thread knows which collective it waits in.)

enum { TAG_QUERY = 7101, TAG_REPLY = 7102, TAG_STOP = 7103, TAG_STOPPED = 7104 };

typedef struct {
    int64_t seq, step;     // collective number (the same on every rank), training step
    double waited_s;       // how long the sender has been waiting in it
    char what[48];         // collective name
} WhereMsg;

static MPI_Comm g_wd_comm = MPI_COMM_NULL;
static WhereMsg *g_seen; // what each rank said (a query or an answer), during a firing
static int *g_heard;
static int *g_done_idx, g_done_cap; // MPI_Testsome's output, sized before any step

static void reserve_wait(int n) {
    if (n <= g_done_cap) return;
    g_done_idx = xrealloc(g_done_idx, sizeof(int) * (size_t)n);
    g_done_cap = n;
}
static double g_timeout_s = COMM_DEFAULT_TIMEOUT_S;
static int g_unwatched = 0;      // comm_long_wait_begin/end: the deadline is lifted
static int64_t g_seq = 0, g_step = -1;
static const char *g_what = "";
static double g_wait_start = 0;

void comm_set_timeout(double seconds) {
    g_timeout_s = seconds > 0 ? seconds : 0;
}
double comm_timeout(void) {
    return g_timeout_s;
}
void comm_set_step(int64_t step) {
    g_step = step;
}
void comm_long_wait_begin(void) {
    g_unwatched++;
}
void comm_long_wait_end(void) {
    if (g_unwatched > 0) g_unwatched--;
}

static WhereMsg where_now(void) {
    WhereMsg m;
    memset(&m, 0, sizeof m);
    m.seq = g_seq, m.step = g_step, m.waited_s = clock_s() - g_wait_start;
    snprintf(m.what, sizeof m.what, "%s", g_what);
    return m;
}

// Answers the queries of ranks whose deadline has passed, recording what they said (a query
// carries the sender's own position). Returns how many there were.
static int answer_queries(void) {
    int n = 0;
    for (;; n++) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, g_wd_comm, &flag, &st) != MPI_SUCCESS || !flag)
            return n;
        WhereMsg me = where_now();
        MPI_Recv(&g_seen[st.MPI_SOURCE], sizeof me, MPI_BYTE, st.MPI_SOURCE, TAG_QUERY, g_wd_comm,
                 MPI_STATUS_IGNORE);
        g_heard[st.MPI_SOURCE] = 1;
        MPI_Request rq;
        MPI_Isend(&me, sizeof me, MPI_BYTE, st.MPI_SOURCE, TAG_REPLY, g_wd_comm, &rq);
        MPI_Request_free(&rq); // small: sent eagerly; the job ends soon anyway
    }
}

// Polls for answers (and answers queries) for `seconds`.
static void collect_answers(double seconds) {
    double t0 = clock_s();
    while (clock_s() - t0 < seconds) {
        answer_queries();
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPLY, g_wd_comm, &flag, &st) == MPI_SUCCESS && flag) {
            MPI_Recv(&g_seen[st.MPI_SOURCE], sizeof(WhereMsg), MPI_BYTE, st.MPI_SOURCE, TAG_REPLY,
                     g_wd_comm, MPI_STATUS_IGNORE);
            g_heard[st.MPI_SOURCE] = 1;
        } else {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
}

static void append(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *out, size_t cap, const char *fmt, ...) {
    size_t used = strlen(out);
    if (used + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + used, cap - used, fmt, ap);
    va_end(ap);
}

// The deadline passed (or another waiting rank's did: `first` names it, else -1): find out
// who is where, say so, end the job.
static _Noreturn void watchdog_fire(double stalled_s, int first) {
    WhereMsg *seen = g_seen, me = where_now();
    int *heard = g_heard;
    for (int r = 0; r < g_size; r++) {
        if (r == g_rank) continue;
        MPI_Request rq;
        MPI_Isend(&me, sizeof me, MPI_BYTE, r, TAG_QUERY, g_wd_comm, &rq);
        MPI_Request_free(&rq);
    }
    // Grace for the answers: live ranks answer within milliseconds.
    collect_answers(g_timeout_s < 2 ? g_timeout_s : 2);
    char missing[512] = "", here[512] = "", elsewhere[1024] = "";
    for (int r = 0; r < g_size; r++) {
        if (r == g_rank) continue;
        if (!heard[r])
            append(missing, sizeof missing, "%s%d", missing[0] ? ", " : "", r);
        else if (seen[r].seq == me.seq)
            append(here, sizeof here, "%s%d", here[0] ? ", " : "", r);
        else
            append(elsewhere, sizeof elsewhere, "; rank %d waits in %s (collective #%lld, step %lld)",
                   r, seen[r].what, (long long)seen[r].seq, (long long)seen[r].step);
    }
    char step[48] = "before training", why[64] = "";
    if (me.step >= 0) snprintf(step, sizeof step, "at step %lld", (long long)me.step);
    if (first >= 0) snprintf(why, sizeof why, ", rank %d's deadline first", first);
    fprintf(stderr,
            "%serror: comm watchdog: no progress for %.1f s in %s (collective #%lld) %s "
            "(comm.timeout_s=%g%s): rank%s %s never arrived (stopped, hung or unreachable)%s%s%s; "
            "ending the job with status %d\n",
            log_prefix(), stalled_s, me.what, (long long)me.seq, step, g_timeout_s, why,
            strchr(missing, ',') ? "s" : "", missing[0] ? missing : "(none: all answered)",
            here[0] ? "; waiting here too: " : "", here, elsewhere, EXIT_HUNG);
    fflush(stderr);
    // The other waiting ranks print their view within the grace period of this one: give
    // them time to before the abort ends every process.
    collect_answers(1.0);
    comm_abort(EXIT_HUNG);
}

// ---------------------------------------------------------------- stopping together
//
// comm_agree_on_fatal: a failed rank's quiesce hook sends TAG_STOP to every other rank and
// waits for TAG_STOPPED (or TAG_STOP: that rank failed too) from each; a rank that finds a
// TAG_STOP in a wait ends through fatal(), whose hook answers TAG_STOPPED and then waits to be
// ended by the failed rank's abort (or, past the bound, cleans up and aborts itself).

static int g_agree = 0;      // comm_agree_on_fatal
static int g_stop_from = -1; // the failed rank that asked this one to stop

void comm_agree_on_fatal(int on) {
    g_agree = on && g_size > 1;
}

static void send_int(int to, int tag) {
    static int one = 1;
    MPI_Request rq;
    if (MPI_Isend(&one, 1, MPI_INT, to, tag, g_wd_comm, &rq) == MPI_SUCCESS) MPI_Request_free(&rq);
}

// A message with `tag` from any rank: its source, or -1.
static int take_int(int tag) {
    int flag = 0, x;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, tag, g_wd_comm, &flag, &st) != MPI_SUCCESS || !flag) return -1;
    MPI_Recv(&x, 1, MPI_INT, st.MPI_SOURCE, tag, g_wd_comm, MPI_STATUS_IGNORE);
    return st.MPI_SOURCE;
}

// In a wait: another rank failed and asks this one to stop.
static void check_stop(void) {
    int from = take_int(TAG_STOP);
    if (from < 0) return;
    g_stop_from = from;
    fatal("stopping: rank %d failed (its error is above)", from);
}

static void quiesce(void) {
    if (!g_agree) return;
    g_agree = 0; // once, also if something below fails
    const double t0 = clock_s();
    struct timespec ts = {0, 1000000};
    if (g_stop_from >= 0) { // stopped: say so, and wait for the failed rank's abort
        send_int(g_stop_from, TAG_STOPPED);
        while (clock_s() - t0 < COMM_STOP_WAIT_S) {
            int other = take_int(TAG_STOP); // another failed rank: stopped for it too
            if (other >= 0) send_int(other, TAG_STOPPED);
            nanosleep(&ts, NULL);
        }
        return;
    }
    int *stopped = xcalloc((size_t)g_size, sizeof(int)), left = g_size - 1;
    for (int r = 0; r < g_size; r++)
        if (r != g_rank) send_int(r, TAG_STOP);
    while (left > 0 && clock_s() - t0 < COMM_STOP_WAIT_S) {
        int r = take_int(TAG_STOPPED);
        if (r < 0 && (r = take_int(TAG_STOP)) >= 0) send_int(r, TAG_STOPPED); // failed too
        if (r >= 0 && !stopped[r]) stopped[r] = 1, left--;
        if (r < 0) nanosleep(&ts, NULL);
    }
    if (left > 0)
        fprintf(stderr, "%serror: %d rank%s did not stop within %.0f s; ending the job anyway\n",
                log_prefix(), left, left > 1 ? "s" : "", COMM_STOP_WAIT_S);
    free(stopped);
}

// Waits for n requests of the collective `what`. Without a deadline where the watchdog is off.
static void wait_all(MPI_Request *req, int n, const char *what) {
    g_seq++;
    if (n == 0) return;
    if ((g_timeout_s <= 0 && !g_agree) || g_size == 1) {
        check(MPI_Waitall(n, req, MPI_STATUSES_IGNORE), what);
        return;
    }
    g_what = what;
    g_wait_start = clock_s();
    double last_progress = g_wait_start;
    reserve_wait(n); // a no-op after set-up: the reducer reserved its bucket count
    for (long polls = 0;; polls++) {
        int done = 0;
        check(MPI_Testsome(n, req, &done, g_done_idx, MPI_STATUSES_IGNORE), what);
        if (done == MPI_UNDEFINED) break; // all complete
        double now = clock_s();
        if (done > 0) last_progress = now;
        // Between comm_long_wait_begin and _end (a long prepare): no deadline, but the same
        // polite polling, so a waiting rank leaves the core to the ranks still working.
        if (g_unwatched) last_progress = now;
        if (g_timeout_s > 0 && now - last_progress > g_timeout_s)
            watchdog_fire(now - last_progress, -1);
        if (g_agree && (polls & 15) == 0) check_stop();
        // Another rank's deadline passed: it asks where everyone is; this rank answers and,
        // waiting too, reports at once (so every waiting rank prints before the abort).
        if ((polls & 63) == 0 && answer_queries() > 0) {
            int first = 0;
            while (first < g_size && !g_heard[first]) first++;
            watchdog_fire(now - last_progress, first);
        }
        // Like Open MPI's own wait when cores are shared: poll, yielding the core between
        // polls; past 50 ms (a rank far behind, or gone) sleep 200 us between polls. In a
        // long wait (a prepare: ranks wait on each other often and unevenly) sleep at once.
        if (now - g_wait_start < 0.05 && !g_unwatched) {
            sched_yield();
        } else {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
    g_what = "";
}

// ---------------------------------------------------------------- set-up and collectives

void comm_init(int *argc, char ***argv) {
    int provided;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "init");
    // Errors come back to us so they can be reported with the rank before aborting.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    check(MPI_Comm_dup(MPI_COMM_WORLD, &g_wd_comm), "comm dup");
    g_seen = xcalloc((size_t)g_size, sizeof *g_seen);
    g_heard = xcalloc((size_t)g_size, sizeof *g_heard);
    g_up = 1;
    if (g_size > 1) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[rank %d] ", g_rank);
        set_log_prefix(prefix);
    }
    set_abort_hook(abort_hook);
    set_quiesce_hook(quiesce);
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
    // A watched barrier first: MPI_Finalize would wait forever for a stopped rank.
    MPI_Request rq;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &rq), "barrier");
    wait_all(&rq, 1, "final barrier");
    g_up = 0;
    set_abort_hook(NULL);
    set_quiesce_hook(NULL);
    MPI_Comm_free(&g_wd_comm);
    free(g_seen), free(g_heard), free(g_done_idx);
    g_seen = NULL, g_heard = NULL, g_done_idx = NULL, g_done_cap = 0;
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
    MPI_Request rq;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &rq), "barrier");
    wait_all(&rq, 1, "barrier");
    g_wait += clock_s() - t;
}

void comm_bcast(void *buf, size_t bytes, int root) {
    char *p = buf;
    do { // MPI counts are int: large buffers go in pieces
        int n = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
        MPI_Request rq;
        check(MPI_Ibcast(p, n, MPI_BYTE, root, MPI_COMM_WORLD, &rq), "broadcast");
        wait_all(&rq, 1, "broadcast");
        p += n;
        bytes -= (size_t)n;
    } while (bytes > 0);
}

int comm_all_equal_u64(uint64_t value) {
    uint64_t lo = value, hi = value;
    MPI_Request rq[2];
    check(MPI_Iallreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD, &rq[0]),
          "allreduce");
    check(MPI_Iallreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD, &rq[1]),
          "allreduce");
    wait_all(rq, 2, "config agreement (allreduce)");
    return lo == hi;
}

static void allreduce(void *x, int n, MPI_Datatype type, MPI_Op op, const char *what) {
    double t = clock_s();
    MPI_Request rq;
    check(MPI_Iallreduce(MPI_IN_PLACE, x, n, type, op, MPI_COMM_WORLD, &rq), what);
    wait_all(&rq, 1, what);
    g_wait += clock_s() - t;
}

void comm_allreduce_sum_f64(double *x, int n) {
    allreduce(x, n, MPI_DOUBLE, MPI_SUM, "allreduce (sum)");
}

void comm_allreduce_max_f64(double *x, int n) {
    allreduce(x, n, MPI_DOUBLE, MPI_MAX, "allreduce (max)");
}

void comm_allreduce_sum_i64(int64_t *x, size_t n) {
    do {
        int k = n > (1u << 27) ? (1 << 27) : (int)n;
        allreduce(x, k, MPI_INT64_T, MPI_SUM, "allreduce (exact sum)");
        x += k;
        n -= (size_t)k;
    } while (n > 0);
}

void *comm_allgatherv_bytes(const void *in, size_t bytes, size_t *total) {
    double t = clock_s();
    if (bytes > (size_t)1 << 30) fatal("comm_allgatherv_bytes: %zu bytes from one rank", bytes);
    int n = (int)bytes, *counts = xmalloc(sizeof(int) * (size_t)g_size);
    int *displs = xmalloc(sizeof(int) * (size_t)g_size);
    MPI_Request rq;
    check(MPI_Iallgather(&n, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD, &rq), "allgather");
    wait_all(&rq, 1, "allgather");
    size_t sum = 0;
    for (int r = 0; r < g_size; r++) {
        if (sum + (size_t)counts[r] > (size_t)1 << 30)
            fatal("comm_allgatherv_bytes: more than 1 GiB in all");
        displs[r] = (int)sum;
        sum += (size_t)counts[r];
    }
    char *out = xmalloc(sum ? sum : 1);
    check(MPI_Iallgatherv(in, n, MPI_BYTE, out, counts, displs, MPI_BYTE, MPI_COMM_WORLD, &rq),
          "allgatherv");
    wait_all(&rq, 1, "allgatherv");
    free(counts);
    free(displs);
    *total = sum;
    g_wait += clock_s() - t;
    return out;
}

void *comm_alltoallv_bytes(const void *send, const size_t *send_counts, size_t *recv_counts) {
    double t = clock_s();
    int *sc = xmalloc(sizeof(int) * 4 * (size_t)g_size), *sd = sc + g_size, *rc = sd + g_size,
        *rd = rc + g_size;
    size_t s_sum = 0, r_sum = 0;
    for (int r = 0; r < g_size; r++) {
        sd[r] = (int)s_sum;
        s_sum += send_counts[r];
        sc[r] = (int)send_counts[r];
        if (s_sum >= (size_t)1 << 30) fatal("comm_alltoallv_bytes: 1 GiB or more from one rank");
    }
    MPI_Request rq;
    check(MPI_Ialltoall(sc, 1, MPI_INT, rc, 1, MPI_INT, MPI_COMM_WORLD, &rq), "alltoall");
    wait_all(&rq, 1, "alltoall");
    for (int r = 0; r < g_size; r++) {
        rd[r] = (int)r_sum;
        r_sum += (size_t)rc[r];
        recv_counts[r] = (size_t)rc[r];
        if (r_sum >= (size_t)1 << 30) fatal("comm_alltoallv_bytes: 1 GiB or more to one rank");
    }
    char *out = xmalloc(r_sum ? r_sum : 1);
    check(MPI_Ialltoallv(send, sc, sd, MPI_BYTE, out, rc, rd, MPI_BYTE, MPI_COMM_WORLD, &rq),
          "alltoallv");
    wait_all(&rq, 1, "alltoallv");
    free(sc);
    g_wait += clock_s() - t;
    return out;
}

int comm_argmin_rank(double key, uint64_t tie) {
    struct {
        double key;
        uint64_t tie;
    } mine = {key, tie}, *all = xmalloc(sizeof mine * (size_t)g_size);
    double t = clock_s();
    MPI_Request rq;
    check(MPI_Iallgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                         MPI_COMM_WORLD, &rq),
          "allgather");
    wait_all(&rq, 1, "allgather");
    g_wait += clock_s() - t;
    int best = 0;
    for (int r = 1; r < g_size; r++)
        if (all[r].key < all[best].key || (all[r].key == all[best].key && all[r].tie < all[best].tie))
            best = r;
    free(all);
    return best;
}

void comm_gather_bytes(const void *in, size_t bytes, void *out, int root) {
    if (bytes > (1u << 30)) fatal("comm_gather_bytes: %zu bytes per rank is too large", bytes);
    MPI_Request rq;
    check(MPI_Igather(in, (int)bytes, MPI_BYTE, out, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD,
                      &rq),
          "gather");
    wait_all(&rq, 1, "gather");
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
    reserve_wait(n_buckets + 1);
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
        wait_all(r->req, r->n_req, "gradient allreduce");
        memcpy(header, r->header, sizeof(double) * (size_t)r->header_len);
    }
    r->n_req = 0;
    g_wait += clock_s() - t;
}
