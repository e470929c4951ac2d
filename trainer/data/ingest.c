// ingest.c: see ingest.h.
#include "ingest.h"

#include "erasure.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "csv.h"
#include "partfiles.h"
#include "rowparse.h"
#include "hash.h"
#include "shards.h"
#include "util.h"
#include "vocab.h"

// ---------------------------------------------------------------- inputs

#define MAX_INPUT_FILES 65535 // a record's seq holds its input's index in 16 bits

// Appends the files of one setting (a file, a directory or a glob) to in[0..*n).
static void add_setting(Input **in, int *n, const char *setting, const char *key, int split) {
    int n_files;
    char **files = partfiles_list(setting, key, MAX_INPUT_FILES - *n, &n_files);
    *in = xrealloc(*in, sizeof(Input) * (size_t)(*n + n_files));
    for (int i = 0; i < n_files; i++) {
        if (strlen(files[i]) >= CFG_PATH_LEN)
            fatal_status(EXIT_USAGE, "%s: %s: path longer than %d bytes", key, files[i],
                         CFG_PATH_LEN - 1);
        Input *x = &(*in)[(*n)++];
        snprintf(x->path, CFG_PATH_LEN, "%s", files[i]);
        x->key = key, x->split = split, x->n_parts = n_files;
    }
    partfiles_free(files, n_files);
}

// Every input file in reading order: a malloc'd array of *n (the caller frees it).
Input *list_inputs(const Config *cfg, int *n) {
    Input *in = NULL;
    *n = 0;
    if (strcmp(cfg->data.source, "synth") == 0) {
        in = xcalloc(N_SPLITS, sizeof *in);
        for (int s = 0; s < N_SPLITS; s++) {
            snprintf(in[s].path, CFG_PATH_LEN, "%s/%s.csv", cfg->synth.out_dir, SPLIT_NAMES[s]);
            in[s].key = "synth.out_dir", in[s].split = s, in[s].n_parts = 1;
        }
        *n = N_SPLITS;
    } else if (cfg->data.train_path[0]) {
        const char *paths[] = {cfg->data.train_path, cfg->data.valid_path, cfg->data.test_path};
        const char *keys[] = {"data.train_path", "data.valid_path", "data.test_path"};
        for (int s = 0; s < N_SPLITS; s++)
            if (paths[s][0]) add_setting(&in, n, paths[s], keys[s], s);
    } else {
        add_setting(&in, n, cfg->data.path, "data.path", -1);
    }
    return in;
}

// ---------------------------------------------------------------- pass 1: rows -> buckets

typedef struct {
    const Config *cfg;
    const UserKey *key;
    int n_cat, n_num, log1p_numeric;
    size_t rec_bytes, num_offset;
    int n_buckets;
    FILE **bucket;
    char tmp_dir[CFG_PATH_LEN + 64];
    StrTable actions, cats[CFG_LIST_MAX];
    uint64_t rows;
    BadRows bad;
    Erasure erasure;                      // data.exclude_users
    uint64_t excluded_rows, consent_rows; // rows dropped by the list, by data.consent_col
    U64Set consent_users;                 // users with a row dropped for consent
    const Input *inputs; // for messages: a record's seq names its input and line
    // Users in two given splits: an open-addressing set of raw-id hashes (low 3 bits: the
    // splits seen), only while reading given split files.
    uint64_t *ids;
    size_t ids_cap, ids_used;
    uint64_t overlap_users, overlap_pair[4], overlap_first; // pair index: sum of the splits
    // Order checks of pass 2a: counts and the earliest example (a seq).
    uint64_t dup_events, dup_users, dup_first, unsorted_events, unsorted_users, unsorted_first;
    uint64_t *scratch; // (seq, time bits) pairs of one user, sorted by seq
    size_t scratch_cap;
} Ingest;

// A record's seq: its input's index and the line it starts on; increasing in reading order.
#define SEQ_MAKE(input, line) (((uint64_t)(input) << 48) | (uint64_t)(line))
#define SEQ_INPUT(seq)        ((int)((seq) >> 48))
#define SEQ_LINE(seq)         ((long long)((seq) & ((1ULL << 48) - 1)))

// A record in a bucket file: u64 user, u64 seq, f64 time, i32 split, i32 action (table id),
// i32 cat[n_cat] (table ids), padding to 8, f64 num[n_num].
#define REC_USER(r)   (*(uint64_t *)(r))
#define REC_SEQ(r)    (*(uint64_t *)((r) + 8))
#define REC_TIME(r)   (*(double *)((r) + 16))
#define REC_SPLIT(r)  (*(int32_t *)((r) + 24))
#define REC_ACTION(r) (*(int32_t *)((r) + 28))
#define REC_CAT(r, c) (((int32_t *)((r) + 32))[c])

static void bucket_path(const Ingest *g, int b, const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "%s/bucket-%04d%s", g->tmp_dir, b, suffix);
}

int user_split(const Config *cfg, const char *raw_id) {
    // From an unkeyed hash of the raw id, so any key gives the same split.
    double u = (double)(hash_bytes(raw_id, strlen(raw_id), 0x5b117ULL) >> 11) * 0x1.0p-53;
    return u < cfg->data.test_frac                          ? SPLIT_TEST
           : u < cfg->data.test_frac + cfg->data.valid_frac ? SPLIT_VALID
                                                            : SPLIT_TRAIN;
}

// Records that the raw id with hash raw_hash has rows in `split` (given split files only).
static void overlap_add(Ingest *g, uint64_t raw_hash, int split, uint64_t seq) {
    if (2 * (g->ids_used + 1) > g->ids_cap) { // keep the load under one half
        size_t old_cap = g->ids_cap;
        uint64_t *old = g->ids;
        g->ids_cap = old_cap ? old_cap * 2 : 1 << 12;
        g->ids = xcalloc(g->ids_cap, sizeof(uint64_t));
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) {
                size_t k = (size_t)mix64(old[i] >> 3) & (g->ids_cap - 1);
                while (g->ids[k]) k = (k + 1) & (g->ids_cap - 1);
                g->ids[k] = old[i];
            }
        free(old);
    }
    uint64_t id = raw_hash & ~7ULL ? raw_hash & ~7ULL : 8, bit = 1ULL << split;
    size_t k = (size_t)mix64(id >> 3) & (g->ids_cap - 1);
    while (g->ids[k] && (g->ids[k] & ~7ULL) != id) k = (k + 1) & (g->ids_cap - 1);
    if (!g->ids[k]) {
        g->ids[k] = id | bit;
        g->ids_used++;
        return;
    }
    uint64_t had = g->ids[k] & 7;
    if (had & bit) return;
    if (!(had & (had - 1))) { // was in one split: a new overlapping user
        g->overlap_users++;
        for (int s = 0; s < N_SPLITS; s++)
            if (had >> s & 1) g->overlap_pair[s + split]++; // pair index: sum of the two splits
        if (!g->overlap_first) g->overlap_first = seq;
    }
    g->ids[k] |= bit;
}

static void read_input(Ingest *g, const Input *in, int index, int n_inputs) {
    const Config *cfg = g->cfg;
    CsvReader *r = csv_open(in->path);
    if (!r) fatal("%s: %s: cannot open (%s)", in->key, in->path, strerror(errno));
    char **f;
    int nf;
    int rc = csv_next(r, &f, &nf);
    if (rc == 0 && in->n_parts > 1) { // an empty partition: Spark writes those
        csv_close(r);
        return;
    }
    if (rc == 0) fatal("%s:1: empty file (expected a header row)", in->path);
    if (rc < 0) fatal("%s:%lld: %s", in->path, csv_line(r), csv_error(r));
    if (csv_had_bom(r)) printf("data: %s: UTF-8 byte order mark skipped\n", in->path);
    RowParser rp;
    row_parser_init(&rp, cfg, in->path, in->key, f, nf);
    unsigned char *rec = xcalloc(1, g->rec_bytes);
    Row row;
    char why[512];
    while ((rc = csv_next(r, &f, &nf)) != 0) {
        g->rows++;
        long long line = csv_line(r);
        if (rc == -2) fatal("%s:%lld: %s", in->path, line, csv_error(r)); // no shard is written
        if (rc < 0) {
            bad_row_report(&g->bad, in->path, line, csv_error(r));
            continue;
        }
        if (row_parse(&rp, f, nf, &row, why, sizeof why) != 0) {
            bad_row_report(&g->bad, in->path, line, why);
            continue;
        }
        double *num = (double *)(rec + g->num_offset);
        for (int k = 0; k < g->n_num; k++) num[k] = row.num[k];
        // The raw id is hashed here and goes no further. With given split files, a user is
        // (file, id): the public sets number their users per file.
        uint64_t uh = userkey_hash_id(g->key, row.user, strlen(row.user));
        // Erasure and consent: the rows never reach a bucket.
        if (erasure_has(&g->erasure, uh)) {
            g->excluded_rows++;
            continue;
        }
        if (!row.consent) {
            g->consent_rows++;
            u64set_add(&g->consent_users, uh);
            continue;
        }
        int split = in->split;
        if (split >= 0) {
            if (n_inputs > 1) overlap_add(g, uh, split, SEQ_MAKE(index, line));
            uh = userkey_split_hash(uh, split);
        } else
            split = user_split(cfg, row.user);
        REC_USER(rec) = uh;
        REC_SEQ(rec) = SEQ_MAKE(index, line);
        REC_TIME(rec) = row.time;
        REC_SPLIT(rec) = split;
        int a = strtab_intern(&g->actions, row.action, strlen(row.action));
        REC_ACTION(rec) = a;
        if (split == SPLIT_TRAIN) g->actions.train_count[a]++;
        for (int c = 0; c < g->n_cat; c++) {
            int id = strtab_intern(&g->cats[c], row.cat[c], strlen(row.cat[c]));
            REC_CAT(rec, c) = id;
            if (split == SPLIT_TRAIN) g->cats[c].train_count[id]++;
        }
        int b = (int)(mix64(uh) % (uint64_t)g->n_buckets);
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        xfwrite(rec, g->rec_bytes, g->bucket[b], path);
    }
    row_parser_notes(&rp, in->path);
    free(rec);
    csv_close(r);
}

// ---------------------------------------------------------------- pass 2

typedef struct {
    uint64_t hash;
    uint32_t n_events, bucket;
    int32_t split, shard;
} UserRec;

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

static size_t g_rec_bytes; // qsort has no context argument
static int by_user_time_seq(const void *a, const void *b) {
    const unsigned char *x = a, *y = b;
    if (REC_USER(x) != REC_USER(y)) return REC_USER(x) < REC_USER(y) ? -1 : 1;
    if (REC_TIME(x) != REC_TIME(y)) return REC_TIME(x) < REC_TIME(y) ? -1 : 1;
    return REC_SEQ(x) < REC_SEQ(y) ? -1 : (REC_SEQ(x) > REC_SEQ(y));
}

static unsigned char *load_bucket(const Ingest *g, int b, const char *suffix, size_t *n_rec) {
    char path[CFG_PATH_LEN + 96];
    bucket_path(g, b, suffix, path, sizeof path);
    size_t size;
    unsigned char *buf = (unsigned char *)read_file(path, &size);
    if (!buf) fatal("%s: cannot read temporary bucket (%s)", path, strerror(errno));
    if (size % g->rec_bytes) fatal("%s: temporary bucket has a partial record", path);
    *n_rec = size / g->rec_bytes;
    return buf;
}

static int by_events_desc(const void *a, const void *b) {
    const UserRec *x = *(UserRec *const *)a, *y = *(UserRec *const *)b;
    if (x->n_events != y->n_events) return x->n_events > y->n_events ? -1 : 1;
    return x->hash < y->hash ? -1 : (x->hash > y->hash);
}

// Largest users first into the least-loaded virtual shard (ties: lowest index).
static void balance_users(UserRec *users, size_t n_users, int split, int V, DataMeta *meta) {
    UserRec **order = xmalloc(sizeof(UserRec *) * (n_users ? n_users : 1));
    size_t n = 0;
    for (size_t i = 0; i < n_users; i++)
        if (users[i].split == split) order[n++] = &users[i];
    qsort(order, n, sizeof *order, by_events_desc);
    uint64_t *load = meta->split[split].shard_events;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (load[v] < load[best]) best = v;
        order[i]->shard = best;
        load[best] += order[i]->n_events;
        meta->split[split].shard_users[best]++;
    }
    free(order);
}

static void raise_fd_limit(int need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur >= (rlim_t)need) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)need)
        fatal("data.virtual_shards needs %d open files while preparing; the limit is %llu", need,
              (unsigned long long)rl.rlim_cur);
}

static void remove_tree_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[CFG_PATH_LEN + 300];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && !e->d_name[2])))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

// A prepare that stops (a bad row under data.on_error=stop, an I/O error such as a full disk)
// must not leave its temporary buckets, as large as the input, or partial shards behind:
// fatal() and exit remove them (cleanup_register). Those of a run that was killed are removed
// by the next prepare, which holds the shard directory's lock, so no other prepare is using
// them.
static void remove_stale_tmp_dirs(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[CFG_PATH_LEN + 300];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, ".prepare-", 9) != 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove_tree_files(path);
        printf("data: removed %s, left by an earlier prepare that did not finish\n", path);
    }
    closedir(d);
    int n = remove_matching(dir, ".shard.tmp");
    if (n) printf("data: removed %d partial shard file%s (*.shard.tmp) of an earlier prepare\n", n, n > 1 ? "s" : "");
}

static int by_seq(const void *a, const void *b) {
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : (x[0] > y[0]);
}

// Pass 2a, one user's records [i, j), sorted by (time, seq): events at the same time as the
// previous one, and events earlier than the user's previous row in the file.
static void check_order(Ingest *g, const unsigned char *recs, size_t i, size_t j) {
    const size_t rb = g->rec_bytes;
    uint64_t dups = 0, descents = 0;
    for (size_t k = i + 1; k < j; k++) {
        const unsigned char *a = recs + (k - 1) * rb, *b = recs + k * rb;
        if (REC_TIME(a) == REC_TIME(b)) {
            dups++;
            if (!g->dup_first || REC_SEQ(b) < g->dup_first) g->dup_first = REC_SEQ(b);
        }
        descents += REC_SEQ(b) < REC_SEQ(a);
    }
    if (dups) g->dup_events += dups, g->dup_users++;
    if (!descents) return; // file order is time order
    size_t n = j - i;
    if (2 * n > g->scratch_cap) {
        g->scratch_cap = 4 * n;
        g->scratch = xrealloc(g->scratch, sizeof(uint64_t) * g->scratch_cap);
    }
    for (size_t k = 0; k < n; k++) {
        const unsigned char *r = recs + (i + k) * rb;
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
    if (!events) return;
    const Input *in = &g->inputs[SEQ_INPUT(first)];
    char msg[1024];
    snprintf(msg, sizeof msg, "%llu event%s of %llu user%s %s (first: %s:%lld)",
             (unsigned long long)events, events > 1 ? "s" : "", (unsigned long long)users,
             users > 1 ? "s" : "", what, in->path, SEQ_LINE(first));
    if (strcmp(policy, "stop") == 0) fatal("%s (%s=stop; warn keeps them)", msg, key);
    warnf("data: %s (%s=warn; stop refuses such data)", msg, key);
}

static void report_overlap(const Ingest *g) {
    if (!g->overlap_users) return;
    const Input *in = &g->inputs[SEQ_INPUT(g->overlap_first)];
    char msg[1024];
    snprintf(msg, sizeof msg,
             "%llu user id%s appear in more than one split (train+valid %llu, train+test %llu, "
             "valid+test %llu; first: %s:%lld); each file's rows are trained or scored as a "
             "separate user",
             (unsigned long long)g->overlap_users, g->overlap_users > 1 ? "s" : "",
             (unsigned long long)g->overlap_pair[SPLIT_TRAIN + SPLIT_VALID],
             (unsigned long long)g->overlap_pair[SPLIT_TRAIN + SPLIT_TEST],
             (unsigned long long)g->overlap_pair[SPLIT_VALID + SPLIT_TEST], in->path,
             SEQ_LINE(g->overlap_first));
    if (strcmp(g->cfg->data.on_split_overlap, "stop") == 0)
        fatal("%s (data.on_split_overlap=stop)", msg);
    warnf("data: %s (data.on_split_overlap=warn; stop refuses such data)", msg);
}

// Pass 1: every input read once, rows hashed by user into ~16 MiB buckets of records.
static void read_inputs(Ingest *g, const Config *cfg, const UserKey *key, const char *dir, int V) {
    memset(g, 0, sizeof *g);
    g->cfg = cfg;
    g->key = key;
    g->bad.cfg = cfg;
    erasure_load(&g->erasure, cfg, key);
    g->n_cat = cfg->data.categorical_cols.n;
    g->n_num = cfg->data.numeric_cols.n;
    g->log1p_numeric = strcmp(cfg->data.numeric_transform, "log1p") == 0;
    g->num_offset = (size_t)((32 + 4 * g->n_cat + 7) / 8 * 8);
    g->rec_bytes = g->num_offset + 8 * (size_t)g->n_num;
    g_rec_bytes = g->rec_bytes;
    strtab_init(&g->actions);
    for (int c = 0; c < g->n_cat; c++) strtab_init(&g->cats[c]);
    snprintf(g->tmp_dir, sizeof g->tmp_dir, "%s/.prepare-%d", dir, (int)getpid());
    remove_stale_tmp_dirs(dir);
    cleanup_register(g->tmp_dir, NULL);
    cleanup_register(dir, ".shard.tmp");
    if (mkdir_p(g->tmp_dir) != 0) fatal("%s: cannot create (%s)", g->tmp_dir, strerror(errno));

    int n_in;
    Input *in = list_inputs(cfg, &n_in);
    // Buckets of ~16 MiB of input each keep pass 2's memory bounded for any input size (a
    // gzip file counted as ~8 times its size).
    long long total = 0;
    for (int i = 0; i < n_in; i++) {
        struct stat st;
        size_t len = strlen(in[i].path);
        int gz = len > 3 && strcmp(in[i].path + len - 3, ".gz") == 0;
        if (stat(in[i].path, &st) == 0) total += (gz ? 8 : 1) * (long long)st.st_size;
    }
    g->n_buckets = (int)(total / (16 << 20)) + 1;
    g->n_buckets = g->n_buckets < 4 ? 4 : (g->n_buckets > 1024 ? 1024 : g->n_buckets);
    raise_fd_limit(g->n_buckets + V + 64);
    g->bucket = xcalloc((size_t)g->n_buckets, sizeof(FILE *));
    for (int b = 0; b < g->n_buckets; b++) {
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        g->bucket[b] = xfopen(path, "wb");
        setvbuf(g->bucket[b], NULL, _IOFBF, 1 << 16);
    }
    g->inputs = in;
    for (int i = 0; i < n_in; i++) read_input(g, &in[i], i, n_in);
    report_overlap(g);
    free(g->ids);
    for (int b = 0; b < g->n_buckets; b++) {
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        xfclose(g->bucket[b], path);
    }
}

static void meta_init(DataMeta *meta, const Ingest *g, const Config *cfg, int V,
                      uint64_t fingerprint) {
    memset(meta, 0, sizeof *meta);
    meta->n_vshards = (uint32_t)V;
    meta->n_cat = (uint32_t)g->n_cat;
    meta->n_num = (uint32_t)g->n_num;
    meta->engagement_index = -1;
    for (int k = 0; k < g->n_num; k++)
        if (cfg->data.engagement_col[0] &&
            strcmp(cfg->data.numeric_cols.item[k], cfg->data.engagement_col) == 0)
            meta->engagement_index = k;
    meta->fingerprint = fingerprint;
    meta->time_unit_seconds = config_time_unit_seconds(cfg);
    meta->gap_offset = cfg->model.gap_offset;
    meta->numeric_log1p = g->log1p_numeric;
    meta_alloc_counts(meta);
}

// Pass 2a: each bucket sorted by (user, time), its users found and checked, the training
// split's statistics gathered, users balanced over the virtual shards; *n of them.
static UserRec *sort_buckets(Ingest *g, DataMeta *meta, size_t *n_out) {
    // Pass 2a: sort each bucket, find users, gather train statistics.
    UserRec *users = NULL;
    size_t n_users = 0, cap_users = 0;
    const Config *cfg = g->cfg;
    const int V = (int)meta->n_vshards;
    Welford wgap = {0}, wnum[CFG_LIST_MAX];
    memset(wnum, 0, sizeof wnum);
    const double delta = cfg->model.gap_offset;
    for (int b = 0; b < g->n_buckets; b++) {
        size_t n_rec;
        unsigned char *recs = load_bucket(g, b, "", &n_rec);
        qsort(recs, n_rec, g->rec_bytes, by_user_time_seq);
        for (size_t i = 0; i < n_rec;) {
            size_t j = i;
            while (j < n_rec &&
                   REC_USER(recs + j * g->rec_bytes) == REC_USER(recs + i * g->rec_bytes))
                j++;
            unsigned char *first = recs + i * g->rec_bytes;
            int split = REC_SPLIT(first);
            uint32_t n = (uint32_t)(j - i);
            check_order(g, recs, i, j);
            if (n < (uint32_t)cfg->data.min_events) {
                meta->split[split].dropped_users++;
            } else {
                if (n_users == cap_users) {
                    cap_users = cap_users ? cap_users * 2 : 4096;
                    users = xrealloc(users, sizeof(UserRec) * cap_users);
                }
                users[n_users++] = (UserRec){REC_USER(first), n, (uint32_t)b, split, -1};
                meta->split[split].users++;
                meta->split[split].events += n;
                meta->split[split].targets += n - 1;
                if (split == SPLIT_TRAIN)
                    for (size_t k = i; k < j; k++) {
                        unsigned char *r = recs + k * g->rec_bytes;
                        if (k > i)
                            welford_add(&wgap,
                                        log(REC_TIME(r) - REC_TIME(r - g->rec_bytes) + delta));
                        const double *num = (const double *)(r + g->num_offset);
                        for (int q = 0; q < g->n_num; q++)
                            welford_add(&wnum[q], g->log1p_numeric ? log1p(num[q]) : num[q]);
                    }
            }
            i = j;
        }
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, ".sorted", path, sizeof path);
        FILE *f = xfopen(path, "wb");
        xfwrite(recs, n_rec * g->rec_bytes, f, path);
        xfclose(f, path);
        bucket_path(g, b, "", path, sizeof path);
        unlink(path);
        free(recs);
    }
    free(g->scratch);
    order_finding(g, "data.on_duplicate_time", cfg->data.on_duplicate_time, g->dup_events,
                  g->dup_users, g->dup_first, "share their time with the same user's previous event");
    order_finding(g, "data.on_unsorted", cfg->data.on_unsorted, g->unsorted_events,
                  g->unsorted_users, g->unsorted_first,
                  "are earlier than the same user's previous row in the file (negative gaps; "
                  "sorted by time)");
    if (meta->split[SPLIT_TRAIN].users == 0)
        fatal("no training users with at least data.min_events=%lld events in the input",
              (long long)cfg->data.min_events);
    if (meta->split[SPLIT_VALID].users == 0)
        warnf("no validation users: validation metrics will be empty");
    meta->loggap_mean = wgap.n > 0 ? wgap.mean : 0;
    meta->loggap_std = welford_std(&wgap);
    for (int q = 0; q < g->n_num; q++) {
        meta->num_mean[q] = wnum[q].mean;
        meta->num_std[q] = welford_std(&wnum[q]);
    }
    for (int s = 0; s < N_SPLITS; s++) balance_users(users, n_users, s, V, meta);
    *n_out = n_users;
    return users;
}

// One shard's header, with its checksums, once its events and user table are written.
static ShardHeader shard_header(const Ingest *g, int s, int v, int V, uint32_t ev_bytes,
                                uint64_t users, uint64_t events, uint64_t fingerprint,
                                uint64_t payload) {
    ShardHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "LSTMSHRD", 8);
    h.version = SHARD_VERSION;
    h.split = (uint32_t)s, h.vshard = (uint32_t)v, h.n_vshards = (uint32_t)V;
    h.n_cat = (uint32_t)g->n_cat, h.n_num = (uint32_t)g->n_num, h.event_bytes = ev_bytes;
    h.n_users = users, h.n_events = events;
    h.data_fingerprint = fingerprint;
    h.payload_checksum = payload;
    h.header_checksum = hash_bytes(&h, offsetof(ShardHeader, header_checksum), 0);
    return h;
}

// One user's sorted records as shard events (vocabulary ids remapped) into its shard file.
static void put_user_events(const Ingest *g, const Vocab *vocab, const unsigned char *recs,
                            size_t i, size_t j, unsigned char *ev, uint32_t ev_bytes,
                            AtomicFile *out, Hasher *h) {
    for (size_t k = i; k < j; k++) {
        const unsigned char *r = recs + k * g->rec_bytes;
        const double *num = (const double *)(r + g->num_offset);
        memset(ev, 0, ev_bytes);
        *(double *)ev = REC_TIME(r);
        *(int32_t *)(ev + 8) = vocab[0].remap[REC_ACTION(r)];
        for (int c = 0; c < g->n_cat; c++)
            ((int32_t *)(ev + 12))[c] = vocab[1 + c].remap[REC_CAT(r, c)];
        for (int q = 0; q < g->n_num; q++)
            ((float *)(ev + 12 + 4 * g->n_cat))[q] = (float)num[q];
        if (af_write(out, ev, ev_bytes) != 0) fatal("%s", out->err);
        hasher_update(h, ev, ev_bytes);
    }
}

// Pass 2b for split s: users streamed from the sorted buckets into their shard files (each
// through base/atomic_file.h: a temp file, its header written last, fsync, rename).
static void write_split(Ingest *g, DataMeta *meta, const Vocab *vocab, const UserRec *users,
                        size_t n_users, int s, const char *dir, uint64_t fingerprint) {
    const int V = (int)meta->n_vshards;
    const uint32_t ev_bytes = shard_event_bytes(g->n_cat, g->n_num);
    unsigned char *ev = xcalloc(1, ev_bytes);
    AtomicFile *out = xcalloc((size_t)V, sizeof(AtomicFile));
    Hasher *hs = xcalloc((size_t)V, sizeof(Hasher));
    ShardUser **tables = xcalloc((size_t)V, sizeof(ShardUser *));
    uint64_t *n_written = xcalloc((size_t)V, sizeof(uint64_t)),
             *u_written = xcalloc((size_t)V, sizeof(uint64_t));
    char path[CFG_PATH_LEN + 96];
    for (int v = 0; v < V; v++) {
        shard_file_name(path, sizeof path, dir, s, v);
        ShardHeader zero;
        memset(&zero, 0, sizeof zero);
        if (af_open(&out[v], path, 0, 1 << 16) != 0 || af_write(&out[v], &zero, sizeof zero) != 0)
            fatal("%s", out[v].err);
        hasher_init(&hs[v], 0);
        tables[v] = xmalloc(sizeof(ShardUser) * (meta->split[s].shard_users[v] + 1));
    }
    size_t next_user = 0;
    for (int b = 0; b < g->n_buckets; b++) {
        size_t n_rec;
        unsigned char *recs = load_bucket(g, b, ".sorted", &n_rec);
        for (size_t i = 0; i < n_rec;) {
            size_t j = i;
            uint64_t uh = REC_USER(recs + i * g->rec_bytes);
            while (j < n_rec && REC_USER(recs + j * g->rec_bytes) == uh) j++;
            // users[] was filled in this same bucket order; dropped users are absent.
            int kept = next_user < n_users && users[next_user].hash == uh &&
                       users[next_user].bucket == (uint32_t)b;
            const UserRec *u = kept ? &users[next_user++] : NULL;
            if (u && u->split == s) {
                int v = u->shard;
                tables[v][u_written[v]++] = (ShardUser){uh, n_written[v], u->n_events, 0};
                put_user_events(g, vocab, recs, i, j, ev, ev_bytes, &out[v], &hs[v]);
                n_written[v] += u->n_events;
            }
            i = j;
        }
        free(recs);
    }
    for (int v = 0; v < V; v++) {
        size_t tb = sizeof(ShardUser) * u_written[v];
        if (af_write(&out[v], tables[v], tb) != 0) fatal("%s", out[v].err);
        hasher_update(&hs[v], tables[v], tb);
        ShardHeader h = shard_header(g, s, v, V, ev_bytes, u_written[v], n_written[v],
                                     fingerprint, hasher_final(&hs[v]));
        if (af_pwrite(&out[v], &h, sizeof h, 0) != 0 || af_commit(&out[v]) != 0)
            fatal("%s", out[v].err);
        meta->split[s].shard_checksum[v] = h.payload_checksum;
        if (u_written[v] != meta->split[s].shard_users[v] ||
            n_written[v] != meta->split[s].shard_events[v])
            fatal("internal: shard %s-%d counts differ from the plan", SPLIT_NAMES[s], v);
        free(tables[v]);
    }
    free(ev), free(out), free(hs), free(tables), free(n_written), free(u_written);
}

// Vocabularies and column names into the meta file, written last: the set is now whole.
static void meta_commit(DataMeta *meta, Ingest *g, Vocab *vocab, const char *dir,
                        const char *meta_path) {
    const Config *cfg = g->cfg;
    meta->vocab_size[0] = vocab[0].size;
    meta->vocab[0] = vocab[0].names, vocab[0].names = NULL;
    for (int c = 0; c < g->n_cat; c++) {
        meta->vocab_size[1 + c] = vocab[1 + c].size;
        meta->vocab[1 + c] = vocab[1 + c].names, vocab[1 + c].names = NULL;
    }
    snprintf(meta->column[0], CFG_NAME_LEN, "%s", cfg->data.action_col);
    for (int c = 0; c < g->n_cat; c++)
        snprintf(meta->column[1 + c], CFG_NAME_LEN, "%s", cfg->data.categorical_cols.item[c]);
    for (int q = 0; q < g->n_num; q++)
        snprintf(meta->column[1 + g->n_cat + q], CFG_NAME_LEN, "%s", cfg->data.numeric_cols.item[q]);
    meta->rows_read = g->rows;
    meta->bad_rows = g->bad.count;
    char err[512];
    fsync_dir_of(meta_path);
    if (meta_write(meta_path, meta, err, sizeof err) != 0) fatal("%s", err);

    remove_tree_files(g->tmp_dir);
    cleanup_unregister(g->tmp_dir, NULL);
    cleanup_unregister(dir, ".shard.tmp");
}

static void print_report(const Ingest *g, const DataMeta *meta, size_t n_users, const char *dir,
                         IngestReport *report) {
    const Config *cfg = g->cfg;
    const int V = (int)meta->n_vshards;
    report->rows = g->rows;
    report->bad_rows = g->bad.count;
    report->events = meta->split[0].events + meta->split[1].events + meta->split[2].events;
    report->users = n_users;
    report->dropped_users =
        meta->split[0].dropped_users + meta->split[1].dropped_users + meta->split[2].dropped_users;
    report->peak_rss = peak_rss_bytes();

    printf("prepared %s: %llu rows (%llu bad%s), %llu events of %llu users in %.2f s "
           "(%.0f events/s, peak RSS %.0f MiB)\n",
           dir, (unsigned long long)g->rows, (unsigned long long)g->bad.count,
           g->bad.count ? ", skipped" : "", (unsigned long long)report->events,
           (unsigned long long)n_users, report->seconds,
           (double)g->rows / (report->seconds > 0 ? report->seconds : 1),
           (double)report->peak_rss / (1 << 20));
    for (int s = 0; s < N_SPLITS; s++) {
        uint64_t mx = 0;
        for (int v = 0; v < V; v++)
            mx = meta->split[s].shard_events[v] > mx ? meta->split[s].shard_events[v] : mx;
        double mean = (double)meta->split[s].events / V;
        printf("  %-5s %7llu users %10llu events %10llu targets, %llu users dropped (< %lld "
               "events); largest of %d virtual shards %.3fx the mean\n",
               SPLIT_NAMES[s], (unsigned long long)meta->split[s].users,
               (unsigned long long)meta->split[s].events, (unsigned long long)meta->split[s].targets,
               (unsigned long long)meta->split[s].dropped_users, (long long)cfg->data.min_events, V,
               mean > 0 ? (double)mx / mean : 0.0);
    }
    if (cfg->data.exclude_users[0])
        printf("  erasure: %d of the %d users of data.exclude_users (list digest %016llx) found "
               "and removed, %llu rows\n",
               erasure_seen(&g->erasure), g->erasure.lines,
               (unsigned long long)g->erasure.digest, (unsigned long long)g->excluded_rows);
    if (cfg->data.consent_col[0])
        printf("  consent: %llu rows without consent (%s) dropped, from %zu users\n",
               (unsigned long long)g->consent_rows, cfg->data.consent_col, g->consent_users.n);
}

void data_prepare(const Config *cfg, const UserKey *key, uint64_t fingerprint,
                  IngestReport *report) {
    double t0 = now_seconds();
    const char *dir = cfg->data.shard_dir;
    const int V = (int)cfg->data.virtual_shards;
    if (mkdir_p(dir) != 0) fatal("data.shard_dir: %s: cannot create (%s)", dir, strerror(errno));
    // The old meta goes first: until the new one is written, the directory is "not prepared".
    char meta_path[CFG_PATH_LEN + 32];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", dir);
    if (unlink(meta_path) == 0) fsync_dir_of(meta_path);
    Ingest g;
    read_inputs(&g, cfg, key, dir, V);
    // Vocabularies from the training split.
    Vocab vocab[1 + CFG_LIST_MAX];
    vocab_build(&g.actions, &vocab[0]);
    for (int c = 0; c < g.n_cat; c++) vocab_build(&g.cats[c], &vocab[1 + c]);
    DataMeta meta;
    meta_init(&meta, &g, cfg, V, fingerprint);
    size_t n_users;
    UserRec *users = sort_buckets(&g, &meta, &n_users);
    for (int s = 0; s < N_SPLITS; s++)
        write_split(&g, &meta, vocab, users, n_users, s, dir, fingerprint);
    meta_commit(&meta, &g, vocab, dir, meta_path);
    report->seconds = now_seconds() - t0;
    print_report(&g, &meta, n_users, dir, report);
    report->excluded_users = (uint64_t)erasure_seen(&g.erasure);
    report->consent_rows = g.consent_rows;
    erasure_free(&g.erasure);
    u64set_free(&g.consent_users);
    printf("  vocabulary: %d %s values", meta.vocab_size[0] - 1, cfg->data.action_col);
    for (int c = 0; c < g.n_cat; c++)
        printf(", %d %s values", meta.vocab_size[1 + c] - 1, cfg->data.categorical_cols.item[c]);
    printf(" (+ <unk>); log(gap + %g) mean %.4f std %.4f\n", cfg->model.gap_offset, meta.loggap_mean,
           meta.loggap_std);
    for (int c = 0; c <= g.n_cat; c++) vocab_free(&vocab[c]);
    strtab_free(&g.actions);
    for (int c = 0; c < g.n_cat; c++) strtab_free(&g.cats[c]);
    free(g.bucket);
    free(users);
    free((void *)g.inputs); // list_inputs() allocated it
    meta_free(&meta);
}
