// ingest_exchange.c: what the ranks of a parallel prepare exchange (see ingest_int.h):
// byte ranges of the inputs and their line numbers, records in bounded rounds, and the
// merge of what each rank counted (rows, vocabularies, erasure, consent, time notes, users
// in two splits), in an order that makes the result the same for any number of ranks.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm.h"
#include "csv.h"
#include "ingest_int.h"
#include "util.h"

// ---------------------------------------------------------------- reductions

void ingest_sum_u64(const Ingest *g, uint64_t *x, size_t n) {
    if (g->size > 1) comm_allreduce_sum_i64((int64_t *)x, n); // wraps like uint64_t
}

void *ingest_gather_all(const Ingest *g, const void *in, size_t bytes, size_t *total) {
    if (g->size > 1) return comm_allgatherv_bytes(in, bytes, total);
    void *out = xmalloc(bytes ? bytes : 1);
    if (bytes) memcpy(out, in, bytes);
    *total = bytes;
    return out;
}

void ingest_barrier(const Ingest *g) {
    if (g->size > 1) comm_barrier();
}

void ingest_min_nonzero_u64(const Ingest *g, uint64_t *x, size_t n) {
    if (g->size == 1) return;
    size_t total;
    uint64_t *all = ingest_gather_all(g, x, n * sizeof(uint64_t), &total);
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < g->size; r++) {
            uint64_t v = all[(size_t)r * n + i];
            if (v && (!x[i] || v < x[i])) x[i] = v;
        }
    free(all);
}

// ---------------------------------------------------------------- records in rounds

void exchange_init(Exchange *x, const Ingest *g, size_t item_bytes, ExchangeSink sink, void *ctx) {
    memset(x, 0, sizeof *x);
    x->rank = g->rank, x->size = g->size;
    x->item_bytes = item_bytes, x->sink = sink, x->ctx = ctx;
    // A quarter of data.prepare_mem_mb, at most 16 MiB, sent per round by each rank.
    size_t cap = g->mem_bytes / 4;
    cap = cap < (64 << 10) ? (64 << 10) : cap > (16 << 20) ? (16 << 20) : cap;
    x->cap = cap / item_bytes * item_bytes;
    x->buf = xcalloc((size_t)x->size, sizeof(unsigned char *));
    x->len = xcalloc((size_t)x->size, sizeof(size_t));
    x->buf_cap = xcalloc((size_t)x->size, sizeof(size_t));
}

// One round: every rank sends what it holds; `more`: this rank will send again. Returns
// whether any rank will.
static int exchange_round(Exchange *x, int more) {
    unsigned char *send = xmalloc(x->total ? x->total : 1);
    size_t off = 0, *rc = xmalloc(sizeof(size_t) * (size_t)x->size);
    for (int r = 0; r < x->size; r++) {
        if (x->len[r]) memcpy(send + off, x->buf[r], x->len[r]);
        off += x->len[r];
    }
    unsigned char *recv = comm_alltoallv_bytes(send, x->len, rc);
    free(send);
    off = 0;
    for (int r = 0; r < x->size; r++) { // in rank order
        if (rc[r]) x->sink(x->ctx, recv + off, rc[r]);
        off += rc[r];
        x->len[r] = 0;
    }
    x->total = 0;
    free(recv), free(rc);
    int64_t m = more;
    comm_allreduce_sum_i64(&m, 1);
    return m > 0;
}

void exchange_put(Exchange *x, int dest, const void *item) {
    if (dest == x->rank) { // this rank's own: no copy
        x->sink(x->ctx, item, x->item_bytes);
        return;
    }
    if (x->len[dest] + x->item_bytes > x->buf_cap[dest]) {
        x->buf_cap[dest] = x->buf_cap[dest] ? 2 * x->buf_cap[dest] : 4096;
        x->buf[dest] = xrealloc(x->buf[dest], x->buf_cap[dest]);
    }
    memcpy(x->buf[dest] + x->len[dest], item, x->item_bytes);
    x->len[dest] += x->item_bytes;
    x->total += x->item_bytes;
    if (x->total >= x->cap) exchange_round(x, 1);
}

void exchange_finish(Exchange *x) {
    if (x->size > 1)
        while (exchange_round(x, 0)) {
        }
    for (int r = 0; r < x->size; r++) free(x->buf[r]);
    free(x->buf), free(x->len), free(x->buf_cap);
    memset(x, 0, sizeof *x);
}

// ---------------------------------------------------------------- byte ranges

static int is_gzip(const char *path) {
    unsigned char m[2] = {0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0; // read_input names the error
    size_t n = fread(m, 1, 2, f);
    fclose(f);
    return n == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

// Offset just after the header row (the file's size when there is none).
static long long header_end(const char *path, long long size) {
    CsvReader *r = csv_open(path);
    if (!r) return size;
    char **f;
    int nf;
    long long end = csv_next(r, &f, &nf) == 1 ? csv_tell(r) : size;
    csv_close(r);
    return end;
}

// The first line start at or after `at`, not before `floor` (the end of the header).
static long long line_start(int fd, long long at, long long floor, long long size) {
    if (at <= floor) return floor;
    char buf[1 << 16];
    for (long long pos = at - 1; pos < size;) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)pos);
        if (n <= 0) break;
        char *nl = memchr(buf, '\n', (size_t)n);
        if (nl) return pos + (nl - buf) + 1;
        pos += n;
    }
    return size;
}

static uint64_t count_newlines(int fd, long long from, long long to) {
    uint64_t n = 0;
    char *buf = xmalloc(1 << 20);
    for (long long pos = from; pos < to;) {
        size_t want = (size_t)(to - pos) < (1 << 20) ? (size_t)(to - pos) : (1 << 20);
        ssize_t got = pread(fd, buf, want, (off_t)pos);
        if (got <= 0) break;
        for (char *p = buf, *end = buf + got; (p = memchr(p, '\n', (size_t)(end - p))); p++) n++;
        pos += got;
    }
    free(buf);
    return n;
}

// Each plain input in P ranges split at line starts after the header (rank r from about
// r/P of the file); line numbers from the newlines of the ranges before (one allgather);
// gzip inputs whole, round robin. One rank: every input whole.
void plan_ranges(Ingest *g) {
    const int n = g->n_inputs, P = g->size;
    g->ranges = xcalloc((size_t)n, sizeof(InputRange));
    uint64_t *lines = xcalloc((size_t)n, sizeof(uint64_t));
    int gz_seen = 0;
    for (int i = 0; i < n; i++) {
        InputRange *rg = &g->ranges[i];
        const char *path = g->inputs[i].path;
        struct stat st;
        int fd = P > 1 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (P == 1 || fd < 0 || fstat(fd, &st) != 0 || is_gzip(path)) {
            int owner = P == 1 || fd < 0 ? 0 : gz_seen++ % P; // an unreadable file: rank 0 says so
            rg->whole = 1;
            rg->begin = owner == g->rank ? 0 : -1;
            rg->header_here = owner == g->rank;
            if (fd >= 0) close(fd);
            continue;
        }
        long long size = (long long)st.st_size, h = header_end(path, size);
        long long b0 = line_start(fd, size / P * g->rank + size % P * g->rank / P, h, size);
        long long r1 = g->rank + 1, b1 = r1 == P ? size : line_start(fd, size / P * r1 + size % P * r1 / P, h, size);
        rg->header_here = g->rank == 0;
        rg->begin = b0 < b1 ? b0 : -1, rg->end = b1;
        lines[i] = count_newlines(fd, g->rank == 0 ? 0 : b0, b1);
        if (g->rank == 0) rg->line = 1 + (long long)count_newlines(fd, 0, h);
        close(fd);
    }
    size_t total;
    uint64_t *all = ingest_gather_all(g, lines, sizeof(uint64_t) * (size_t)n, &total);
    for (int i = 0; i < n; i++) {
        if (g->ranges[i].whole || g->rank == 0) continue;
        long long line = 1;
        for (int r = 0; r < g->rank; r++) line += (long long)all[(size_t)r * n + i];
        g->ranges[i].line = line;
    }
    free(all), free(lines);
}

// ---------------------------------------------------------------- merges

static void overlap_sink(void *ctx, const unsigned char *items, size_t bytes) {
    Ingest *g = ctx;
    for (size_t off = 0; off < bytes; off += sizeof(OverlapEntry)) {
        OverlapEntry e;
        memcpy(&e, items + off, sizeof e);
        for (int s = 0; s < N_SPLITS; s++)
            if (e.first[s]) overlap_record(g, e.id, s, e.first[s]);
    }
}

void merge_overlap(Ingest *g) {
    if (g->size > 1) { // each raw id's entries to one rank, merged there
        OverlapEntry *mine = g->ids;
        size_t cap = g->ids_cap;
        g->ids = NULL, g->ids_cap = g->ids_used = 0;
        Exchange x;
        exchange_init(&x, g, sizeof(OverlapEntry), overlap_sink, g);
        for (size_t i = 0; i < cap; i++)
            if (mine[i].id) exchange_put(&x, (int)(mix64(mine[i].id >> 3) % (uint64_t)g->size), &mine[i]);
        exchange_finish(&x);
        free(mine);
    }
    overlap_count(g);
    uint64_t sums[5] = {g->overlap_users, g->overlap_pair[0], g->overlap_pair[1],
                        g->overlap_pair[2], g->overlap_pair[3]};
    ingest_sum_u64(g, sums, 5);
    g->overlap_users = sums[0];
    for (int k = 0; k < 4; k++) g->overlap_pair[k] = sums[1 + k];
    ingest_min_nonzero_u64(g, &g->overlap_first, 1);
}

// The time notes of every rank's part of each file, summed per file and said by rank 0 (the
// first implausible time is the one of the lowest rank: ranges are in file order).
static void merge_notes(Ingest *g) {
    size_t total;
    TimeNotes *all = ingest_gather_all(g, g->notes, sizeof(TimeNotes) * (size_t)g->n_inputs, &total);
    for (int i = 0; g->rank == 0 && i < g->n_inputs; i++) {
        RowParser rp;
        memset(&rp, 0, sizeof rp);
        rp.cfg = g->cfg, rp.notes = &rp.notes_store;
        for (int r = 0; r < g->size; r++) {
            const TimeNotes *t = &all[(size_t)r * g->n_inputs + i];
            if (t->implausible && !rp.notes_store.implausible)
                memcpy(rp.notes_store.first_implausible, t->first_implausible,
                       sizeof t->first_implausible);
            rp.notes_store.no_zone += t->no_zone, rp.notes_store.date_only += t->date_only;
            rp.notes_store.space += t->space, rp.notes_store.implausible += t->implausible;
        }
        row_parser_notes(&rp, g->inputs[i].path);
    }
    free(all);
}

void merge_counts(Ingest *g) {
    if (g->size == 1) return; // counted whole already (and the notes said)
    merge_notes(g);
    uint64_t c[4] = {g->rows, g->bad.count, g->excluded_rows, g->consent_rows};
    ingest_sum_u64(g, c, 4);
    g->rows = c[0], g->bad.count = c[1], g->excluded_rows = c[2], g->consent_rows = c[3];
    if ((long long)g->bad.count > (long long)g->cfg->data.max_bad_rows)
        fatal("%llu bad rows in all: more than data.max_bad_rows=%lld; stopping",
              (unsigned long long)g->bad.count, (long long)g->cfg->data.max_bad_rows);
    if (g->erasure.hit) { // a listed user seen by any rank
        size_t n = (size_t)g->erasure.lines + 1;
        uint64_t *hit = xcalloc(n, sizeof(uint64_t));
        for (size_t i = 0; i < n; i++) hit[i] = g->erasure.hit[i];
        ingest_sum_u64(g, hit, n);
        for (size_t i = 0; i < n; i++) g->erasure.hit[i] = hit[i] > 0;
        free(hit);
    }
    // Users with a row dropped for consent: the union of every rank's set.
    U64Set *s = &g->consent_users;
    uint64_t *mine = xmalloc(sizeof(uint64_t) * (s->n + 1));
    size_t n = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i]) mine[n++] = s->slot[i];
    if (s->has_zero) mine[n++] = 0;
    size_t total;
    uint64_t *all = ingest_gather_all(g, mine, n * sizeof(uint64_t), &total);
    u64set_free(s);
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < total / sizeof(uint64_t); i++) u64set_add(s, all[i]);
    free(all), free(mine);
}

// One table as bytes: u32 n, then per id u32 len, the bytes, i64 training count.
static unsigned char *table_bytes(const StrTable *t, size_t *len) {
    size_t n = 4;
    for (int id = 0; id < t->n; id++) n += 12 + t->lens[id];
    unsigned char *b = xmalloc(n), *p = b;
    uint32_t k = (uint32_t)t->n;
    memcpy(p, &k, 4), p += 4;
    for (int id = 0; id < t->n; id++) {
        memcpy(p, &t->lens[id], 4), p += 4;
        memcpy(p, strtab_str(t, id), t->lens[id]), p += t->lens[id];
        memcpy(p, &t->train_count[id], 8), p += 8;
    }
    *len = n;
    return b;
}

// Every rank's values interned in rank order into one table, training counts summed; the
// vocabulary built from it (by count, then bytes) is the same for any number of ranks.
void merge_vocab(Ingest *g) {
    for (int c = 0; c <= g->n_cat; c++) {
        const StrTable *mine = c == 0 ? &g->actions : &g->cats[c - 1];
        size_t len, total;
        unsigned char *b = table_bytes(mine, &len);
        unsigned char *all = ingest_gather_all(g, b, len, &total), *p = all;
        free(b);
        StrTable *t = &g->merged[c];
        strtab_init(t);
        g->trans[c] = xcalloc((size_t)g->size, sizeof(int32_t *));
        for (int r = 0; r < g->size; r++) {
            uint32_t n, l;
            memcpy(&n, p, 4), p += 4;
            g->trans[c][r] = xmalloc(sizeof(int32_t) * (n + 1));
            for (uint32_t id = 0; id < n; id++) {
                int64_t count;
                memcpy(&l, p, 4), p += 4;
                int gid = strtab_intern(t, (const char *)p, l);
                p += l;
                memcpy(&count, p, 8), p += 8;
                t->train_count[gid] += count;
                g->trans[c][r][id] = gid;
            }
        }
        free(all);
    }
}
