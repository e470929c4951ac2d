// synth_truth.c: see synth_truth.h.
#include "synth_truth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void synth_truth_open(SynthTruthOut *t, const char *dir) {
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s/%s", dir, SYNTH_TRUTH_FILE);
    sb_appendf(&t->text, "%s,irregular,irregular_start\n", SYNTH_TRUTH_COLUMNS);
}

void synth_truth_row(SynthTruthOut *t, const char *user_id, const char *segment,
                     const char *bayes_segment, const char *irregular, long long irregular_start) {
    if (irregular[0])
        sb_appendf(&t->text, "%s,%s,%s,%s,%lld\n", user_id, segment, bayes_segment, irregular,
                   irregular_start);
    else
        sb_appendf(&t->text, "%s,%s,%s,,\n", user_id, segment, bayes_segment);
    t->users++;
    t->bayes_correct += strcmp(segment, bayes_segment) == 0;
}

double synth_truth_finish(SynthTruthOut *t) {
    char err[1400];
    if (write_file_atomic(t->path, t->text.data, t->text.len, err, sizeof err) != 0)
        fatal("%s", err);
    sb_free(&t->text);
    return t->users ? (double)t->bayes_correct / (double)t->users : 0.0;
}

static int by_hash(const void *a, const void *b) {
    uint64_t x = ((const TruthUser *)a)->user_hash, y = ((const TruthUser *)b)->user_hash;
    return x < y ? -1 : x > y;
}

// Index of a segment name, added when new; -1 when there are too many.
static int segment_index(SynthTruth *t, const char *s, size_t n) {
    for (int i = 0; i < t->n_segments; i++)
        if (strlen(t->names[i]) == n && memcmp(t->names[i], s, n) == 0) return i;
    if (t->n_segments == SYNTH_TRUTH_MAX_SEG || n == 0 || n >= sizeof t->names[0]) return -1;
    memcpy(t->names[t->n_segments], s, n);
    t->names[t->n_segments][n] = 0;
    return t->n_segments++;
}

int synth_truth_read(const char *path, const UserKey *key, int split, SynthTruth *out, char *err,
                     size_t errlen) {
    memset(out, 0, sizeof *out);
    size_t size;
    char *text = read_file(path, &size);
    if (!text) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    size_t hlen = strlen(SYNTH_TRUTH_COLUMNS);
    // Extra columns after ours (other truths the generator may record) are allowed.
    if (size < hlen || memcmp(text, SYNTH_TRUTH_COLUMNS, hlen) != 0 ||
        (text[hlen] != '\n' && text[hlen] != ',')) {
        snprintf(err, errlen, "%s:1: header does not start with %s", path, SYNTH_TRUTH_COLUMNS);
        free(text);
        return -1;
    }
    int64_t cap = 1024, line = 1;
    out->users = xmalloc(sizeof(TruthUser) * (size_t)cap);
    char *p = strchr(text, '\n') + 1, *end = text + size;
    while (p < end) {
        line++;
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        char *c1 = memchr(p, ',', (size_t)(eol - p));
        char *c2 = c1 ? memchr(c1 + 1, ',', (size_t)(eol - c1 - 1)) : NULL;
        char *c3 = c2 ? memchr(c2 + 1, ',', (size_t)(eol - c2 - 1)) : NULL;
        char *f3_end = c3 ? c3 : eol;
        int s = -1, b = -1;
        if (c1 && c2 && c1 > p) {
            s = segment_index(out, c1 + 1, (size_t)(c2 - c1 - 1));
            b = segment_index(out, c2 + 1, (size_t)(f3_end - c2 - 1));
        }
        if (s < 0 || b < 0) {
            snprintf(err, errlen, "%s:%lld: expected %s (a user id and two segment names)",
                     path, (long long)line, SYNTH_TRUTH_COLUMNS);
            free(text);
            synth_truth_free(out);
            return -1;
        }
        if (out->n_users == cap) {
            cap *= 2;
            out->users = xrealloc(out->users, sizeof(TruthUser) * (size_t)cap);
        }
        TruthUser *u = &out->users[out->n_users++];
        u->user_hash = userkey_split_hash(userkey_hash_id(key, p, (size_t)(c1 - p)), split);
        u->segment = (int16_t)s, u->bayes_segment = (int16_t)b;
        p = eol + 1;
    }
    free(text);
    qsort(out->users, (size_t)out->n_users, sizeof(TruthUser), by_hash);
    return 0;
}

const TruthUser *synth_truth_find(const SynthTruth *t, uint64_t user_hash) {
    TruthUser key = {.user_hash = user_hash};
    return bsearch(&key, t->users, (size_t)t->n_users, sizeof(TruthUser), by_hash);
}

void synth_truth_free(SynthTruth *t) {
    free(t->users);
    memset(t, 0, sizeof *t);
}
