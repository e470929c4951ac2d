// dataset.c: see dataset.h.
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "comm.h"
#include "fingerprint.h"
#include "hash.h"
#include "ingest.h"
#include "synth.h"
#include "synth_truth.h"
#include "userkey.h"
#include "util.h"

// The generator's settings, hashed: its CSVs are regenerated when they change.
static uint64_t synth_settings_hash(const Config *cfg) {
    const int64_t v[] = {cfg->synth.users, cfg->synth.min_events, cfg->synth.max_events,
                         cfg->synth.seed};
    const double f[] = {cfg->synth.valid_frac, cfg->synth.test_frac};
    uint64_t h = hash_bytes(v, sizeof v, hash_bytes(f, sizeof f, 0x5e7));
    // Irregular users (synth_irregular.h) only when asked for: other settings keep their hash.
    if (cfg->synth.irregular_frac > 0) {
        h = hash_bytes(&cfg->synth.irregular_frac, sizeof(double), h);
        h = hash_bytes(&cfg->synth.irregular_kinds, sizeof(StrList), h);
    }
    // A second period (period2/) likewise: asking for one regenerates.
    if (strcmp(cfg->synth.drift_kind, "none") != 0) {
        h = hash_bytes(cfg->synth.drift_kind, strlen(cfg->synth.drift_kind), h);
        h = hash_bytes(&cfg->synth.drift_strength, sizeof(double), h);
    }
    return h;
}

static void ensure_synth(const Config *cfg) {
    char path[CFG_PATH_LEN + 32], want[32];
    snprintf(path, sizeof path, "%s/settings.hash", cfg->synth.out_dir);
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)synth_settings_hash(cfg));
    SynthReport rep;
    char *have = read_file(path, NULL);
    char truth_path[CFG_PATH_LEN + 32];
    snprintf(truth_path, sizeof truth_path, "%s/%s", cfg->synth.out_dir, SYNTH_TRUTH_FILE);
    int fresh = have && strcmp(have, want) == 0 &&
                synth_read_report(cfg->synth.out_dir, &rep) == 0 && path_exists(truth_path);
    free(have);
    if (fresh) return;
    printf("data: generating synthetic users into %s\n", cfg->synth.out_dir);
    synth_generate(cfg, &rep);
    char err[512];
    if (write_file_atomic(path, want, strlen(want), err, sizeof err) != 0) fatal("%s", err);
}

// The holder's name as written in a lock file ("" if none), first line only.
static void lock_holder(int fd, char *out, size_t cap) {
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n > 0 ? n : 0] = 0;
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
}

// Exclusive lock of a shard directory (created if missing): one preparer at a time, and
// the synthetic CSVs it reads are generated under the same lock. The lock is an flock, so
// the kernel releases a dead holder's; the file names the holder while it is held and is
// emptied on release, so a name found there after taking the lock is that of a process that
// died while preparing: its leftovers are removed by the prepare that follows.
static int lock_shard_dir(const char *dir) {
    if (mkdir_p(dir) != 0) fatal("data.shard_dir: %s: cannot create (%s)", dir, strerror(errno));
    char lock_path[CFG_PATH_LEN + 16], holder[256];
    snprintf(lock_path, sizeof lock_path, "%s/.lock", dir);
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fatal("%s: cannot open lock file (%s)", lock_path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) fatal("%s: cannot lock (%s)", lock_path, strerror(errno));
        lock_holder(fd, holder, sizeof holder);
        printf("data: %s is being prepared by %s; waiting for it\n", dir,
               holder[0] ? holder : "another process");
        fflush(stdout);
        if (flock(fd, LOCK_EX) != 0) fatal("%s: cannot lock (%s)", lock_path, strerror(errno));
    }
    lock_holder(fd, holder, sizeof holder);
    if (holder[0])
        printf("data: %s: taking over the lock of %s, which ended without releasing it; its "
               "temporary files are removed\n",
               lock_path, holder);
    char host[128] = "?", text[256];
    gethostname(host, sizeof host - 1);
    int n = snprintf(text, sizeof text, "pid %ld on host %s\n", (long)getpid(), host);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
        warnf("%s: cannot write the holder's name (%s)", lock_path, strerror(errno));
    return fd;
}

static void unlock_shard_dir(int fd) {
    // Emptied: the next holder finds no name, so nothing stale to report.
    if (ftruncate(fd, 0) != 0) warnf("cannot clear the shard lock file (%s)", strerror(errno));
    flock(fd, LOCK_UN);
    close(fd);
}

// What data.shard_dir holds, compared with what cfg asks for; reads only (the stored
// fingerprint.txt lends the digests of unchanged inputs). text: cfg's fingerprint text.
static int data_state(const Config *cfg, const UserKey *key, StrBuf *text, uint64_t *fp, char *why,
                      size_t cap) {
    char path[CFG_PATH_LEN + 32], err[512];
    snprintf(path, sizeof path, "%s/fingerprint.txt", cfg->data.shard_dir);
    char *stored = read_file(path, NULL);
    fingerprint_text(cfg, key, stored, text);
    *fp = fingerprint_hash(text->data);
    snprintf(path, sizeof path, "%s/dataset.meta", cfg->data.shard_dir);
    DataMeta meta;
    int state = DATA_FRESH;
    if (meta_read(path, &meta, err, sizeof err) != 0) {
        state = path_exists(path) ? DATA_STALE : DATA_MISSING;
        snprintf(why, cap, "%s", path_exists(path) ? err : "not prepared yet");
    } else {
        if (meta.fingerprint != *fp) {
            char diff[2048] = "";
            if (stored) fingerprint_diff(stored, text->data, diff, sizeof diff);
            snprintf(why, cap, "stale: %s",
                     diff[0]  ? diff
                     : stored ? "the experiment's data settings or input files changed"
                              : "prepared by an older trainer (no fingerprint.txt)");
            state = DATA_STALE;
        }
        meta_free(&meta);
    }
    free(stored);
    return state;
}

// Prepares data.shard_dir from scratch and stores the fingerprint text next to the meta.
static void prepare_now(const Config *cfg, const UserKey *key, const StrBuf *text, uint64_t fp,
                        int rank, int size) {
    IngestReport rep;
    data_prepare(cfg, key, fp, &rep, rank, size);
    if (rank != 0) return;
    char path[CFG_PATH_LEN + 32], err[512];
    snprintf(path, sizeof path, "%s/fingerprint.txt", cfg->data.shard_dir);
    if (write_file_atomic(path, text->data, text->len, err, sizeof err) != 0) fatal("%s", err);
}

uint64_t dataset_ensure_prepared(const Config *cfg) {
    const char *dir = cfg->data.shard_dir;
    int fd = lock_shard_dir(dir);
    if (strcmp(cfg->data.source, "synth") == 0) ensure_synth(cfg);
    UserKey key;
    userkey_load(cfg, &key);
    StrBuf text = {0};
    uint64_t fp;
    char why[2600];
    if (data_state(cfg, &key, &text, &fp, why, sizeof why) != DATA_FRESH) {
        printf("data: preparing %s (%s)\n", dir, why);
        prepare_now(cfg, &key, &text, fp, 0, 1);
    } else {
        printf("data: using prepared shards in %s (fingerprint %016llx)\n", dir,
               (unsigned long long)fp);
    }
    sb_free(&text);
    unlock_shard_dir(fd);
    return fp;
}

uint64_t dataset_ensure_prepared_all(const Config *cfg, int rank, int size) {
    if (size == 1) return dataset_ensure_prepared(cfg);
    ingest_check_ranks(cfg, size);
    const char *dir = cfg->data.shard_dir;
    int fd = -1;
    UserKey key = {0};
    StrBuf text = {0};
    uint64_t plan[2] = {0, 0}; // fingerprint, whether to prepare
    if (rank == 0) {
        fd = lock_shard_dir(dir);
        if (strcmp(cfg->data.source, "synth") == 0) ensure_synth(cfg);
        userkey_load(cfg, &key);
        char why[2600];
        plan[1] = data_state(cfg, &key, &text, &plan[0], why, sizeof why) != DATA_FRESH;
        if (plan[1])
            printf("data: preparing %s (%s)\n", dir, why);
        else
            printf("data: using prepared shards in %s (fingerprint %016llx)\n", dir,
                   (unsigned long long)plan[0]);
    }
    comm_bcast(plan, sizeof plan, 0);
    if (plan[1]) {
        // Rank 0's key: a rank on another host might otherwise find (or make) another one.
        comm_bcast(&key, sizeof key, 0);
        prepare_now(cfg, &key, &text, plan[0], rank, size);
    }
    if (rank == 0) {
        sb_free(&text);
        unlock_shard_dir(fd);
    }
    return plan[0];
}

int dataset_state(const Config *cfg, uint64_t *fp, char *why, size_t cap) {
    char meta_path[CFG_PATH_LEN + 16];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", cfg->data.shard_dir);
    *fp = 0;
    if (!path_exists(meta_path)) { // nothing prepared (its inputs may not exist yet either)
        snprintf(why, cap, "not prepared yet");
        return DATA_MISSING;
    }
    UserKey key;
    userkey_load(cfg, &key);
    StrBuf text = {0};
    why[0] = 0;
    int state = data_state(cfg, &key, &text, fp, why, cap);
    sb_free(&text);
    return state;
}

// A scratch directory next to dir ("DIR.scratch-PID"), removed at exit and by fatal().
static void scratch_dir(const char *dir, char *out, size_t cap) {
    snprintf(out, cap, "%s.scratch-%ld", dir, (long)getpid());
    if (mkdir_p(out) != 0) fatal("%s: cannot create (%s)", out, strerror(errno));
    cleanup_register(out, NULL);
}

uint64_t dataset_prepare_for_reading(Config *cfg, char *why, size_t cap) {
    uint64_t fp;
    int state = dataset_state(cfg, &fp, why, cap);
    if (state == DATA_MISSING) return dataset_ensure_prepared(cfg); // nothing there to harm
    if (state == DATA_FRESH) {
        printf("data: using prepared shards in %s (fingerprint %016llx)\n", cfg->data.shard_dir,
               (unsigned long long)fp);
        return fp;
    }
    char dir[CFG_PATH_LEN];
    if (strcmp(cfg->data.source, "synth") == 0) {
        char path[CFG_PATH_LEN + 32], want[32];
        snprintf(path, sizeof path, "%s/settings.hash", cfg->synth.out_dir);
        snprintf(want, sizeof want, "%016llx\n", (unsigned long long)synth_settings_hash(cfg));
        char *have = read_file(path, NULL);
        if (!have || strcmp(have, want) != 0) {
            scratch_dir(cfg->synth.out_dir, dir, sizeof dir);
            snprintf(cfg->synth.out_dir, sizeof cfg->synth.out_dir, "%s", dir);
        }
        free(have);
    }
    printf("data: %s was prepared from other data than these settings (%s); it is left as it "
           "is and the data prepared for this command in a scratch directory, removed at exit\n",
           cfg->data.shard_dir, why);
    scratch_dir(cfg->data.shard_dir, dir, sizeof dir);
    snprintf(cfg->data.shard_dir, sizeof cfg->data.shard_dir, "%s", dir);
    return dataset_ensure_prepared(cfg);
}

void dataset_open(Dataset *d, const Config *cfg, uint64_t fingerprint, int rank, int size) {
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", cfg->data.shard_dir);
    char meta_path[CFG_PATH_LEN + 16], err[512];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", d->dir);
    if (meta_read(meta_path, &d->meta, err, sizeof err) != 0) fatal("%s", err);
    d->meta.gap_input = cfg->model.gap_input;
    if (d->meta.fingerprint != fingerprint)
        fatal("%s: prepared for other data (fingerprint %016llx, expected %016llx)", meta_path,
              (unsigned long long)d->meta.fingerprint, (unsigned long long)fingerprint);
    const int V = (int)d->meta.n_vshards;
    if (V % size != 0)
        fatal("%d ranks do not divide data.virtual_shards=%d: run with a number of ranks that "
              "divides it (e.g. %d), or change data.virtual_shards",
              size, V, V % 2 == 0 && size > 1 ? 2 : 1);
    d->fingerprint = fingerprint;
    d->rank = rank, d->size = size;
    d->n_shards = V / size;
    d->first_shard = rank * d->n_shards;
}

void dataset_open_scoring(Dataset *d, const Config *cfg, uint64_t fingerprint, int rank, int size) {
    dataset_open(d, cfg, fingerprint, 0, 1); // one rank of one: every V is fine
    const int64_t V = (int64_t)d->meta.n_vshards;
    d->rank = rank, d->size = size;
    d->first_shard = (int)(rank * V / size);
    d->n_shards = (int)((rank + 1) * V / size) - d->first_shard;
}

void dataset_load_split(Dataset *d, int split) {
    if (d->shards[split]) return;
    d->shards[split] = xcalloc((size_t)d->n_shards, sizeof(Shard));
    for (int i = 0; i < d->n_shards; i++) {
        char path[CFG_PATH_LEN + 64], err[1024];
        shard_file_name(path, sizeof path, d->dir, split, d->first_shard + i);
        if (shard_load(path, d->fingerprint, &d->shards[split][i], err, sizeof err) != 0)
            fatal("%s (run `trainer data prepare` to rebuild)", err);
        const ShardHeader *h = &d->shards[split][i].hdr;
        if (h->split != (uint32_t)split || h->vshard != (uint32_t)(d->first_shard + i) ||
            h->n_cat != d->meta.n_cat || h->n_num != d->meta.n_num ||
            h->payload_checksum != d->meta.split[split].shard_checksum[d->first_shard + i])
            fatal("%s: does not match dataset.meta (run `trainer data prepare`)", path);
    }
}

void dataset_free(Dataset *d) {
    for (int s = 0; s < N_SPLITS; s++) {
        if (!d->shards[s]) continue;
        for (int i = 0; i < d->n_shards; i++) shard_free(&d->shards[s][i]);
        free(d->shards[s]);
    }
    meta_free(&d->meta);
    memset(d, 0, sizeof *d);
}

uint64_t dataset_rank_events(const Dataset *d, int split, int rank) {
    uint64_t n = 0;
    int per = (int)d->meta.n_vshards / d->size;
    for (int v = rank * per; v < (rank + 1) * per; v++) n += d->meta.split[split].shard_events[v];
    return n;
}

uint64_t dataset_content_hash(const DataMeta *m) {
    Hasher h;
    hasher_init(&h, 0xc0);
    hasher_update(&h, &m->n_vshards, sizeof m->n_vshards);
    hasher_update(&h, &m->n_cat, sizeof m->n_cat);
    hasher_update(&h, &m->n_num, sizeof m->n_num);
    hasher_update(&h, &m->engagement_index, sizeof m->engagement_index);
    hasher_update(&h, &m->time_unit_seconds, sizeof m->time_unit_seconds);
    hasher_update(&h, &m->gap_offset, sizeof m->gap_offset);
    hasher_update(&h, &m->numeric_log1p, sizeof m->numeric_log1p);
    hasher_update(&h, &m->loggap_mean, sizeof m->loggap_mean);
    hasher_update(&h, &m->loggap_std, sizeof m->loggap_std);
    hasher_update(&h, m->num_mean, sizeof(double) * m->n_num);
    hasher_update(&h, m->num_std, sizeof(double) * m->n_num);
    for (uint32_t v = 0; v <= m->n_cat; v++)
        for (int i = 0; i < m->vocab_size[v]; i++)
            hasher_update(&h, m->vocab[v][i], strlen(m->vocab[v][i]) + 1);
    for (int s = 0; s < N_SPLITS; s++)
        hasher_update(&h, m->split[s].shard_checksum, sizeof(uint64_t) * m->n_vshards);
    return hasher_final(&h);
}

void dataset_synth(const Config *cfg) {
    SynthReport rep;
    synth_generate(cfg, &rep);
    char path[CFG_PATH_LEN + 32], want[32], err[512];
    snprintf(path, sizeof path, "%s/settings.hash", cfg->synth.out_dir);
    snprintf(want, sizeof want, "%016llx\n", (unsigned long long)synth_settings_hash(cfg));
    if (write_file_atomic(path, want, strlen(want), err, sizeof err) != 0) fatal("%s", err);
}

void dataset_prepare(const Config *cfg, int rank, int size) {
    ingest_check_ranks(cfg, size);
    int fd = -1;
    UserKey key = {0};
    StrBuf text = {0};
    uint64_t fp = 0;
    if (rank == 0) {
        fd = lock_shard_dir(cfg->data.shard_dir);
        if (strcmp(cfg->data.source, "synth") == 0) ensure_synth(cfg);
        userkey_load(cfg, &key);
    }
    // The inputs' digests, read by every rank (after rank 0 made the synthetic ones).
    char *digests = fingerprint_digests(cfg, rank, size);
    if (rank == 0) {
        fingerprint_text(cfg, &key, digests, &text);
        fp = fingerprint_hash(text.data);
    }
    free(digests);
    if (size > 1) { // rank 0's key: a rank on another host might otherwise find another one
        comm_bcast(&fp, sizeof fp, 0);
        comm_bcast(&key, sizeof key, 0);
    }
    prepare_now(cfg, &key, &text, fp, rank, size);
    if (rank == 0) {
        sb_free(&text);
        unlock_shard_dir(fd);
    }
}
