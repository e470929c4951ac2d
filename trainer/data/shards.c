// shards.c: reading and writing the formats of shards.h.
#include "shards.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

const char *const SPLIT_NAMES[N_SPLITS] = {"train", "valid", "test"};

int split_from_name(const char *name) {
    for (int s = 0; s < N_SPLITS; s++)
        if (strcmp(name, SPLIT_NAMES[s]) == 0) return s;
    return -1;
}

void shard_file_name(char *out, size_t cap, const char *dir, int split, int vshard) {
    snprintf(out, cap, "%s/%s-%04d.shard", dir, SPLIT_NAMES[split], vshard);
}

int shard_load(const char *path, uint64_t fingerprint, Shard *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t size;
    char *buf = read_file(path, &size);
    if (!buf) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    ShardHeader *h = &out->hdr;
    if (size < sizeof *h) {
        snprintf(err, errlen, "%s: truncated (%zu bytes, header needs 128)", path, size);
        goto fail;
    }
    memcpy(h, buf, sizeof *h);
    if (memcmp(h->magic, "LSTMSHRD", 8) != 0) {
        snprintf(err, errlen, "%s: not a shard file (bad magic)", path);
        goto fail;
    }
    if (h->version != SHARD_VERSION) {
        snprintf(err, errlen, "%s: shard format version %u, this program reads %d", path,
                 h->version, SHARD_VERSION);
        goto fail;
    }
    if (hash_bytes(h, offsetof(ShardHeader, header_checksum), 0) != h->header_checksum) {
        snprintf(err, errlen, "%s: header checksum mismatch (corrupt file)", path);
        goto fail;
    }
    if (h->data_fingerprint != fingerprint) {
        snprintf(err, errlen, "%s: belongs to other data (fingerprint %016llx, expected %016llx)",
                 path, (unsigned long long)h->data_fingerprint, (unsigned long long)fingerprint);
        goto fail;
    }
    size_t ev_bytes = (size_t)h->n_events * h->event_bytes;
    size_t want = sizeof *h + ev_bytes + (size_t)h->n_users * sizeof(ShardUser);
    if (h->event_bytes != shard_event_bytes((int)h->n_cat, (int)h->n_num) || size != want) {
        snprintf(err, errlen, "%s: size %zu does not match its header (%zu expected)", path, size,
                 want);
        goto fail;
    }
    if (hash_bytes(buf + sizeof *h, size - sizeof *h, 0) != h->payload_checksum) {
        snprintf(err, errlen, "%s: payload checksum mismatch (corrupt file)", path);
        goto fail;
    }
    out->events = xalloc_aligned(ev_bytes ? ev_bytes : 8);
    memcpy(out->events, buf + sizeof *h, ev_bytes);
    out->users = xmalloc(sizeof(ShardUser) * (h->n_users ? h->n_users : 1));
    memcpy(out->users, buf + sizeof *h + ev_bytes, sizeof(ShardUser) * h->n_users);
    for (uint64_t u = 0; u < h->n_users; u++) {
        const ShardUser *su = &out->users[u];
        if (su->first_event + su->n_events > h->n_events) {
            snprintf(err, errlen, "%s: user %llu points past the events", path,
                     (unsigned long long)u);
            free(buf);
            shard_free(out);
            return -1;
        }
    }
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

void shard_free(Shard *s) {
    free(s->events);
    free(s->users);
    s->events = NULL;
    s->users = NULL;
}

// ---------------------------------------------------------------- meta

void meta_alloc_counts(DataMeta *m) {
    for (int s = 0; s < N_SPLITS; s++) {
        m->split[s].shard_users = xcalloc(m->n_vshards, sizeof(uint64_t));
        m->split[s].shard_events = xcalloc(m->n_vshards, sizeof(uint64_t));
        m->split[s].shard_checksum = xcalloc(m->n_vshards, sizeof(uint64_t));
    }
}

void meta_free(DataMeta *m) {
    for (int s = 0; s < N_SPLITS; s++) {
        free(m->split[s].shard_users);
        free(m->split[s].shard_events);
        free(m->split[s].shard_checksum);
    }
    for (uint32_t v = 0; v <= m->n_cat && v <= CFG_LIST_MAX; v++) {
        if (!m->vocab[v]) continue;
        for (int i = 0; i < m->vocab_size[v]; i++) free(m->vocab[v][i]);
        free(m->vocab[v]);
    }
    memset(m, 0, sizeof *m);
}

// Writer and reader share one field order; the reader checks bounds on every field.
static void put(StrBuf *b, const void *p, size_t n) {
    sb_append(b, (const char *)p, n);
}
#define PUT(b, x) put((b), &(x), sizeof(x))
static void put_str(StrBuf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    PUT(b, n);
    put(b, s, n);
}

int meta_write(const char *path, const DataMeta *m, char *err, size_t errlen) {
    StrBuf b = {0};
    put(&b, "LSTMMETA", 8);
    uint32_t version = META_VERSION;
    PUT(&b, version);
    PUT(&b, m->n_vshards), PUT(&b, m->n_cat), PUT(&b, m->n_num), PUT(&b, m->engagement_index);
    PUT(&b, m->fingerprint), PUT(&b, m->time_unit_seconds), PUT(&b, m->gap_offset);
    PUT(&b, m->numeric_log1p), PUT(&b, m->loggap_mean), PUT(&b, m->loggap_std);
    put(&b, m->num_mean, sizeof(double) * m->n_num);
    put(&b, m->num_std, sizeof(double) * m->n_num);
    for (uint32_t c = 0; c < 2 + m->n_cat + m->n_num; c++) put_str(&b, m->column[c]);
    for (uint32_t v = 0; v <= m->n_cat; v++) {
        PUT(&b, m->vocab_size[v]);
        for (int i = 0; i < m->vocab_size[v]; i++) put_str(&b, m->vocab[v][i]);
    }
    for (int s = 0; s < N_SPLITS; s++) {
        const SplitCounts *c = &m->split[s];
        PUT(&b, c->users), PUT(&b, c->events), PUT(&b, c->targets), PUT(&b, c->dropped_users);
        put(&b, c->shard_users, sizeof(uint64_t) * m->n_vshards);
        put(&b, c->shard_events, sizeof(uint64_t) * m->n_vshards);
        put(&b, c->shard_checksum, sizeof(uint64_t) * m->n_vshards);
    }
    PUT(&b, m->rows_read), PUT(&b, m->bad_rows);
    uint64_t sum = hash_bytes(b.data, b.len, 0);
    PUT(&b, sum);
    int rc = write_file_atomic(path, b.data, b.len, err, errlen);
    sb_free(&b);
    return rc;
}

typedef struct {
    const char *p, *end;
    int bad;
} Cursor;

static void take(Cursor *c, void *dst, size_t n) {
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        memset(dst, 0, n);
        return;
    }
    memcpy(dst, c->p, n);
    c->p += n;
}
#define TAKE(c, x) take((c), &(x), sizeof(x))

static char *take_str(Cursor *c) {
    uint32_t n = 0;
    TAKE(c, n);
    if (c->bad || (size_t)(c->end - c->p) < n || n > (1u << 20)) {
        c->bad = 1;
        return str_dup("");
    }
    char *s = xmalloc(n + 1);
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    return s;
}

// The frame of a dataset.meta: magic, trailing checksum, version; the body's cursor.
static int meta_frame(const char *path, char *buf, size_t size, Cursor *c, char *err,
                      size_t errlen) {
    uint64_t sum;
    if (size < 20 || memcmp(buf, "LSTMMETA", 8) != 0) {
        snprintf(err, errlen, "%s: not a dataset.meta file", path);
        return -1;
    }
    memcpy(&sum, buf + size - 8, 8);
    if (hash_bytes(buf, size - 8, 0) != sum) {
        snprintf(err, errlen, "%s: checksum mismatch (corrupt or truncated)", path);
        return -1;
    }
    *c = (Cursor){buf + 8, buf + size - 8, 0};
    uint32_t version = 0;
    TAKE(c, version);
    if (version != META_VERSION) {
        snprintf(err, errlen, "%s: meta version %u, this program reads %d", path, version,
                 META_VERSION);
        return -1;
    }
    return 0;
}

// Column names, vocabularies and per-split counts, after the sizes they depend on.
static void meta_take_tables(Cursor *c, DataMeta *m) {
    for (uint32_t k = 0; k < 2 + m->n_cat + m->n_num; k++) {
        char *s = take_str(c);
        snprintf(m->column[k], CFG_NAME_LEN, "%s", s);
        free(s);
    }
    for (uint32_t v = 0; v <= m->n_cat; v++) {
        TAKE(c, m->vocab_size[v]);
        if (c->bad || m->vocab_size[v] < 1 || m->vocab_size[v] > (1 << 26)) {
            c->bad = 1;
            m->vocab_size[v] = 0;
            break;
        }
        m->vocab[v] = xcalloc((size_t)m->vocab_size[v], sizeof(char *));
        for (int i = 0; i < m->vocab_size[v]; i++) m->vocab[v][i] = take_str(c);
    }
    meta_alloc_counts(m);
    for (int s = 0; s < N_SPLITS && !c->bad; s++) {
        SplitCounts *sc = &m->split[s];
        TAKE(c, sc->users), TAKE(c, sc->events), TAKE(c, sc->targets);
        TAKE(c, sc->dropped_users);
        take(c, sc->shard_users, sizeof(uint64_t) * m->n_vshards);
        take(c, sc->shard_events, sizeof(uint64_t) * m->n_vshards);
        take(c, sc->shard_checksum, sizeof(uint64_t) * m->n_vshards);
    }
}

int meta_read(const char *path, DataMeta *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    size_t size;
    char *buf = read_file(path, &size);
    if (!buf) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    Cursor c;
    if (meta_frame(path, buf, size, &c, err, errlen) != 0) {
        free(buf);
        return -1;
    }
    TAKE(&c, m->n_vshards), TAKE(&c, m->n_cat), TAKE(&c, m->n_num), TAKE(&c, m->engagement_index);
    if (m->n_cat > CFG_LIST_MAX || m->n_num > CFG_LIST_MAX || m->n_vshards == 0 ||
        m->n_vshards > 1u << 20) {
        snprintf(err, errlen, "%s: implausible sizes", path);
        free(buf);
        memset(m, 0, sizeof *m);
        return -1;
    }
    TAKE(&c, m->fingerprint), TAKE(&c, m->time_unit_seconds), TAKE(&c, m->gap_offset);
    TAKE(&c, m->numeric_log1p), TAKE(&c, m->loggap_mean), TAKE(&c, m->loggap_std);
    take(&c, m->num_mean, sizeof(double) * m->n_num);
    take(&c, m->num_std, sizeof(double) * m->n_num);
    meta_take_tables(&c, m);
    TAKE(&c, m->rows_read), TAKE(&c, m->bad_rows);
    free(buf);
    if (c.bad || c.p != c.end) {
        snprintf(err, errlen, "%s: malformed contents", path);
        meta_free(m);
        return -1;
    }
    return 0;
}
