// ingest_sort.c: pass 2a of `data prepare` (ingest_int.h): each of this rank's buckets sorted
// by (user, time, seq), in memory or, beyond data.prepare_mem_mb, as sorted runs on disk
// merged into one file; its users counted and checked; the training statistics (per bucket
// by its owner, merged in bucket order, so they are the same numbers for any number of ranks).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest_int.h"
#include "util.h"

static int by_user_time_seq(const void *a, const void *b) {
    const unsigned char *x = a, *y = b;
    if (REC_USER(x) != REC_USER(y)) return REC_USER(x) < REC_USER(y) ? -1 : 1;
    if (REC_TIME(x) != REC_TIME(y)) return REC_TIME(x) < REC_TIME(y) ? -1 : 1;
    return REC_SEQ(x) < REC_SEQ(y) ? -1 : (REC_SEQ(x) > REC_SEQ(y));
}

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = xfopen(path, "wb");
    xfwrite(data, n, f, path);
    xfclose(f, path);
}

// Sorted runs of `run` bytes (files SUFFIX .run-K) merged into bucket b's .sorted file.
static void external_sort(const Ingest *g, int b, FILE *in, size_t run) {
    const size_t rb = g->rec_bytes;
    char path[CFG_PATH_LEN + 96];
    unsigned char *buf = xmalloc(run);
    int n_runs = 0;
    for (size_t got; (got = fread(buf, 1, run, in)) > 0; n_runs++) {
        qsort(buf, got / rb, rb, by_user_time_seq);
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".run-%d", n_runs);
        bucket_path(g, b, suffix, path, sizeof path);
        write_all(path, buf, got);
    }
    free(buf);
    // The merge: one record of each run in memory, the smallest written next.
    FILE **f = xcalloc((size_t)n_runs + 1, sizeof(FILE *));
    unsigned char *head = xmalloc(rb * ((size_t)n_runs + 1));
    int *live = xcalloc((size_t)n_runs + 1, sizeof(int));
    for (int k = 0; k < n_runs; k++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".run-%d", k);
        bucket_path(g, b, suffix, path, sizeof path);
        f[k] = xfopen(path, "rb");
        setvbuf(f[k], NULL, _IOFBF, 1 << 14);
        unlink(path); // read on through the open file; nothing to remove on an error
        live[k] = fread(head + k * rb, rb, 1, f[k]) == 1;
    }
    bucket_path(g, b, ".sorted", path, sizeof path);
    FILE *out = xfopen(path, "wb");
    for (;;) {
        int best = -1;
        for (int k = 0; k < n_runs; k++)
            if (live[k] && (best < 0 || by_user_time_seq(head + k * rb, head + best * rb) < 0))
                best = k;
        if (best < 0) break;
        xfwrite(head + best * rb, rb, out, path);
        live[best] = fread(head + best * rb, rb, 1, f[best]) == 1;
    }
    xfclose(out, path);
    for (int k = 0; k < n_runs; k++) fclose(f[k]);
    free(f), free(head), free(live);
}

static size_t sort_budget(const Ingest *g) {
    size_t budget = g->mem_bytes / 2 / g->rec_bytes * g->rec_bytes;
    return budget < g->rec_bytes ? g->rec_bytes : budget;
}

// Bucket b into its .sorted file (the unsorted one removed). Returns the sorted records when
// they fit in memory (*n of them; the caller frees them), else NULL.
static unsigned char *sort_bucket(const Ingest *g, int b, size_t *n) {
    char path[CFG_PATH_LEN + 96], out[CFG_PATH_LEN + 96];
    bucket_path(g, b, "", path, sizeof path);
    bucket_path(g, b, ".sorted", out, sizeof out);
    const size_t budget = sort_budget(g);
    FILE *f = xfopen(path, "rb");
    if (fseek(f, 0, SEEK_END) != 0) fatal("%s: cannot seek (%s)", path, strerror(errno));
    size_t size = (size_t)ftell(f);
    rewind(f);
    if (size % g->rec_bytes) fatal("%s: temporary bucket has a partial record", path);
    unsigned char *recs = NULL;
    if (size <= budget) {
        recs = xmalloc(size ? size : 1);
        if (size && fread(recs, 1, size, f) != size)
            fatal("%s: cannot read temporary bucket (%s)", path, strerror(errno));
        qsort(recs, size / g->rec_bytes, g->rec_bytes, by_user_time_seq);
        write_all(out, recs, size);
        *n = size / g->rec_bytes;
    } else {
        external_sort(g, b, f, budget);
    }
    fclose(f);
    unlink(path);
    return recs;
}

void ustream_open_mem(UserStream *s, unsigned char *recs, size_t n, size_t rec_bytes,
                      int borrowed) {
    memset(s, 0, sizeof *s);
    s->mem = recs, s->mem_n = n, s->rb = rec_bytes, s->borrowed = borrowed;
}

void ustream_open(UserStream *s, const Ingest *g, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) fatal("%s: cannot read temporary bucket (%s)", path, strerror(errno));
    const size_t size = (size_t)st.st_size;
    if (size <= sort_budget(g)) { // whole, when it fits (in a buffer of its exact size)
        unsigned char *recs = xmalloc(size ? size : 1);
        FILE *f = xfopen(path, "rb");
        if (size && fread(recs, 1, size, f) != size)
            fatal("%s: cannot read temporary bucket (%s)", path, strerror(errno));
        fclose(f);
        ustream_open_mem(s, recs, size / g->rec_bytes, g->rec_bytes, 0);
        return;
    }
    memset(s, 0, sizeof *s);
    s->f = xfopen(path, "rb");
    setvbuf(s->f, NULL, _IOFBF, 1 << 16);
    s->path = path, s->rb = g->rec_bytes;
    s->next = xmalloc(s->rb);
    s->have_next = fread(s->next, s->rb, 1, s->f) == 1;
}

int ustream_next(UserStream *s) {
    s->n = 0;
    if (s->mem) {
        if (s->mem_pos >= s->mem_n) return 0;
        s->recs = s->mem + s->mem_pos * s->rb;
        uint64_t user = REC_USER(s->recs);
        while (s->mem_pos + s->n < s->mem_n && REC_USER(s->recs + s->n * s->rb) == user) s->n++;
        s->mem_pos += s->n;
        return 1;
    }
    if (!s->have_next) return 0;
    uint64_t user = REC_USER(s->next);
    while (s->have_next && REC_USER(s->next) == user) {
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 256;
            s->own = xrealloc(s->own, s->cap * s->rb);
        }
        memcpy(s->own + s->n++ * s->rb, s->next, s->rb);
        s->have_next = fread(s->next, s->rb, 1, s->f) == 1;
    }
    if (!s->have_next && ferror(s->f)) fatal("%s: read error (%s)", s->path, strerror(errno));
    s->recs = s->own;
    return 1;
}

void ustream_close(UserStream *s) {
    if (s->f) fclose(s->f);
    free(s->own), free(s->next);
    if (!s->borrowed) free(s->mem);
    memset(s, 0, sizeof *s);
}

static int by_seq(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : (x[0] > y[0]);
}

// One user's n records, sorted by (time, seq): events at the same time as the previous one,
// and events earlier than the user's previous row in the file.
static void check_order(Ingest *g, const unsigned char *recs, size_t n) {
    const size_t rb = g->rec_bytes;
    uint64_t dups = 0, descents = 0;
    for (size_t k = 1; k < n; k++) {
        const unsigned char *a = recs + (k - 1) * rb, *b = recs + k * rb;
        if (REC_TIME(a) == REC_TIME(b)) {
            dups++;
            if (!g->dup_first || REC_SEQ(b) < g->dup_first) g->dup_first = REC_SEQ(b);
        }
        descents += REC_SEQ(b) < REC_SEQ(a);
    }
    if (dups) g->dup_events += dups, g->dup_users++;
    if (!descents) return; // file order is time order
    if (2 * n > g->scratch_cap) {
        g->scratch_cap = 4 * n;
        g->scratch = xrealloc(g->scratch, sizeof(uint64_t) * g->scratch_cap);
    }
    for (size_t k = 0; k < n; k++) {
        const unsigned char *r = recs + k * rb;
        g->scratch[2 * k] = REC_SEQ(r);
        memcpy(&g->scratch[2 * k + 1], &REC_TIME(r), sizeof(double));
    }
    qsort(g->scratch, n, 2 * sizeof(uint64_t), by_seq);
    uint64_t negative = 0;
    for (size_t k = 1; k < n; k++) {
        double t0, t1;
        memcpy(&t0, &g->scratch[2 * k - 1], sizeof t0);
        memcpy(&t1, &g->scratch[2 * k + 1], sizeof t1);
        // Only within one file: parts of one input are not ordered by time between them.
        if (t1 < t0 && SEQ_INPUT(g->scratch[2 * k]) == SEQ_INPUT(g->scratch[2 * k - 2])) {
            negative++;
            if (!g->unsorted_first || g->scratch[2 * k] < g->unsorted_first)
                g->unsorted_first = g->scratch[2 * k];
        }
    }
    if (negative) g->unsorted_events += negative, g->unsorted_users++;
}

// A finding of the checks above: a warning, or the end under `key`=stop.
static void order_finding(const Ingest *g, const char *key, const char *policy, uint64_t events,
                          uint64_t users, uint64_t first, const char *what) {
    if (!events || g->rank != 0) return;
    const Input *in = &g->inputs[SEQ_INPUT(first)];
    char msg[1024];
    snprintf(msg, sizeof msg, "%llu event%s of %llu user%s %s (first: %s:%lld)",
             (unsigned long long)events, events > 1 ? "s" : "", (unsigned long long)users,
             users > 1 ? "s" : "", what, in->path, SEQ_LINE(first));
    if (strcmp(policy, "stop") == 0) fatal("%s (%s=stop; warn keeps them)", msg, key);
    warnf("data: %s (%s=warn; stop refuses such data)", msg, key);
}

typedef struct {
    double n, mean, m2;
} Welford;

static void welford_add(Welford *w, double x) {
    w->n += 1;
    double d = x - w->mean;
    w->mean += d / w->n;
    w->m2 += d * (x - w->mean);
}
static double welford_std(const Welford *w) {
    double sd = w->n > 1 ? sqrt(w->m2 / (w->n - 1)) : 1.0;
    return sd > 1e-8 ? sd : 1.0; // a constant column normalises to 0, not to inf
}

// A training user's values into its bucket's statistics: per event after the first
// log(gap + offset), and the transformed numeric values (w: 1 + n_num of them).
static void put_stats(const Ingest *g, Welford *w, const unsigned char *recs, size_t n) {
    const double delta = g->cfg->model.gap_offset;
    for (size_t k = 0; k < n; k++) {
        const unsigned char *r = recs + k * g->rec_bytes;
        if (k) welford_add(&w[0], log(REC_TIME(r) - REC_TIME(r - g->rec_bytes) + delta));
        const double *num = (const double *)(r + g->num_offset);
        for (int q = 0; q < g->n_num; q++)
            welford_add(&w[1 + q], g->log1p_numeric ? log1p(num[q]) : num[q]);
    }
}

// b into a (Chan, Golub and LeVeque's pairwise update).
static void welford_merge(Welford *a, const Welford *b) {
    if (b->n == 0) return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    const double n = a->n + b->n, d = b->mean - a->mean;
    a->mean += d * (b->n / n);
    a->m2 += b->m2 + d * d * (a->n * b->n / n);
    a->n = n;
}

// The statistics of every bucket (w: n_buckets x (1 + n_num), this rank's filled) from
// their owners, merged in bucket order: each bucket's are the same for any number of ranks
// (its users in the same order), so the merged ones are too.
static void gather_stats(const Ingest *g, DataMeta *meta, const Welford *w) {
    const size_t per = (size_t)(1 + g->n_num), bytes = sizeof(Welford) * per * (size_t)g->n_buckets;
    size_t total;
    Welford *all = ingest_gather_all(g, w, bytes, &total);
    Welford sum[1 + CFG_LIST_MAX];
    memset(sum, 0, sizeof sum);
    for (int b = 0; b < g->n_buckets; b++) {
        const Welford *wb = all + (size_t)(b % g->size) * per * (size_t)g->n_buckets + (size_t)b * per;
        for (size_t q = 0; q < per; q++) welford_merge(&sum[q], &wb[q]);
    }
    free(all);
    meta->loggap_mean = sum[0].n > 0 ? sum[0].mean : 0;
    meta->loggap_std = welford_std(&sum[0]);
    for (int q = 0; q < g->n_num; q++) {
        meta->num_mean[q] = sum[1 + q].mean;
        meta->num_std[q] = welford_std(&sum[1 + q]);
    }
}

// This rank's buckets sorted, their users found and checked; the counts and checks over all
// ranks; the statistics (every rank). Returns this rank's users, in bucket order (*n of them).
UserRec *sort_buckets(Ingest *g, DataMeta *meta, size_t *n_out) {
    UserRec *users = NULL;
    size_t n_users = 0, cap_users = 0;
    const Config *cfg = g->cfg;
    Welford *stats = xcalloc((size_t)g->n_buckets * (1 + (size_t)g->n_num), sizeof(Welford));
    for (int b = g->rank; b < g->n_buckets; b += g->size) {
        // In memory: sorted in place and kept for the write pass; else through the files.
        size_t n_sorted = 0;
        unsigned char *sorted = store_take(g, b, &n_sorted);
        if (sorted) {
            qsort(sorted, n_sorted, g->rec_bytes, by_user_time_seq);
            g->sorted[b] = sorted, g->n_sorted[b] = n_sorted;
        } else {
            sorted = sort_bucket(g, b, &n_sorted);
        }
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, ".sorted", path, sizeof path);
        UserStream us;
        if (sorted)
            ustream_open_mem(&us, sorted, n_sorted, g->rec_bytes, g->sorted[b] != NULL);
        else
            ustream_open(&us, g, path);
        while (ustream_next(&us)) {
            int split = REC_SPLIT(us.recs);
            uint32_t n = (uint32_t)us.n;
            check_order(g, us.recs, us.n);
            if (n < (uint32_t)cfg->data.min_events) {
                meta->split[split].dropped_users++;
                continue;
            }
            if (n_users == cap_users) {
                cap_users = cap_users ? cap_users * 2 : 4096;
                users = xrealloc(users, sizeof(UserRec) * cap_users);
            }
            users[n_users++] = (UserRec){REC_USER(us.recs), n, (uint32_t)b, split, -1};
            meta->split[split].users++;
            meta->split[split].events += n;
            meta->split[split].targets += n - 1;
            if (split == SPLIT_TRAIN) put_stats(g, stats + (size_t)b * (1 + g->n_num), us.recs, us.n);
        }
        ustream_close(&us);
    }
    free(g->scratch);
    g->scratch = NULL;
    uint64_t c[5 + 4 * N_SPLITS] = {g->dup_events, g->dup_users, g->unsorted_events,
                                    g->unsorted_users};
    for (int s = 0; s < N_SPLITS; s++) {
        c[4 + 4 * s] = meta->split[s].users, c[5 + 4 * s] = meta->split[s].events;
        c[6 + 4 * s] = meta->split[s].targets, c[7 + 4 * s] = meta->split[s].dropped_users;
    }
    c[4 + 4 * N_SPLITS] = (uint64_t)g->spilled;
    ingest_sum_u64(g, c, 5 + 4 * N_SPLITS);
    g->dup_events = c[0], g->dup_users = c[1], g->unsorted_events = c[2], g->unsorted_users = c[3];
    g->spilled_ranks = c[4 + 4 * N_SPLITS];
    for (int s = 0; s < N_SPLITS; s++) {
        meta->split[s].users = c[4 + 4 * s], meta->split[s].events = c[5 + 4 * s];
        meta->split[s].targets = c[6 + 4 * s], meta->split[s].dropped_users = c[7 + 4 * s];
    }
    uint64_t firsts[2] = {g->dup_first, g->unsorted_first};
    ingest_min_nonzero_u64(g, firsts, 2);
    g->dup_first = firsts[0], g->unsorted_first = firsts[1];
    order_finding(g, "data.on_duplicate_time", cfg->data.on_duplicate_time, g->dup_events,
                  g->dup_users, g->dup_first, "share their time with the same user's previous event");
    order_finding(g, "data.on_unsorted", cfg->data.on_unsorted, g->unsorted_events,
                  g->unsorted_users, g->unsorted_first,
                  "are earlier than the same user's previous row in the file (negative gaps; "
                  "sorted by time)");
    if (meta->split[SPLIT_TRAIN].users == 0)
        fatal("no training users with at least data.min_events=%lld events in the input",
              (long long)cfg->data.min_events);
    if (meta->split[SPLIT_VALID].users == 0 && g->rank == 0)
        warnf("no validation users: validation metrics will be empty");
    gather_stats(g, meta, stats);
    free(stats);
    *n_out = n_users;
    return users;
}
