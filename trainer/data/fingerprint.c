// fingerprint.c: see fingerprint.h.
#include "fingerprint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

// The digest of a file's bytes, read in 1 MiB pieces.
static uint64_t file_digest(const char *path, const char *key) {
    FILE *f = fopen(path, "rb");
    if (!f) fatal("%s: %s: cannot read input (%s)", key, path, strerror(errno));
    enum { PIECE = 1 << 20 };
    char *buf = xmalloc(PIECE);
    Hasher h;
    hasher_init(&h, 0xf11e);
    size_t n;
    while ((n = fread(buf, 1, PIECE, f)) > 0) hasher_update(&h, buf, n);
    int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) fatal("%s: %s: cannot read input (%s)", key, path, strerror(errno));
    return hasher_final(&h);
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
        struct stat st;
        if (stat(in[i].path, &st) != 0)
            fatal("%s: %s: cannot read input (%s)", in[i].key, in[i].path, strerror(errno));
        char head[CFG_PATH_LEN + 64], mtime[64];
        const int synth = strcmp(in[i].key, "synth.out_dir") == 0;
        const char *base = strrchr(in[i].path, '/');
        snprintf(head, sizeof head, "input %s%s%s:", in[i].key, synth ? "/" : " ",
                 synth ? (base ? base + 1 : in[i].path) : in[i].path);
        snprintf(mtime, sizeof mtime, "%lld.%09ld", (long long)st.st_mtim.tv_sec,
                 (long)st.st_mtim.tv_nsec);
        unsigned long long digest;
        if (!prev_digest(prev, head, (long long)st.st_size, mtime, &digest))
            digest = file_digest(in[i].path, in[i].key);
        sb_appendf(out, "%s size %lld digest %016llx mtime %s\n", head, (long long)st.st_size,
                   digest, mtime);
    }
    free(in);
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
