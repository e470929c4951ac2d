// fingerprint.c: see fingerprint.h.
#include "fingerprint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm.h"
#include "erasure.h"
#include "hash.h"
#include "ingest.h"
#include "shards.h"

const char *const FINGERPRINT_KEYS[] = {
    "data.source",         "data.valid_frac",  "data.test_frac",        "data.user_col",
    "data.time_col",       "data.action_col",  "data.categorical_cols", "data.numeric_cols",
    "data.engagement_col", "data.time_format", "data.time_unit",        "data.numeric_transform",
    "data.virtual_shards", "data.min_events",  "model.gap_offset",      "data.on_error",
    "data.consent_col"};
const int N_FINGERPRINT_KEYS = ARRAY_LEN(FINGERPRINT_KEYS);
const char *const SYNTH_KEYS[] = {
    "synth.users",      "synth.min_events", "synth.max_events",     "synth.seed",
    "synth.valid_frac", "synth.test_frac",  "synth.irregular_frac", "synth.irregular_kinds"};
const int N_SYNTH_KEYS = ARRAY_LEN(SYNTH_KEYS);

// A file's digest: the hash of its blocks' digests, each block DIGEST_BLOCK bytes of the
// file (the last one shorter; an empty file has none). Blocks make the digest something P
// ranks compute together (fingerprint_digests) and one process alone (file_digest) alike.
enum { DIGEST_BLOCK = 16 << 20, DIGEST_PIECE = 1 << 20 };

static int64_t n_blocks(long long size) { return (size + DIGEST_BLOCK - 1) / DIGEST_BLOCK; }

// The digest of block b of the open file fd (buf: DIGEST_PIECE bytes); -1 on a read error.
static int block_digest(int fd, long long size, int64_t b, char *buf, uint64_t *out) {
    Hasher h;
    hasher_init(&h, 0xb10c);
    const long long stop = (b + 1) * (long long)DIGEST_BLOCK, end = stop < size ? stop : size;
    for (long long at = b * (long long)DIGEST_BLOCK; at < end;) {
        size_t want = end - at < DIGEST_PIECE ? (size_t)(end - at) : DIGEST_PIECE;
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            if (got == 0) errno = EIO; // shorter than its size: changed while read
            return -1;
        }
        hasher_update(&h, buf, (size_t)got);
        at += got;
    }
    *out = hasher_final(&h);
    return 0;
}

static uint64_t combine_blocks(const uint64_t *digests, int64_t n) {
    return hash_bytes(digests, sizeof(uint64_t) * (size_t)n, 0xf11e);
}

// The digests of blocks b, b + step, ... of the file into out; returns how many.
static size_t read_blocks(const char *path, const char *key, long long size, int64_t b,
                          int64_t step, uint64_t *out) {
    const int64_t nb = n_blocks(size);
    if (b >= nb) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fatal("%s: %s: cannot read input (%s)", key, path, strerror(errno));
    char *buf = xmalloc(DIGEST_PIECE);
    size_t n = 0;
    for (; b < nb; b += step)
        if (block_digest(fd, size, b, buf, &out[n++]) != 0)
            fatal("%s: %s: cannot read input (%s)", key, path, strerror(errno));
    free(buf);
    close(fd);
    return n;
}

// One process: every block of the file, in order.
static uint64_t file_digest(const char *path, const char *key, long long size) {
    const int64_t n = n_blocks(size);
    uint64_t *d = xmalloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
    read_blocks(path, key, size, 0, 1, d);
    uint64_t digest = combine_blocks(d, n);
    free(d);
    return digest;
}

// An input's line head ("input KEY NAME:") and its size and mtime text.
static void input_head(const Input *in, char *head, size_t cap, long long *size, char *mtime,
                       size_t mcap) {
    struct stat st;
    if (stat(in->path, &st) != 0)
        fatal("%s: %s: cannot read input (%s)", in->key, in->path, strerror(errno));
    const int synth = strcmp(in->key, "synth.out_dir") == 0;
    const char *base = strrchr(in->path, '/');
    snprintf(head, cap, "input %s%s%s:", in->key, synth ? "/" : " ",
             synth ? (base ? base + 1 : in->path) : in->path);
    snprintf(mtime, mcap, "%lld.%09ld", (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    *size = (long long)st.st_size;
}

// The digest recorded in prev for this input line's head and size+mtime, if any.
static int prev_digest(const char *prev, const char *head, long long size, const char *mtime,
                       unsigned long long *digest) {
    const char *p = prev;
    size_t hl = strlen(head);
    while (p && *p) {
        long long s;
        char t[64];
        if (strncmp(p, head, hl) == 0 &&
            sscanf(p + hl, " size %lld digest %llx mtime %63s", &s, digest, t) == 3 && s == size &&
            strcmp(t, mtime) == 0)
            return 1;
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    return 0;
}

static void input_lines(const Config *cfg, const char *prev, StrBuf *out) {
    int n;
    Input *in = list_inputs(cfg, &n);
    for (int i = 0; i < n; i++) {
        char head[CFG_PATH_LEN + 64], mtime[64];
        long long size;
        input_head(&in[i], head, sizeof head, &size, mtime, sizeof mtime);
        unsigned long long digest;
        if (!prev_digest(prev, head, size, mtime, &digest))
            digest = file_digest(in[i].path, in[i].key, size);
        sb_appendf(out, "%s size %lld digest %016llx mtime %s\n", head, size, digest, mtime);
    }
    free(in);
}

// Every rank: the blocks g = rank, rank + P, ... of all inputs' blocks in order (sizes from
// rank 0, which stats the files); rank 0 combines them per file.
char *fingerprint_digests(const Config *cfg, int rank, int size) {
    int n;
    Input *in = list_inputs(cfg, &n);
    char(*head)[CFG_PATH_LEN + 64] = xcalloc((size_t)(n ? n : 1), sizeof *head);
    char(*mtime)[64] = xcalloc((size_t)(n ? n : 1), sizeof *mtime);
    long long *bytes = xcalloc((size_t)(n ? n : 1), sizeof *bytes);
    for (int i = 0; rank == 0 && i < n; i++)
        input_head(&in[i], head[i], sizeof head[i], &bytes[i], mtime[i], sizeof mtime[i]);
    if (size > 1) comm_bcast(bytes, sizeof *bytes * (size_t)n, 0);
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += n_blocks(bytes[i]);
    uint64_t *mine = xmalloc(sizeof(uint64_t) * (size_t)(total / size + 1));
    size_t n_mine = 0;
    for (int64_t i = 0, g = 0; i < n; g += n_blocks(bytes[i]), i++) // from its first block of i
        n_mine += read_blocks(in[i].path, in[i].key, bytes[i], ((rank - g) % size + size) % size,
                              size, mine + n_mine);
    size_t got;
    uint64_t *all = size > 1 ? comm_allgatherv_bytes(mine, sizeof *mine * n_mine, &got) : mine;
    char *text = NULL;
    if (rank == 0) {
        // Rank r's k-th block is global block r + k * P: back into global order.
        uint64_t *d = xmalloc(sizeof(uint64_t) * (size_t)(total ? total : 1));
        size_t at = 0;
        for (int r = 0; r < size; r++)
            for (int64_t gb = r; gb < total; gb += size) d[gb] = all[at++];
        StrBuf sb = {0};
        for (int64_t i = 0, g = 0; i < n; g += n_blocks(bytes[i]), i++)
            sb_appendf(&sb, "%s size %lld digest %016llx mtime %s\n", head[i], bytes[i],
                       (unsigned long long)combine_blocks(d + g, n_blocks(bytes[i])), mtime[i]);
        text = sb.data ? sb.data : xcalloc(1, 1);
        free(d);
    }
    if (all != mine) free(all);
    free(mine), free(bytes), free(mtime), free(head), free(in);
    return text;
}

void fingerprint_text(const Config *cfg, const UserKey *key, const char *prev, StrBuf *out) {
    sb_appendf(out, "format: %d.%d\n", SHARD_VERSION, META_VERSION);
    const int synth = strcmp(cfg->data.source, "synth") == 0;
    for (int i = 0; i < N_FINGERPRINT_KEYS + (synth ? N_SYNTH_KEYS : 0); i++) {
        const char *k =
            i < N_FINGERPRINT_KEYS ? FINGERPRINT_KEYS[i] : SYNTH_KEYS[i - N_FINGERPRINT_KEYS];
        sb_appendf(out, "%s: ", k);
        if (config_key_text(cfg, k, out) != 0) fatal("internal: no config key %s", k);
        sb_append(out, "\n", 1);
    }
    input_lines(cfg, prev, out);
    sb_appendf(out, "user key: %016llx\n", (unsigned long long)key->fingerprint);
    // Erasure and consent change which users land; the list by its content.
    Erasure er;
    erasure_load(&er, cfg, key);
    sb_appendf(out, "erasure: %016llx\n", (unsigned long long)er.digest);
    erasure_free(&er);
}

// A line without its " mtime ..." tail: what the hash and the diff compare.
static size_t line_len(const char *p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    const char *m = strstr(p, " mtime ");
    if (m && (size_t)(m - p) < n) n = (size_t)(m - p);
    return n;
}

static const char *next_line(const char *p) {
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p + strlen(p);
}

uint64_t fingerprint_hash(const char *text) {
    Hasher h;
    hasher_init(&h, 0xda7a);
    for (const char *p = text; *p; p = next_line(p)) {
        hasher_update(&h, p, line_len(p));
        hasher_update(&h, "\n", 1);
    }
    return hasher_final(&h);
}

// The line of text whose name (up to ": ") is name's, or NULL.
static const char *find_named(const char *text, const char *name, size_t name_len) {
    for (const char *p = text; p && *p; p = next_line(p))
        if (strncmp(p, name, name_len) == 0 && p[name_len] == ':') return p;
    return NULL;
}

void fingerprint_diff(const char *stored, const char *wanted, char *out, size_t cap) {
    out[0] = 0;
    size_t used = 0;
    for (const char *p = wanted; *p; p = next_line(p)) {
        const char *colon = strchr(p, ':');
        if (!colon || colon > p + line_len(p)) continue;
        const size_t nl = (size_t)(colon - p), wl = line_len(p);
        const char *q = find_named(stored, p, nl);
        if (q && line_len(q) == wl && strncmp(p, q, wl) == 0) continue;
        const char *old = q ? q + nl + 2 : "(none)";
        const int old_len = q ? (int)(line_len(q) - nl - 2) : 6;
        int n = snprintf(out + used, cap - used, "%s%.*s (%.*s -> %.*s)", used ? ", " : "", (int)nl,
                         p, old_len, old, (int)(wl - nl - 2), colon + 2);
        if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
    }
}
