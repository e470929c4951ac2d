// erasure.c: see erasure.h.
#include "erasure.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hash.h"
#include "util.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int parse_hex16(const char *s, size_t len, uint64_t *out) {
    if (len != 16) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < 16; i++) {
        int c = tolower((unsigned char)s[i]);
        if (!isxdigit(c)) return 0;
        v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    *out = v;
    return 1;
}

typedef struct {
    uint64_t hash;
    int32_t line;
} Entry;

static int cmp_entry(const void *a, const void *b) {
    return cmp_u64(&((const Entry *)a)->hash, &((const Entry *)b)->hash);
}

void erasure_load(Erasure *e, const Config *cfg, const UserKey *key) {
    memset(e, 0, sizeof *e);
    const char *path = cfg->data.exclude_users;
    if (!path[0]) return;
    FILE *f = fopen(path, "r");
    if (!f) fatal("data.exclude_users: %s: cannot open (%s)", path, strerror(errno));
    Entry *ent = NULL;
    size_t n = 0, cap = 0;
    char buf[4098];
    int lineno = 0;
    while (fgets(buf, sizeof buf, f)) {
        lineno++;
        size_t len = strlen(buf);
        if (len == sizeof buf - 1 && buf[len - 1] != '\n')
            fatal("data.exclude_users: %s:%d: line longer than 4096 bytes", path, lineno);
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
                       buf[len - 1] == '\t'))
            buf[--len] = 0;
        char *s = buf;
        while (*s == ' ' || *s == '\t') s++, len--;
        if (!*s || *s == '#') continue;
        e->lines++;
        if (n + 2 > cap) ent = xrealloc(ent, sizeof(Entry) * (cap = cap ? 2 * cap : 1024));
        ent[n++] = (Entry){userkey_hash_id(key, s, len), e->lines};
        uint64_t h;
        if (parse_hex16(s, len, &h)) ent[n++] = (Entry){h, e->lines};
    }
    if (ferror(f)) fatal("data.exclude_users: %s: read error", path);
    fclose(f);
    qsort(ent, n, sizeof(Entry), cmp_entry);
    e->hash = xmalloc(sizeof(uint64_t) * (n ? n : 1));
    e->line = xmalloc(sizeof(int32_t) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        if (e->n == 0 || e->hash[e->n - 1] != ent[i].hash)
            e->hash[e->n] = ent[i].hash, e->line[e->n++] = ent[i].line;
    free(ent);
    e->hit = xcalloc((size_t)e->lines + 1, 1);
    // Digest of the list's users as keyed hashes of their raw ids (hex lines count as such).
    e->digest = hash_bytes(e->hash, sizeof(uint64_t) * e->n, 0xe7a5e) | 1;
}

void erasure_free(Erasure *e) {
    free(e->hash), free(e->line), free(e->hit);
    memset(e, 0, sizeof *e);
}

int erasure_has(Erasure *e, uint64_t h) {
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->hash[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < e->n && e->hash[lo] == h) {
        e->hit[e->line[lo]] = 1;
        return 1;
    }
    return 0;
}

int erasure_seen(const Erasure *e) {
    int n = 0;
    for (int i = 1; i <= e->lines; i++) n += e->hit[i];
    return n;
}

int consent_value(const char *s) {
    static const char *yes[] = {"true", "1", "yes", "y", "on"};
    static const char *no[] = {"false", "0", "no", "n", "off", ""};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        if (strcasecmp(s, yes[i]) == 0) return 1;
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        if (strcasecmp(s, no[i]) == 0) return 0;
    return -1;
}

void u64set_add(U64Set *s, uint64_t x) {
    if (x == 0) {
        s->n += !s->has_zero, s->has_zero = 1;
        return;
    }
    if (2 * (s->n + 1) > s->cap) {
        size_t old = s->cap;
        uint64_t *o = s->slot;
        s->cap = old ? 2 * old : 1024;
        s->slot = xcalloc(s->cap, sizeof(uint64_t));
        s->n = s->has_zero;
        for (size_t i = 0; i < old; i++)
            if (o[i]) u64set_add(s, o[i]);
        free(o);
    }
    size_t i = mix64(x) & (s->cap - 1);
    while (s->slot[i] && s->slot[i] != x) i = (i + 1) & (s->cap - 1);
    if (!s->slot[i]) s->slot[i] = x, s->n++;
}

void u64set_free(U64Set *s) {
    free(s->slot);
    memset(s, 0, sizeof *s);
}
