// ingest.c: see ingest.h. The inputs, pass 1 (this rank's part of each input read into
// records sent to their bucket's rank), users in two given splits, the report, and
// data_prepare() calling the passes of ingest_sort.c and ingest_write.c in order.
#include "ingest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csv.h"
#include "hash.h"
#include "ingest_int.h"
#include "partfiles.h"
#include "rowparse.h"
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

void bucket_path(const Ingest *g, int b, const char *suffix, char *out, size_t cap) {
    snprintf(out, cap, "%s/bucket-%04d%s", g->tmp_dir, b, suffix);
}

int user_split(const Config *cfg, const char *raw_id) {
    // From an unkeyed hash of the raw id, so any key gives the same split.
    double u = (double)(hash_bytes(raw_id, strlen(raw_id), 0x5b117ULL) >> 11) * 0x1.0p-53;
    return u < cfg->data.test_frac                          ? SPLIT_TEST
           : u < cfg->data.test_frac + cfg->data.valid_frac ? SPLIT_VALID
                                                            : SPLIT_TRAIN;
}

// The entry of raw id `id` (created empty when missing) in the open-addressing table.
static OverlapEntry *overlap_slot(Ingest *g, uint64_t id) {
    if (2 * (g->ids_used + 1) > g->ids_cap) { // keep the load under one half
        size_t old_cap = g->ids_cap;
        OverlapEntry *old = g->ids;
        g->ids_cap = old_cap ? old_cap * 2 : 1 << 12;
        g->ids = xcalloc(g->ids_cap, sizeof(OverlapEntry));
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].id) {
                size_t k = (size_t)mix64(old[i].id >> 3) & (g->ids_cap - 1);
                while (g->ids[k].id) k = (k + 1) & (g->ids_cap - 1);
                g->ids[k] = old[i];
            }
        free(old);
    }
    size_t k = (size_t)mix64(id >> 3) & (g->ids_cap - 1);
    while (g->ids[k].id && g->ids[k].id != id) k = (k + 1) & (g->ids_cap - 1);
    if (!g->ids[k].id) g->ids[k].id = id, g->ids_used++;
    return &g->ids[k];
}

// Records that the raw id with hash raw_hash has a row `seq` in `split` (given split files).
void overlap_record(Ingest *g, uint64_t raw_hash, int split, uint64_t seq) {
    OverlapEntry *e = overlap_slot(g, raw_hash & ~7ULL ? raw_hash & ~7ULL : 8);
    if (!e->first[split] || seq < e->first[split]) e->first[split] = seq;
}

// Users in two or more splits among the entries this rank holds. Read in file order, such a
// user is found at the first row of its second split; that pair of splits is the one counted.
void overlap_count(Ingest *g) {
    for (size_t i = 0; i < g->ids_cap; i++) {
        const OverlapEntry *e = &g->ids[i];
        if (!e->id) continue;
        int a = -1, b = -1; // the splits with the smallest and second smallest first seq
        for (int s = 0; s < N_SPLITS; s++) {
            if (!e->first[s]) continue;
            if (a < 0 || e->first[s] < e->first[a])
                b = a, a = s;
            else if (b < 0 || e->first[s] < e->first[b])
                b = s;
        }
        if (b < 0) continue;
        g->overlap_users++;
        g->overlap_pair[a + b]++;
        if (!g->overlap_first || e->first[b] < g->overlap_first) g->overlap_first = e->first[b];
    }
}

void report_overlap(const Ingest *g) {
    if (!g->overlap_users || g->rank != 0) return;
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

// Received records into this rank's buckets.
static void bucket_sink(void *ctx, const unsigned char *items, size_t bytes) {
    Ingest *g = ctx;
    for (size_t off = 0; off < bytes; off += g->rec_bytes) store_put(g, items + off);
}

// One parsed row as a record to its bucket's rank (or dropped: erasure, consent).
static void put_row(Ingest *g, const Input *in, int index, long long line, const Row *row,
                    unsigned char *rec, Exchange *x) {
    double *num = (double *)(rec + g->num_offset);
    for (int k = 0; k < g->n_num; k++) num[k] = row->num[k];
    // The raw id is hashed here and goes no further. With given split files, a user is
    // (file, id): the public sets number their users per file.
    uint64_t uh = userkey_hash_id(g->key, row->user, strlen(row->user));
    // Erasure and consent: the rows never reach a bucket.
    if (erasure_has(&g->erasure, uh)) {
        g->excluded_rows++;
        return;
    }
    if (!row->consent) {
        g->consent_rows++;
        u64set_add(&g->consent_users, uh);
        return;
    }
    int split = in->split;
    if (split >= 0) {
        if (g->n_inputs > 1) overlap_record(g, uh, split, SEQ_MAKE(index, line));
        uh = userkey_split_hash(uh, split);
    } else
        split = user_split(g->cfg, row->user);
    REC_USER(rec) = uh;
    REC_SEQ(rec) = SEQ_MAKE(index, line);
    REC_TIME(rec) = row->time;
    REC_SPLIT(rec) = (int16_t)split;
    REC_ORIGIN(rec) = (uint16_t)g->rank;
    int a = strtab_intern(&g->actions, row->action, strlen(row->action));
    REC_ACTION(rec) = a;
    if (split == SPLIT_TRAIN) g->actions.train_count[a]++;
    for (int c = 0; c < g->n_cat; c++) {
        int id = strtab_intern(&g->cats[c], row->cat[c], strlen(row->cat[c]));
        REC_CAT(rec, c) = id;
        if (split == SPLIT_TRAIN) g->cats[c].train_count[id]++;
    }
    exchange_put(x, bucket_of(g, uh) % g->size, rec);
}

// This rank's part of one input (ingest_int.h: InputRange).
static void read_input(Ingest *g, const Input *in, int index, Exchange *x) {
    const InputRange *rg = &g->ranges[index];
    if (rg->begin < 0 && !rg->header_here) return;
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
    if (csv_had_bom(r) && rg->header_here)
        printf("data: %s: UTF-8 byte order mark skipped\n", in->path);
    RowParser rp;
    row_parser_init(&rp, cfg, in->path, in->key, f, nf);
    if (rg->begin < 0) {
        csv_close(r);
        return;
    }
    if (!rg->whole && csv_seek(r, rg->begin, rg->line, rg->end) != 0)
        fatal("%s: cannot seek to byte %lld (%s)", in->path, rg->begin, strerror(errno));
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
        put_row(g, in, index, line, &row, rec, x);
    }
    // Ranges start at line starts; a row that ran past this range's end had a quoted line
    // break there, and the next rank began inside it.
    if (!rg->whole && csv_tell(r) > rg->end)
        fatal("%s:%lld: a quoted field with a line break crosses the byte range of the next "
              "rank; prepare this input with one rank (mpirun -np 1)",
              in->path, csv_line(r));
    if (g->size == 1)
        row_parser_notes(&rp, in->path);
    else
        g->notes[index] = rp.notes_store;
    free(rec);
    csv_close(r);
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

// Pass 1: every input read once (each rank its part), rows hashed by user into ~16 MiB
// buckets of records on the rank that owns the bucket.
static void read_inputs(Ingest *g, const Config *cfg, const UserKey *key, int V, int rank,
                        int size) {
    memset(g, 0, sizeof *g);
    g->cfg = cfg;
    g->key = key;
    g->rank = rank, g->size = size;
    g->mem_bytes = (size_t)cfg->data.prepare_mem_mb << 20;
    g->bad.cfg = cfg;
    erasure_load(&g->erasure, cfg, key);
    g->n_cat = cfg->data.categorical_cols.n;
    g->n_num = cfg->data.numeric_cols.n;
    g->log1p_numeric = strcmp(cfg->data.numeric_transform, "log1p") == 0;
    g->num_offset = (size_t)((32 + 4 * g->n_cat + 7) / 8 * 8);
    g->rec_bytes = g->num_offset + 8 * (size_t)g->n_num;
    strtab_init(&g->actions);
    for (int c = 0; c < g->n_cat; c++) strtab_init(&g->cats[c]);
    make_tmp_dir(g, cfg->data.shard_dir);

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
    raise_fd_limit(g->n_buckets / size + 3 * V + 64);
    store_open(g);
    g->inputs = in;
    g->n_inputs = n_in;
    g->notes = xcalloc((size_t)n_in, sizeof(TimeNotes));
    plan_ranges(g);
    Exchange x;
    exchange_init(&x, g, g->rec_bytes, bucket_sink, g);
    for (int i = 0; i < n_in; i++) read_input(g, &in[i], i, &x);
    exchange_finish(&x);
    if (n_in > 1 && in[0].split >= 0) {
        merge_overlap(g);
        report_overlap(g);
    }
    free(g->ids);
    store_close(g);
    merge_counts(g);
    merge_vocab(g);
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

static void print_report(const Ingest *g, const DataMeta *meta, const char *dir,
                         IngestReport *report) {
    const Config *cfg = g->cfg;
    const uint64_t n_users =
        meta->split[0].users + meta->split[1].users + meta->split[2].users; // kept, all ranks
    const int V = (int)meta->n_vshards;
    report->rows = g->rows;
    report->bad_rows = g->bad.count;
    report->events = meta->split[0].events + meta->split[1].events + meta->split[2].events;
    report->users = n_users;
    report->dropped_users =
        meta->split[0].dropped_users + meta->split[1].dropped_users + meta->split[2].dropped_users;
    // Every rank's peak, for the report (rank 0 prints the largest, and each with P > 1).
    uint64_t *rss = xcalloc((size_t)g->size, sizeof(uint64_t));
    rss[g->rank] = peak_rss_bytes();
    ingest_sum_u64(g, rss, (size_t)g->size);
    report->peak_rss = 0;
    for (int r = 0; r < g->size; r++)
        report->peak_rss = rss[r] > report->peak_rss ? (size_t)rss[r] : report->peak_rss;
    if (g->rank != 0) {
        free(rss);
        return;
    }
    printf("prepared %s: %llu rows (%llu bad%s), %llu events of %llu users in %.2f s "
           "(%.0f events/s, peak RSS %.0f MiB)\n",
           dir, (unsigned long long)g->rows, (unsigned long long)g->bad.count,
           g->bad.count ? ", skipped" : "", (unsigned long long)report->events,
           (unsigned long long)n_users, report->seconds,
           (double)g->rows / (report->seconds > 0 ? report->seconds : 1),
           (double)report->peak_rss / (1 << 20));
    if (g->size > 1) {
        printf("  %d ranks, peak RSS per rank (MiB):", g->size);
        for (int r = 0; r < g->size; r++) printf(" %.0f", (double)rss[r] / (1 << 20));
        printf("\n");
    }
    free(rss);
    if (g->spilled_ranks)
        printf("  buckets sorted on disk by %llu of %d rank%s (records beyond half of "
               "data.prepare_mem_mb=%lld)\n",
               (unsigned long long)g->spilled_ranks, g->size, g->size > 1 ? "s" : "",
               (long long)cfg->data.prepare_mem_mb);
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

int ingest_ranks_error(const Config *cfg, int size, char *msg, size_t cap) {
    const int V = (int)cfg->data.virtual_shards;
    if (V % size != 0)
        return snprintf(msg, cap,
                        "%d ranks do not divide data.virtual_shards=%d: prepare with a number of "
                        "ranks that divides it (e.g. %d), or change data.virtual_shards",
                        size, V, V % 2 == 0 && size > 1 ? 2 : 1), -1;
    if (size > 65535) return snprintf(msg, cap, "data prepare: at most 65535 ranks, not %d", size), -1;
    return 0;
}

void ingest_check_ranks(const Config *cfg, int size) {
    char msg[256];
    if (ingest_ranks_error(cfg, size, msg, sizeof msg) != 0) fatal_status(EXIT_USAGE, "%s", msg);
}

void data_prepare(const Config *cfg, const UserKey *key, uint64_t fingerprint,
                  IngestReport *report, int rank, int size) {
    double t0 = now_seconds();
    const char *dir = cfg->data.shard_dir;
    const int V = (int)cfg->data.virtual_shards; // the rank count was checked by the caller
    char meta_path[CFG_PATH_LEN + 32];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", dir);
    if (rank == 0) {
        if (mkdir_p(dir) != 0)
            fatal("data.shard_dir: %s: cannot create (%s)", dir, strerror(errno));
        // The old meta goes first: until the new one is written, the directory is "not
        // prepared".
        if (unlink(meta_path) == 0) fsync_dir_of(meta_path);
    }
    Ingest g;
    double phase[4]; // seconds: read and exchange, sort, write, commit
    read_inputs(&g, cfg, key, V, rank, size);
    phase[0] = now_seconds();
    // Vocabularies from the training split, over every rank's values.
    Vocab vocab[1 + CFG_LIST_MAX];
    for (int c = 0; c <= g.n_cat; c++) vocab_build(&g.merged[c], &vocab[c]);
    DataMeta meta;
    meta_init(&meta, &g, cfg, V, fingerprint);
    size_t n_users;
    UserRec *users = sort_buckets(&g, &meta, &n_users);
    phase[1] = now_seconds();
    write_shards(&g, &meta, vocab, users, n_users, fingerprint);
    phase[2] = now_seconds();
    commit_shards(&g, &meta, vocab, dir, meta_path);
    phase[3] = now_seconds();
    report->seconds = now_seconds() - t0;
    print_report(&g, &meta, dir, report);
    if (rank == 0 && (size > 1 || getenv("TRAINER_PREPARE_PHASES")))
        printf("  rank 0's phases: read and exchange %.2f s, sort %.2f s, write %.2f s, commit "
               "%.2f s\n",
               phase[0] - t0, phase[1] - phase[0], phase[2] - phase[1], phase[3] - phase[2]);
    report->excluded_users = (uint64_t)erasure_seen(&g.erasure);
    report->consent_rows = g.consent_rows;
    erasure_free(&g.erasure);
    u64set_free(&g.consent_users);
    if (rank == 0) {
        printf("  vocabulary: %d %s values", meta.vocab_size[0] - 1, cfg->data.action_col);
        for (int c = 0; c < g.n_cat; c++)
            printf(", %d %s values", meta.vocab_size[1 + c] - 1,
                   cfg->data.categorical_cols.item[c]);
        printf(" (+ <unk>); log(gap + %g) mean %.4f std %.4f\n", cfg->model.gap_offset,
               meta.loggap_mean, meta.loggap_std);
    }
    for (int c = 0; c <= g.n_cat; c++) {
        vocab_free(&vocab[c]);
        strtab_free(&g.merged[c]);
        for (int r = 0; r < size; r++) free(g.trans[c][r]);
        free(g.trans[c]);
    }
    strtab_free(&g.actions);
    for (int c = 0; c < g.n_cat; c++) strtab_free(&g.cats[c]);
    store_free(&g);
    free(g.ranges);
    free(g.notes);
    free(users);
    free((void *)g.inputs); // list_inputs() allocated it
    meta_free(&meta);
}
