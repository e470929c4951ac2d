// synth_irregular.c: see synth_irregular.h. Segment and action indices are those of synth.c's
// tables (segments lurker creator night_owl bursty_sharer casual; actions post like comment
// share view follow; contents text image video link).
#include "synth_irregular.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *const IRREGULAR_KIND_NAMES[IRR_N_KINDS] = {"", "bot", "burst", "takeover", "spree"};

enum { ACT_LIKE = 1, ACT_COMMENT = 2, ACT_SHARE = 3, ACT_FOLLOW = 5, N_CONTENT = 4 };
// The segment a taken-over account behaves like: the most different one (other rhythm,
// other actions, other pace).
static const int TAKEOVER_TO[5] = {1, 0, 3, 2, 2};
static const int BOT_ACTIONS[4] = {ACT_LIKE, ACT_SHARE, ACT_FOLLOW, ACT_COMMENT};

#define IRR_STREAM 0x1a7e6a11ULL // stream offset of the irregular draws (never a user's 1 + u)

static int kind_from_name(const char *name) {
    for (int k = 1; k < IRR_N_KINDS; k++)
        if (strcmp(name, IRREGULAR_KIND_NAMES[k]) == 0) return k;
    return IRR_NONE;
}

void synth_irregular_plan(const Config *cfg, uint64_t u, long long n_events, IrregularPlan *p) {
    memset(p, 0, sizeof *p);
    p->rng = rng_make((uint64_t)cfg->synth.seed, (IRR_STREAM << 32) + u);
    if (cfg->synth.irregular_frac <= 0 || rng_uniform(&p->rng) >= cfg->synth.irregular_frac)
        return;
    int kinds[IRR_N_KINDS], n_kinds = 0;
    const StrList *l = &cfg->synth.irregular_kinds;
    for (int i = 0; i < l->n; i++) {
        int k = kind_from_name(l->item[i]);
        if (k == IRR_NONE) fatal("synth.irregular_kinds: unknown kind \"%s\"", l->item[i]);
        kinds[n_kinds++] = k;
        if (n_kinds == IRR_N_KINDS - 1) break;
    }
    if (n_kinds == 0)
        for (int k = 1; k < IRR_N_KINDS; k++) kinds[n_kinds++] = k;
    p->kind = kinds[rng_below(&p->rng, (uint64_t)n_kinds)];
    long long lo = n_events / 4 > 1 ? n_events / 4 : 1, hi = n_events / 2 > lo ? n_events / 2 : lo;
    p->start = lo + (long long)rng_below(&p->rng, (uint64_t)(hi - lo + 1));
    long long run = 15 + (long long)rng_below(&p->rng, 16);
    p->end = p->kind == IRR_BURST || p->kind == IRR_SPREE ? p->start + run : n_events;
    if (p->end > n_events) p->end = n_events;
    p->action = BOT_ACTIONS[rng_below(&p->rng, 4)];
    p->content = (int)rng_below(&p->rng, N_CONTENT);
    p->period_s = 30.0 + 270.0 * rng_uniform(&p->rng);
}

int synth_irregular_step(IrregularPlan *p, long long i, int segment, IrregularStep *st) {
    *st = (IrregularStep){-1, -1, -1, 0, 0};
    if (p->kind == IRR_NONE || i < p->start || i >= p->end) return 0;
    switch (p->kind) {
    case IRR_BOT:
        st->action = p->action, st->content = p->content;
        st->gap_s = p->period_s * exp(0.03 * rng_normal(&p->rng));
        break;
    case IRR_BURST:
        st->gap_s = 5.0 * exp(0.5 * rng_normal(&p->rng));
        break;
    case IRR_TAKEOVER:
        st->segment = TAKEOVER_TO[segment];
        break;
    case IRR_SPREE:
        st->action = rng_uniform(&p->rng) < 0.5 ? ACT_LIKE : ACT_SHARE;
        st->gap_s = 20.0 * exp(0.7 * rng_normal(&p->rng));
        st->log_eng_shift = 2.5;
        break;
    }
    return 1;
}

// ---------------------------------------------------------------- truth.csv

static int by_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

long long truth_irregular_ids(const char *csv_path, uint64_t **out) {
    *out = NULL;
    char path[CFG_PATH_LEN + 64];
    const char *slash = strrchr(csv_path, '/');
    int dir_len = slash ? (int)(slash - csv_path) : 1;
    snprintf(path, sizeof path, "%.*s/truth.csv", dir_len, slash ? csv_path : ".");
    char *text = read_file(path, NULL);
    if (!text) return 0;
    long long n = 0, cap = 0;
    char *save = NULL;
    strtok_r(text, "\n", &save); // header
    for (char *line = strtok_r(NULL, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        // user,segment,bayes_segment,irregular,irregular_start (synth_truth.h)
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        char *c3 = c2 ? strchr(c2 + 1, ',') : NULL;
        if (!c3 || c3[1] == ',' || c3[1] == 0) continue; // a normal user (or not a row)
        if (n == cap) *out = xrealloc(*out, sizeof(uint64_t) * (size_t)(cap = cap ? 2 * cap : 64));
        (*out)[n++] = hash_bytes(line, (size_t)(c1 - line), 0x7275);
    }
    free(text);
    if (n) qsort(*out, (size_t)n, sizeof(uint64_t), by_u64);
    return n;
}

int truth_ids_contain(const uint64_t *ids, long long n, const char *user_id, size_t len) {
    if (n == 0) return 0;
    uint64_t h = hash_bytes(user_id, len, 0x7275);
    return bsearch(&h, ids, (size_t)n, sizeof h, by_u64) != NULL;
}
