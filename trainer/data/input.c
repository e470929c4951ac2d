// input.c: see input.h.
#include "input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "erasure.h"
#include "rowparse.h"
#include "userkey.h"
#include "util.h"
#include "vocab.h"

typedef struct {
    uint64_t user, seq;
    double time;
    int32_t action, cat[CFG_LIST_MAX];
    float num[CFG_LIST_MAX];
} Ev;

static int by_user_time(const void *a, const void *b) {
    const Ev *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

// Reads path with the experiment's columns; maps values with the training vocabularies;
// keeps users with at least min_events events whose index % size == rank.
void input_csv_to_shard(const Config *cfg, const DataMeta *meta, const char *path, int min_events,
                         int rank, int size, Shard *out, long long *n_rows, long long *n_bad,
                         long long *n_unseen) {
    CsvReader *r = csv_open(path);
    if (!r) fatal("--input %s: cannot open (%s)", path, strerror(errno));
    char **f;
    int nf, rc = csv_next(r, &f, &nf);
    if (rc == 0) fatal("%s:1: empty file (expected a header row)", path);
    if (rc < 0) fatal("%s:%lld: %s", path, csv_line(r), csv_error(r));
    RowParser rp;
    row_parser_init(&rp, cfg, path, "--input", f, nf);
    StrTable vt[1 + CFG_LIST_MAX];
    for (uint32_t v = 0; v <= meta->n_cat; v++) {
        strtab_init(&vt[v]);
        for (int i = 0; i < meta->vocab_size[v]; i++)
            strtab_intern(&vt[v], meta->vocab[v][i], strlen(meta->vocab[v][i]));
    }
    UserKey key;
    userkey_load(cfg, &key);
    Erasure erasure; // the experiment's erasure list and consent column apply here too
    erasure_load(&erasure, cfg, &key);
    BadRows bad = {cfg, 0, 0};
    Ev *ev = NULL;
    size_t n = 0, cap = 0;
    Row row;
    char why[512];
    *n_rows = 0;
    for (uint32_t v = 0; v <= meta->n_cat; v++) n_unseen[v] = 0;
    while ((rc = csv_next(r, &f, &nf)) != 0) {
        ++*n_rows;
        if (rc == -2) fatal("%s:%lld: %s", path, csv_line(r), csv_error(r));
        if (rc < 0) {
            bad_row_report(&bad, path, csv_line(r), csv_error(r));
            continue;
        }
        if (row_parse(&rp, f, nf, &row, why, sizeof why) != 0) {
            bad_row_report(&bad, path, csv_line(r), why);
            continue;
        }
        const uint64_t uh = userkey_hash_id(&key, row.user, strlen(row.user));
        if (!row.consent || erasure_has(&erasure, uh)) continue;
        if (n == cap) ev = xrealloc(ev, sizeof(Ev) * (cap = cap ? cap * 2 : 4096));
        Ev *e = &ev[n];
        e->user = uh;
        e->seq = n++;
        e->time = row.time;
        // Ids of the training vocabulary; a value it never saw is 0 (<unk>). Interning an
        // unseen value gives it an id beyond the vocabulary, hence the bound check.
        int a = strtab_intern(&vt[0], row.action, strlen(row.action));
        e->action = a < meta->vocab_size[0] ? a : 0;
        n_unseen[0] += a >= meta->vocab_size[0];
        for (uint32_t c = 0; c < meta->n_cat; c++) {
            int id = strtab_intern(&vt[1 + c], row.cat[c], strlen(row.cat[c]));
            e->cat[c] = id < meta->vocab_size[1 + c] ? id : 0;
            n_unseen[1 + c] += id >= meta->vocab_size[1 + c];
        }
        for (uint32_t k = 0; k < meta->n_num; k++) e->num[k] = (float)row.num[k];
    }
    csv_close(r);
    if (rank == 0) row_parser_notes(&rp, path);
    erasure_free(&erasure);
    for (uint32_t v = 0; v <= meta->n_cat; v++) strtab_free(&vt[v]);
    *n_bad = (long long)bad.count;
    if (n > 1) qsort(ev, n, sizeof(Ev), by_user_time); // ev is NULL for a file without rows
    const int C = (int)meta->n_cat, N = (int)meta->n_num;
    const uint32_t eb = shard_event_bytes(C, N);
    memset(out, 0, sizeof *out);
    out->events = xalloc_aligned(n * eb + 8);
    out->users = xmalloc(sizeof(ShardUser) * (n + 1));
    uint64_t n_users = 0, n_events = 0, user_index = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ev[j].user == ev[i].user) j++;
        int mine = (int)(user_index++ % (uint64_t)size) == rank;
        if ((int)(j - i) >= min_events && mine) {
            out->users[n_users++] = (ShardUser){ev[i].user, n_events, (uint32_t)(j - i), 0};
            for (size_t k = i; k < j; k++, n_events++) {
                uint8_t *e = out->events + n_events * eb;
                *(double *)e = ev[k].time;
                *(int32_t *)(e + 8) = ev[k].action;
                for (int c = 0; c < C; c++) ((int32_t *)(e + 12))[c] = ev[k].cat[c];
                for (int q = 0; q < N; q++) ((float *)(e + 12 + 4 * C))[q] = ev[k].num[q];
            }
        }
        i = j;
    }
    free(ev);
    out->hdr.n_users = n_users, out->hdr.n_events = n_events, out->hdr.event_bytes = eb;
    out->hdr.n_cat = (uint32_t)C, out->hdr.n_num = (uint32_t)N;
}
