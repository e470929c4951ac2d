// ingest_write.c: the shard set of `data prepare` (ingest_int.h). Every rank learns every
// user's (bucket, hash, events); each balances them over the V virtual shards the same way,
// so each knows where every user's events go in its shard file; each rank writes the events
// of its own buckets' users there (pwrite into files of the shared temporary directory); the
// owner of a shard writes its user table and header; rank 0 moves the whole set into the
// shard directory and writes dataset.meta last, once every rank has reported success.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "ingest_int.h"
#include "util.h"

void remove_tree_files(const char *dir) {
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

// DIR/.prepare-PID (rank 0's pid): one directory for every rank's buckets and the new shard
// set, so that removing it removes all of a prepare that did not finish.
void make_tmp_dir(Ingest *g, const char *dir) {
    // From here to the end of commit_shards, a rank that fails stops the others before it
    // removes the directory they write into (comm.h), so none writes into it afterwards.
    comm_agree_on_fatal(g->size > 1);
    int pid = (int)getpid();
    if (g->rank == 0) {
        remove_stale_tmp_dirs(dir);
        snprintf(g->tmp_dir, sizeof g->tmp_dir, "%s/.prepare-%d", dir, pid);
        if (mkdir_p(g->tmp_dir) != 0) fatal("%s: cannot create (%s)", g->tmp_dir, strerror(errno));
    }
    if (g->size > 1) comm_bcast(&pid, sizeof pid, 0);
    snprintf(g->tmp_dir, sizeof g->tmp_dir, "%s/.prepare-%d", dir, pid);
    cleanup_register(g->tmp_dir, NULL);
}

static int by_bucket_hash(const void *a, const void *b) {
    const UserRec *x = a, *y = b;
    if (x->bucket != y->bucket) return x->bucket < y->bucket ? -1 : 1;
    return x->hash < y->hash ? -1 : (x->hash > y->hash);
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

static void pwrite_all(int fd, const void *data, size_t n, off_t at, const char *path) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) fatal("%s: write failed (%s)", path, w < 0 ? strerror(errno) : "no progress");
        p += w, n -= (size_t)w, at += w;
    }
}

// One user's sorted records as shard events (vocabulary ids remapped through the merged
// table of the rank that read each record).
static void user_events(const Ingest *g, const Vocab *vocab, const unsigned char *recs, size_t n,
                        unsigned char *ev, uint32_t ev_bytes) {
    memset(ev, 0, n * ev_bytes);
    for (size_t k = 0; k < n; k++, ev += ev_bytes) {
        const unsigned char *r = recs + k * g->rec_bytes;
        const double *num = (const double *)(r + g->num_offset);
        const int o = REC_ORIGIN(r);
        *(double *)ev = REC_TIME(r);
        *(int32_t *)(ev + 8) = vocab[0].remap[g->trans[0][o][REC_ACTION(r)]];
        for (int c = 0; c < g->n_cat; c++)
            ((int32_t *)(ev + 12))[c] = vocab[1 + c].remap[g->trans[1 + c][o][REC_CAT(r, c)]];
        for (int q = 0; q < g->n_num; q++)
            ((float *)(ev + 12 + 4 * g->n_cat))[q] = (float)num[q];
    }
}

static int open_shard(const Ingest *g, int s, int v, char *path, size_t cap) {
    shard_file_name(path, cap, g->tmp_dir, s, v);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fatal("%s: cannot create (%s)", path, strerror(errno));
    return fd;
}

// Consecutive users of one shard are contiguous in its file: their events gathered in one
// buffer per shard and written by one pwrite (one per user took 101k calls for 10M events).
typedef struct {
    unsigned char *buf;
    size_t len;
    off_t at; // the file offset of buf[0]
} ShardOut;

static void out_flush(const Ingest *g, ShardOut *o, int fd, int k, int V) {
    if (o->len == 0) return;
    char path[CFG_PATH_LEN + 96];
    shard_file_name(path, sizeof path, g->tmp_dir, k / V, k % V);
    pwrite_all(fd, o->buf, o->len, o->at, path);
    o->len = 0;
}

// Tests (prepare_parallel.sh): TRAINER_FAULT_PREPARE_FAIL=R fails rank R as the write pass
// starts, =R@gather before the users' gather. Returns 1 where this rank fails at `at` (NULL:
// the write pass, "gather"), 0 where another rank does, -1 where the fault is not set for it.
static int fault_at(const Ingest *g, const char *at) {
    const char *f = getenv("TRAINER_FAULT_PREPARE_FAIL");
    const char *sep = f ? strchr(f, '@') : NULL;
    if (!f || (at ? !sep || strcmp(sep + 1, at) != 0 : sep != NULL)) return -1;
    return atoi(f) == g->rank;
}

// The events of this rank's buckets' users at their place in their shard files.
static void write_events(const Ingest *g, const Vocab *vocab, const UserRec *all, size_t n_all,
                         const uint64_t *first, int V) {
    // Tests: this rank fails here while the others, a little later, write their events into
    // the shared directory.
    const int fault = fault_at(g, NULL);
    if (fault == 1) fatal("injected failure (TRAINER_FAULT_PREPARE_FAIL)");
    if (fault == 0) nanosleep(&(struct timespec){0, 500000000}, NULL);
    const uint32_t eb = shard_event_bytes(g->n_cat, g->n_num);
    int *fd = xmalloc(sizeof(int) * (size_t)(N_SPLITS * V));
    for (int i = 0; i < N_SPLITS * V; i++) fd[i] = -1;
    ShardOut *out = xcalloc((size_t)(N_SPLITS * V), sizeof(ShardOut));
    size_t out_cap = ((size_t)8 << 20) / (size_t)(N_SPLITS * V); // 8 MiB over all shards
    out_cap = out_cap < (16 << 10) ? (16 << 10) : out_cap > (256 << 10) ? (256 << 10) : out_cap;
    unsigned char *ev = NULL;
    size_t ev_cap = 0, j = 0;
    char path[CFG_PATH_LEN + 96], spath[CFG_PATH_LEN + 96];
    for (int b = g->rank; b < g->n_buckets; b += g->size) {
        while (j < n_all && all[j].bucket < (uint32_t)b) j++;
        bucket_path(g, b, ".sorted", path, sizeof path);
        UserStream us;
        if (g->sorted[b]) { // kept in memory by pass 1 and 2a (taken: freed below)
            ustream_open_mem(&us, g->sorted[b], g->n_sorted[b], g->rec_bytes, 0);
            g->sorted[b] = NULL;
        } else {
            ustream_open(&us, g, path);
        }
        while (ustream_next(&us)) {
            // all[] is in this same (bucket, hash) order; dropped users are absent.
            if (j >= n_all || all[j].bucket != (uint32_t)b || all[j].hash != REC_USER(us.recs))
                continue;
            const UserRec *u = &all[j];
            int k = u->split * V + u->shard;
            if (fd[k] < 0) fd[k] = open_shard(g, u->split, u->shard, spath, sizeof spath);
            const size_t bytes = us.n * eb;
            const off_t at = (off_t)(sizeof(ShardHeader) + first[j] * eb);
            ShardOut *o = &out[k];
            if (o->len && (o->at + (off_t)o->len != at || o->len + bytes > out_cap))
                out_flush(g, o, fd[k], k, V);
            if (bytes > out_cap) { // a user larger than the buffer: on its own
                if (bytes > ev_cap) ev = xrealloc(ev, ev_cap = 2 * bytes);
                user_events(g, vocab, us.recs, us.n, ev, eb);
                shard_file_name(spath, sizeof spath, g->tmp_dir, u->split, u->shard);
                pwrite_all(fd[k], ev, bytes, at, spath);
            } else {
                if (!o->buf) o->buf = xmalloc(out_cap);
                if (o->len == 0) o->at = at;
                user_events(g, vocab, us.recs, us.n, o->buf + o->len, eb);
                o->len += bytes;
            }
            j++;
        }
        ustream_close(&us);
        if (g->spilled) unlink(path);
    }
    for (int i = 0; i < N_SPLITS * V; i++) {
        if (fd[i] >= 0) out_flush(g, &out[i], fd[i], i, V);
        free(out[i].buf);
    }
    free(out);
    for (int i = 0; i < N_SPLITS * V; i++)
        if (fd[i] >= 0 && close(fd[i]) != 0) {
            shard_file_name(spath, sizeof spath, g->tmp_dir, i / V, i % V);
            fatal("%s: write failed (%s)", spath, strerror(errno));
        }
    free(fd), free(ev);
    // Tests (prepare_parallel.sh): this rank dies here, its events written, the set not.
    const char *kill_rank = getenv("TRAINER_FAULT_PREPARE_KILL");
    if (kill_rank && atoi(kill_rank) == g->rank) raise(SIGKILL);
}

// One shard's header, with its checksums, once its events and user table are written.
static ShardHeader shard_header(const Ingest *g, int s, int v, int V, uint64_t users,
                                uint64_t events, uint64_t fingerprint, uint64_t payload) {
    ShardHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, "LSTMSHRD", 8);
    h.version = SHARD_VERSION;
    h.split = (uint32_t)s, h.vshard = (uint32_t)v, h.n_vshards = (uint32_t)V;
    h.n_cat = (uint32_t)g->n_cat, h.n_num = (uint32_t)g->n_num;
    h.event_bytes = shard_event_bytes(g->n_cat, g->n_num);
    h.n_users = users, h.n_events = events;
    h.data_fingerprint = fingerprint;
    h.payload_checksum = payload;
    h.header_checksum = hash_bytes(&h, offsetof(ShardHeader, header_checksum), 0);
    return h;
}

// Shard (s, v), its events written by every rank: user table, checksum, header, fsync.
static void finish_shard(const Ingest *g, DataMeta *meta, const UserRec *all, size_t n_all,
                         const uint64_t *first, int s, int v, uint64_t fingerprint) {
    const int V = (int)meta->n_vshards;
    const uint32_t eb = shard_event_bytes(g->n_cat, g->n_num);
    const uint64_t n_users = meta->split[s].shard_users[v], n_events = meta->split[s].shard_events[v];
    ShardUser *table = xmalloc(sizeof(ShardUser) * (n_users + 1));
    uint64_t k = 0;
    for (size_t i = 0; i < n_all; i++)
        if (all[i].split == s && all[i].shard == v)
            table[k++] = (ShardUser){all[i].hash, first[i], all[i].n_events, 0};
    if (k != n_users) fatal("internal: shard %s-%d counts differ from the plan", SPLIT_NAMES[s], v);
    char path[CFG_PATH_LEN + 96];
    int fd = open_shard(g, s, v, path, sizeof path);
    const off_t table_at = (off_t)(sizeof(ShardHeader) + n_events * eb);
    pwrite_all(fd, table, sizeof(ShardUser) * n_users, table_at, path);
    Hasher h;
    hasher_init(&h, 0);
    char *buf = xmalloc(1 << 20);
    for (off_t at = sizeof(ShardHeader); at < table_at;) {
        size_t want = table_at - at < (1 << 20) ? (size_t)(table_at - at) : (1 << 20);
        ssize_t got = pread(fd, buf, want, at);
        if (got <= 0) fatal("%s: read back failed (%s)", path, got < 0 ? strerror(errno) : "short");
        hasher_update(&h, buf, (size_t)got);
        at += got;
    }
    free(buf);
    hasher_update(&h, table, sizeof(ShardUser) * n_users);
    ShardHeader hd = shard_header(g, s, v, V, n_users, n_events, fingerprint, hasher_final(&h));
    pwrite_all(fd, &hd, sizeof hd, 0, path);
    if (fsync(fd) != 0 || close(fd) != 0) fatal("%s: write failed (%s)", path, strerror(errno));
    meta->split[s].shard_checksum[v] = hd.payload_checksum;
    free(table);
}

void write_shards(Ingest *g, DataMeta *meta, const Vocab *vocab, UserRec *mine, size_t n_mine,
                  uint64_t fingerprint) {
    const int V = (int)meta->n_vshards;
    // Tests: this rank fails while the others already wait in the gather below.
    if (fault_at(g, "gather") == 1) {
        nanosleep(&(struct timespec){0, 300000000}, NULL);
        fatal("injected failure before the users' gather (TRAINER_FAULT_PREPARE_FAIL)");
    }
    size_t total;
    UserRec *all = ingest_gather_all(g, mine, sizeof(UserRec) * n_mine, &total);
    const size_t n_all = total / sizeof(UserRec);
    qsort(all, n_all, sizeof(UserRec), by_bucket_hash); // the one-rank prepare's order
    for (int s = 0; s < N_SPLITS; s++) balance_users(all, n_all, s, V, meta);
    // Each user's first event in its shard: users of a shard follow each other in this order.
    uint64_t *first = xmalloc(sizeof(uint64_t) * (n_all + 1));
    uint64_t *fill = xcalloc((size_t)(N_SPLITS * V), sizeof(uint64_t));
    for (size_t i = 0; i < n_all; i++) {
        uint64_t *f = &fill[all[i].split * V + all[i].shard];
        first[i] = *f;
        *f += all[i].n_events;
    }
    free(fill);
    write_events(g, vocab, all, n_all, first, V);
    ingest_barrier(g); // every event is written
    const int per = V / g->size;
    for (int v = g->rank * per; v < (g->rank + 1) * per; v++)
        for (int s = 0; s < N_SPLITS; s++) finish_shard(g, meta, all, n_all, first, s, v, fingerprint);
    for (int s = 0; s < N_SPLITS; s++) ingest_sum_u64(g, meta->split[s].shard_checksum, (size_t)V);
    free(first), free(all);
}

// Rank 0, once every rank has written its part: the set moved into dir, then the meta with
// the vocabularies (written last: the set is now whole).
void commit_shards(Ingest *g, DataMeta *meta, Vocab *vocab, const char *dir,
                   const char *meta_path) {
    // Every rank has finished its shards: a rank that failed stopped the others and ended the
    // whole job (make_tmp_dir), so reaching this barrier is the agreement that the set is whole.
    ingest_barrier(g);
    const Config *cfg = g->cfg;
    if (g->rank == 0) {
        meta->vocab_size[0] = vocab[0].size;
        for (int c = 0; c < g->n_cat; c++) meta->vocab_size[1 + c] = vocab[1 + c].size;
        const int V = (int)meta->n_vshards;
        char from[CFG_PATH_LEN + 96], to[CFG_PATH_LEN + 96];
        for (int s = 0; s < N_SPLITS; s++)
            for (int v = 0; v < V; v++) {
                shard_file_name(from, sizeof from, g->tmp_dir, s, v);
                shard_file_name(to, sizeof to, dir, s, v);
                if (rename(from, to) != 0)
                    fatal("%s: cannot move to %s (%s)", from, to, strerror(errno));
            }
        meta->vocab[0] = vocab[0].names, vocab[0].names = NULL;
        for (int c = 0; c < g->n_cat; c++) meta->vocab[1 + c] = vocab[1 + c].names, vocab[1 + c].names = NULL;
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
    }
    cleanup_unregister(g->tmp_dir, NULL);
    ingest_barrier(g);
    comm_agree_on_fatal(0);
}
