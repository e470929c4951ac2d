// ingest_int.h: what the files of `data prepare` share (ingest.c reads the inputs,
// ingest_exchange.c moves records between ranks and merges what ranks counted,
// ingest_sort.c sorts the buckets, ingest_write.c balances users and writes the shard set).
//
// With P ranks (P divides V): every rank reads its byte range of each plain input and whole
// gzip inputs; a record goes to the rank owning its bucket (bucket b = mix64(user) % n_buckets,
// owned by rank b % P); owners sort their buckets; every rank learns every user's (bucket,
// hash, events) and balances them over the virtual shards the same way; owners write their
// users' events straight into the shard files of a temporary directory shared by all ranks;
// rank 0 commits the set once every rank has finished. The shards and dataset.meta are the
// same bytes for any P, and the same as those of the one-process prepare before it.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "erasure.h"
#include "hash.h"
#include "ingest.h"
#include "rowparse.h"
#include "vocab.h"

// A record's seq: its input's index and the line it starts on; increasing in reading order.
#define SEQ_MAKE(input, line) (((uint64_t)(input) << 48) | (uint64_t)(line))
#define SEQ_INPUT(seq)        ((int)((seq) >> 48))
#define SEQ_LINE(seq)         ((long long)((seq) & ((1ULL << 48) - 1)))

// A record: u64 user, u64 seq, f64 time, i16 split, u16 origin (the rank that read it: its
// table ids are that rank's), i32 action (table id), i32 cat[n_cat] (table ids), padding to
// 8, f64 num[n_num].
#define REC_USER(r)   (*(uint64_t *)(r))
#define REC_SEQ(r)    (*(uint64_t *)((r) + 8))
#define REC_TIME(r)   (*(double *)((r) + 16))
#define REC_SPLIT(r)  (*(int16_t *)((r) + 24))
#define REC_ORIGIN(r) (*(uint16_t *)((r) + 26))
#define REC_ACTION(r) (*(int32_t *)((r) + 28))
#define REC_CAT(r, c) (((int32_t *)((r) + 32))[c])

// One user of the whole input (every rank holds all of them after pass 2a).
typedef struct {
    uint64_t hash;
    uint32_t n_events, bucket;
    int32_t split, shard;
} UserRec;

// Users in two given splits, per raw-id hash: the first seq of each split (0: none).
typedef struct {
    uint64_t id; // raw hash & ~7 (never 0)
    uint64_t first[3];
} OverlapEntry;

// A rank's byte range of one input (plain files), or the whole file (gzip: one rank).
typedef struct {
    long long begin, end, line; // [begin, end) from line `line`; begin < 0: not this rank's
    int whole;                  // a gzip file read whole by this rank
    int header_here;            // this rank reads the file's start (BOM note, header errors)
} InputRange;

// A bucket in memory: n records in chunks of Ingest.chunk_bytes.
typedef struct {
    unsigned char **chunk;
    size_t n_chunks, cap_chunks, n;
} BucketMem;

typedef struct {
    const Config *cfg;
    const UserKey *key;
    int rank, size;       // the ranks preparing together (size 1: this process alone)
    size_t mem_bytes;     // data.prepare_mem_mb
    int n_cat, n_num, log1p_numeric;
    size_t rec_bytes, num_offset;
    int n_buckets;
    // This rank's buckets (b % size == rank) while pass 1 fills them: in memory (mem) within
    // half of data.prepare_mem_mb, else (spilled) files; after pass 2a, those in memory
    // sorted (sorted[b], n_sorted[b] records) until the write pass takes them.
    FILE **bucket;
    BucketMem *mem;
    size_t mem_used, mem_budget, chunk_bytes; // bytes
    int spilled;
    uint64_t spilled_ranks; // after pass 2a: how many ranks spilled
    unsigned char **sorted;
    size_t *n_sorted;
    char tmp_dir[CFG_PATH_LEN + 64];
    StrTable actions, cats[CFG_LIST_MAX];
    uint64_t rows;
    BadRows bad;
    Erasure erasure;                      // data.exclude_users
    uint64_t excluded_rows, consent_rows; // rows dropped by the list, by data.consent_col
    U64Set consent_users;                 // users with a row dropped for consent
    const Input *inputs; // for messages: a record's seq names its input and line
    int n_inputs;
    InputRange *ranges;  // n_inputs: this rank's part of each
    TimeNotes *notes;    // n_inputs: the time notes of this rank's part of each
    // Users in two given splits (only while reading given split files): open addressing.
    OverlapEntry *ids;
    size_t ids_cap, ids_used;
    uint64_t overlap_users, overlap_pair[4], overlap_first; // pair index: sum of the splits
    // Order checks of pass 2a: counts and the earliest example (a seq).
    uint64_t dup_events, dup_users, dup_first, unsorted_events, unsorted_users, unsorted_first;
    uint64_t *scratch; // (seq, time bits) pairs of one user, sorted by seq
    size_t scratch_cap;
    // After the vocabulary merge: per rank, its table id -> the merged table's id.
    int32_t **trans[1 + CFG_LIST_MAX];
    StrTable merged[1 + CFG_LIST_MAX];
} Ingest;

static inline int bucket_of(const Ingest *g, uint64_t user) {
    return (int)(mix64(user) % (uint64_t)g->n_buckets);
}
void bucket_path(const Ingest *g, int b, const char *suffix, char *out, size_t cap);

// ingest.c
void overlap_record(Ingest *g, uint64_t raw_hash, int split, uint64_t seq);
void overlap_count(Ingest *g); // from the entries this rank holds
void report_overlap(const Ingest *g);

// ingest_store.c: this rank's buckets during pass 1 (see Ingest.mem).
void store_open(Ingest *g);
void store_put(Ingest *g, const unsigned char *rec); // may spill every bucket to its file
void store_close(Ingest *g);                         // pass 1 is over
// Bucket b's records in one malloc'd array (*n of them), its chunks freed; NULL: spilled.
unsigned char *store_take(Ingest *g, int b, size_t *n);
void store_free(Ingest *g);

// ingest_exchange.c: records to their bucket's rank, in rounds of at most ~cap bytes.
typedef void (*ExchangeSink)(void *ctx, const unsigned char *items, size_t bytes);
typedef struct {
    int rank, size;
    size_t item_bytes, cap, total;
    unsigned char **buf;
    size_t *len, *buf_cap;
    ExchangeSink sink;
    void *ctx;
} Exchange;
void exchange_init(Exchange *x, const Ingest *g, size_t item_bytes, ExchangeSink sink, void *ctx);
void exchange_put(Exchange *x, int dest, const void *item); // may run a round
void exchange_finish(Exchange *x); // rounds until no rank has anything left; frees x
void plan_ranges(Ingest *g);       // g->ranges: byte ranges and their first line numbers
void merge_overlap(Ingest *g);     // the entries to the rank of their id, then counted
void merge_counts(Ingest *g);      // rows, bad rows, erasure, consent, time notes
void merge_vocab(Ingest *g);       // g->merged, g->trans: every rank's table ids
// Reductions over ranks (no-ops for one): sums, and minima of nonzero values (0: none).
void ingest_sum_u64(const Ingest *g, uint64_t *x, size_t n);
void ingest_min_nonzero_u64(const Ingest *g, uint64_t *x, size_t n);
// Every rank's `bytes` concatenated in rank order (one rank: a copy), malloc'd.
void *ingest_gather_all(const Ingest *g, const void *in, size_t bytes, size_t *total);
void ingest_barrier(const Ingest *g);

// ingest_sort.c: pass 2a over this rank's buckets; then the statistics (per bucket by its
// owner, merged in bucket order on every rank). *n users.
UserRec *sort_buckets(Ingest *g, DataMeta *meta, size_t *n);
// A sorted bucket one user at a time: held in memory (pass 1 kept it there), or from its
// .sorted file: whole when it fits in half of data.prepare_mem_mb, else through a small buffer.
typedef struct {
    FILE *f;
    const char *path;
    size_t rb, n, cap;
    unsigned char *recs, *next, *own;
    unsigned char *mem; // the whole bucket, or NULL
    size_t mem_n, mem_pos;
    int borrowed; // mem is not the stream's to free
    int have_next;
} UserStream;
void ustream_open(UserStream *s, const Ingest *g, const char *path);
// Over n sorted records in memory (taken: ustream_close frees them, unless borrowed).
void ustream_open_mem(UserStream *s, unsigned char *recs, size_t n, size_t rec_bytes,
                      int borrowed);
int ustream_next(UserStream *s); // 1: s->recs holds the next user's s->n records; 0: the end
void ustream_close(UserStream *s);

// ingest_write.c: DIR/.prepare-PID of rank 0 (stale ones removed first), shared by all ranks.
void make_tmp_dir(Ingest *g, const char *dir);
void remove_tree_files(const char *dir);
// Balances users over V shards and writes the set into tmp_dir; then (rank 0)
// moves it into dir and writes dataset.meta.
void write_shards(Ingest *g, DataMeta *meta, const Vocab *vocab, UserRec *users, size_t n_users,
                  uint64_t fingerprint);
void commit_shards(Ingest *g, DataMeta *meta, Vocab *vocab, const char *dir,
                   const char *meta_path);
