// test_explain.c: integrated-gradients attributions (run/attribution.c) on fixed weights.
//
// 1. Against tests/fixtures/explain_reference.txt, written by tests/tools/make_explain_reference.py: the
//    same model, baseline, path and trapezoid rule in float64 pure Python, gradients by the
//    complex-step derivative (no hand-written backward). Two cases: the predicted class with
//    state carried into the window, and the gap of a user's first events. Every (event,
//    group) attribution must agree within 1e-5 of the case's largest |attribution| (+1e-7;
//    measured: 1e-7 relative, float32 rounding), f(x) and f(baseline) within 1e-5, and the C completeness error must be <= 1%. Run with
//    few lanes (the 33 path points split over batches) and with several targets per batch.
// 2. Hand-built models with a known answer:
//    a. no memory (forget gate shut, W_hh = 0) and only the action columns wired in: all
//       attribution sits on (offset 1, action), every other cell is 0;
//    b. an accumulator (gates open, c_t = c_{t-1} + tanh(w * log gap_t), f = the gap output):
//       two events with the same gap get the same attribution, an event at the baseline
//       gets 0, and the sum equals the closed form std * w_head * tanh(2 tanh(w v)).
// 3. The deletion check removes the top event (and a random other one) and the completeness
//    doubling rule reaches 1% where 2 steps do not.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attribution.h"
#include "check.h"
#include "hash.h"
#include "util.h"

// ---------------------------------------------------------------- fixture (name count values)

typedef struct {
    char name[64];
    int count;
    double *v;
} Entry;

static Entry g_fx[64];
static int g_nfx;

static void fixture_load(const char *path) {
    size_t size;
    char *text = read_file(path, &size), *p = text;
    if (!text) fatal("test_explain: cannot read %s", path);
    while (*p) {
        while (*p == ' ' || *p == '\n') p++;
        if (*p == '#') {
            while (*p && *p != '\n') p++;
            continue;
        }
        if (!*p) break;
        if (g_nfx == 64) fatal("test_explain: too many entries in %s", path);
        Entry *e = &g_fx[g_nfx++];
        int used = 0;
        if (sscanf(p, "%63s %d%n", e->name, &e->count, &used) != 2 || e->count < 1)
            fatal("test_explain: %s: bad entry near '%.20s'", path, p);
        p += used;
        e->v = xmalloc(sizeof(double) * (size_t)e->count);
        for (int i = 0; i < e->count; i++) {
            char *end;
            e->v[i] = strtod(p, &end);
            if (end == p) fatal("test_explain: %s: %s is short", path, e->name);
            p = end;
        }
    }
    free(text);
}

static const double *get(const char *name, int count) {
    for (int i = 0; i < g_nfx; i++)
        if (strcmp(g_fx[i].name, name) == 0) {
            if (g_fx[i].count != count)
                fatal("test_explain: %s has %d numbers, expected %d (regenerate the fixture)", name,
                      g_fx[i].count, count);
            return g_fx[i].v;
        }
    fatal("test_explain: no entry %s in the fixture", name);
}

static void copy_to(real *dst, const char *name, int count) {
    const double *v = get(name, count);
    for (int i = 0; i < count; i++) dst[i] = (real)v[i];
}

// A DataMeta for groups [action, gap, time_of_day, day_of_week, content, engagement].
static void fake_meta(DataMeta *meta, double mean, double std) {
    memset(meta, 0, sizeof *meta);
    meta->n_cat = 1, meta->n_num = 1, meta->time_unit_seconds = 1, meta->engagement_index = -1;
    meta->loggap_mean = mean, meta->loggap_std = std, meta->gap_offset = 1e-3;
    meta->num_std[0] = 1;
    snprintf(meta->column[0], CFG_NAME_LEN, "action");
    snprintf(meta->column[1], CFG_NAME_LEN, "content");
    snprintf(meta->column[2], CFG_NAME_LEN, "engagement");
}

static Model *reference_model(ModelShape *s, FeatureGroups *fg, DataMeta *meta, int *steps) {
    const double *sh = get("shape", 10);
    const int K = (int)sh[0], EA = (int)sh[1], EC = (int)sh[3], H = (int)sh[5], L = (int)sh[6];
    memset(s, 0, sizeof *s);
    *s = (ModelShape){.n_actions = K, .action_embed = EA, .n_cat = 1, .cat_vocab = {(int)sh[2]},
                      .cat_embed = EC, .n_dense = (int)sh[4] + 6, .hidden = H, .layers = L,
                      .engagement = (int)sh[7], .max_lanes = 1, .window = (int)sh[8]};
    *steps = (int)sh[9];
    Model *m = model_create(s);
    const int I0 = model_input_width(s), O = model_outputs(s);
    copy_to(m->p.action_emb, "action_emb", K * EA);
    copy_to(m->p.cat_emb[0], "cat_emb", s->cat_vocab[0] * EC);
    char name[32];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "w_ih%d", l);
        copy_to(m->p.w_ih[l], name, 4 * H * (l ? H : I0));
        snprintf(name, sizeof name, "w_hh%d", l);
        copy_to(m->p.w_hh[l], name, 4 * H * H);
        snprintf(name, sizeof name, "bias%d", l);
        copy_to(m->p.bias[l], name, 4 * H);
    }
    copy_to(m->p.w_head, "w_head", O * H);
    copy_to(m->p.b_head, "b_head", O);
    const double *lg = get("loggap", 2);
    fake_meta(meta, lg[0], lg[1]);
    feature_groups_init(fg, meta, s);
    return m;
}

static void fill_case(AttrItem *it, const ModelShape *s, int c) {
    char p[64];
    const int N = s->window, D = s->n_dense, LH = s->layers * s->hidden;
    snprintf(p, sizeof p, "case%d.setup", c);
    const double *setup = get(p, 3), *v;
    it->n = N, it->carried = (int)setup[1], it->cls = (int)setup[2];
    snprintf(p, sizeof p, "case%d.action", c);
    v = get(p, N);
    for (int t = 0; t < N; t++) it->action[t] = (int32_t)v[t];
    snprintf(p, sizeof p, "case%d.cat", c);
    v = get(p, N);
    for (int t = 0; t < N; t++) it->cat[t] = (int32_t)v[t];
    snprintf(p, sizeof p, "case%d.dense", c);
    copy_to(it->dense, p, N * D);
    snprintf(p, sizeof p, "case%d.h0", c);
    copy_to(it->h0, p, LH);
    snprintf(p, sizeof p, "case%d.c0", c);
    copy_to(it->c0, p, LH);
    for (int t = 0; t < N; t++) it->time[t] = 100.0 * (t + 1);
    it->prev_time = 50, it->seed = 7 + (uint64_t)c;
}

static void check_reference(const char *path) {
    fixture_load(path);
    ModelShape s;
    FeatureGroups fg;
    DataMeta meta;
    int steps;
    Model *m = reference_model(&s, &fg, &meta, &steps);
    const int G = fg.n_groups, N = s.window;
    CHECK(G == 6 && strcmp(fg.name[0], "action") == 0 && strcmp(fg.name[1], "gap") == 0 &&
              strcmp(fg.name[4], "content") == 0 && strcmp(fg.name[5], "engagement") == 0,
          "feature groups are not [action, gap, time_of_day, day_of_week, content, engagement]");
    const double lg_mean = get("loggap", 2)[0], lg_std = get("loggap", 2)[1];
    for (int variant = 0; variant < 2; variant++) {
        const int lanes = variant ? 2 * (steps + 1) : 20; // 20: one target over two batches
        for (int c = 0; c < 2; c++) {
            char p[64];
            snprintf(p, sizeof p, "case%d.setup", c);
            AttrKind kind = get(p, 3)[0] == 1 ? ATTR_GAP : ATTR_PREDICTED;
            Attributor *at = attributor_create(&s, m->params, &fg, kind, lg_mean, lg_std, steps,
                                               steps, lanes, N, 2);
            AttrItem it[2], *items[2] = {&it[0], &it[1]};
            for (int i = 0; i < 2; i++) attr_item_alloc(&it[i], &s, N, G), fill_case(&it[i], &s, c);
            attributor_run(at, items, 2, 1, NULL);
            snprintf(p, sizeof p, "case%d.attr", c);
            const double *ref = get(p, N * G);
            snprintf(p, sizeof p, "case%d.f", c);
            const double *f = get(p, 4);
            double scale = 0, worst = 0;
            for (int i = 0; i < N * G; i++) scale = fmax(scale, fabs(ref[i]));
            for (int k = 0; k < 2; k++)
                for (int i = 0; i < N * G; i++) worst = fmax(worst, fabs(it[k].res.attr[i] - ref[i]));
            printf("reference case %d (lanes %d): worst |C - python| %.2e of max |attr| %.3e; "
                   "f(x) %.6f vs %.6f; completeness error C %.2e python %.2e\n",
                   c, lanes, worst, scale, it[0].res.f_input, f[0], it[0].res.rel_err, f[3]);
            CHECK(worst <= 1e-5 * scale + 1e-7, "case %d: attributions differ by %.3e", c, worst);
            CHECK(fabs(it[0].res.f_input - f[0]) < 1e-5 && fabs(it[0].res.f_baseline - f[1]) < 1e-5,
                  "case %d: f(x) %.7f f(x') %.7f vs %.7f %.7f", c, it[0].res.f_input,
                  it[0].res.f_baseline, f[0], f[1]);
            CHECK(it[0].res.rel_err <= ATTR_TOLERANCE, "case %d: completeness %.3e", c,
                  it[0].res.rel_err);
            CHECK(it[0].top_row == it[1].top_row && it[0].top_row >= 0 &&
                      it[0].random_row != it[0].top_row,
                  "case %d: deletion rows %d %d", c, it[0].top_row, it[0].random_row);
            for (int i = 0; i < 2; i++) attr_item_free(&it[i]);
            attributor_free(at);
        }
    }
    // The doubling rule: from 2 steps, the gap case must end within 1% with more steps, and
    // agree with the 32-step reference to the accuracy the trapezoid reaches there.
    Attributor *at = attributor_create(&s, m->params, &fg, ATTR_GAP, lg_mean, lg_std, 2, 256,
                                       40, N, 1);
    AttrItem it, *items[1] = {&it};
    attr_item_alloc(&it, &s, N, G);
    fill_case(&it, &s, 1);
    attributor_run(at, items, 1, 0, NULL);
    printf("doubling from 2 steps: %d steps, completeness error %.2e\n", it.res.steps,
           it.res.rel_err);
    CHECK(it.res.steps > 2 && it.res.rel_err <= ATTR_TOLERANCE,
          "doubling: %d steps, completeness error %.3e", it.res.steps, it.res.rel_err);
    attr_item_free(&it);
    attributor_free(at);
    model_free(m);
}

// A hand-built model: shape for the known-answer cases (groups as in fake_meta).
static Model *hand_model(ModelShape *s, int H, int N, FeatureGroups *fg, DataMeta *meta) {
    *s = (ModelShape){.n_actions = 4, .action_embed = 2, .n_cat = 1, .cat_vocab = {3},
                      .cat_embed = 2, .n_dense = 7, .hidden = H, .layers = 1, .engagement = 0,
                      .max_lanes = 1, .window = N};
    Model *m = model_create(s);
    model_init_params(m, 11, 0.8);
    fake_meta(meta, 0.5, 2.0);
    feature_groups_init(fg, meta, s);
    return m;
}

static void fill_random(AttrItem *it, const ModelShape *s, int N, uint64_t seed) {
    Rng r = rng_make(seed, 3);
    it->n = N, it->carried = 0, it->seed = seed;
    for (int t = 0; t < N; t++) {
        it->action[t] = 1 + (int32_t)rng_below(&r, 3);
        it->cat[t] = 1 + (int32_t)rng_below(&r, 2);
        for (int j = 0; j < s->n_dense; j++) it->dense[t * s->n_dense + j] = (real)rng_normal(&r);
        it->time[t] = 10.0 * (t + 1);
    }
}

// a. No memory, only the action columns wired: everything on (offset 1, action).
static void check_memoryless(void) {
    ModelShape s;
    FeatureGroups fg;
    DataMeta meta;
    const int H = 3, N = 5, I0 = 11;
    Model *m = hand_model(&s, H, N, &fg, &meta);
    for (int r = 0; r < 4 * H; r++)
        for (int j = s.action_embed; j < I0; j++) m->p.w_ih[0][r * I0 + j] = 0;
    memset(m->p.w_hh[0], 0, sizeof(real) * 4 * H * H);
    for (int j = 0; j < H; j++) m->p.bias[0][H + j] = -30; // forget gate shut
    Attributor *at = attributor_create(&s, m->params, &fg, ATTR_PREDICTED, 0.5, 2.0, 32, 512,
                                       33, N, 1);
    AttrItem it, *items[1] = {&it};
    attr_item_alloc(&it, &s, N, fg.n_groups);
    fill_random(&it, &s, N, 5);
    it.action[N - 1] = 1, it.action[N - 2] = 3, it.cls = 2;
    attributor_run(at, items, 1, 1, NULL);
    const int G = fg.n_groups;
    double main_cell = it.res.attr[(N - 1) * G + fg.action_group], rest = 0;
    for (int i = 0; i < N * G; i++)
        if (i != (N - 1) * G + fg.action_group) rest = fmax(rest, fabs(it.res.attr[i]));
    double delta = it.res.f_input - it.res.f_baseline;
    printf("memoryless: (offset 1, action) %.6f, largest other cell %.2e, f(x) - f(x') %.6f, "
           "completeness %.2e; deletion: top row %d change %.4f, random row %d change %.2e\n",
           main_cell, rest, delta, it.res.rel_err, it.top_row, it.del_top, it.random_row,
           it.del_random);
    CHECK(fabs(delta) > 1e-2, "the hand-built model does not react to the last action");
    CHECK(rest <= 1e-6 * fabs(main_cell), "attribution leaked to other cells: %.3e", rest);
    CHECK(fabs(main_cell - delta) <= 0.01 * fabs(delta), "(1, action) %.6f vs delta %.6f",
          main_cell, delta);
    CHECK(it.top_row == N - 1 && it.del_top > 1e-3 && it.del_random < 1e-5,
          "deletion: top row %d change %.3e, random change %.3e", it.top_row, it.del_top,
          it.del_random);
    attr_item_free(&it);
    attributor_free(at);
    model_free(m);
}

// b. An accumulator of tanh(w * log gap): equal events get equal shares; closed-form total.
static void check_accumulator(void) {
    ModelShape s;
    FeatureGroups fg;
    DataMeta meta;
    const int H = 1, N = 3, I0 = 11, gap_col = 2 + 2 + 1; // after action, content, engagement
    const double w = 0.7, wh = 1.3, v = 0.8, std = 2.0;
    Model *m = hand_model(&s, H, N, &fg, &meta);
    memset(m->p.w_ih[0], 0, sizeof(real) * 4 * H * I0);
    m->p.w_ih[0][2 * I0 + gap_col] = (real)w; // the g gate reads the log gap only
    memset(m->p.w_hh[0], 0, sizeof(real) * 4 * H * H);
    m->p.bias[0][0] = 30, m->p.bias[0][1] = 30, m->p.bias[0][2] = 0, m->p.bias[0][3] = 30;
    memset(m->p.w_head, 0, sizeof(real) * (size_t)model_outputs(&s) * H);
    memset(m->p.b_head, 0, sizeof(real) * (size_t)model_outputs(&s));
    m->p.w_head[s.n_actions * H] = (real)wh; // mu of the gap
    Attributor *at = attributor_create(&s, m->params, &fg, ATTR_GAP, 0.5, std, 32, 512, 33, N, 1);
    AttrItem it, *items[1] = {&it};
    attr_item_alloc(&it, &s, N, fg.n_groups);
    fill_random(&it, &s, N, 9);
    it.dense[0 * 7 + 1] = (real)v, it.dense[1 * 7 + 1] = 0, it.dense[2 * 7 + 1] = (real)v;
    it.dense[1 * 7 + 2] = 0; // event 1 sits at the baseline in its gap group
    attributor_run(at, items, 1, 0, NULL);
    const int G = fg.n_groups, gg = fg.gap_group;
    const double a0 = it.res.attr[0 * G + gg], a1 = it.res.attr[1 * G + gg];
    const double a2 = it.res.attr[2 * G + gg], exact = std * wh * tanh(2 * tanh(w * v));
    double others = 0;
    for (int t = 0; t < N; t++)
        for (int g = 0; g < G; g++)
            if (g != gg) others = fmax(others, fabs(it.res.attr[t * G + g]));
    printf("accumulator: gap attributions %.6f %.6f %.6f (sum %.6f, closed form %.6f), other "
           "groups %.1e\n", a0, a1, a2, it.res.attr_sum, exact, others);
    CHECK(fabs(a0 - a2) <= 1e-5 * fabs(a0), "equal events, unequal shares: %.7f %.7f", a0, a2);
    CHECK(a1 == 0 && others == 0, "an event at the baseline / another group got %.3e / %.3e", a1,
          others);
    CHECK(fabs(it.res.attr_sum - exact) <= 1e-3 * fabs(exact), "sum %.6f vs closed form %.6f",
          it.res.attr_sum, exact);
    attr_item_free(&it);
    attributor_free(at);
    model_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_explain tests/fixtures/explain_reference.txt\n");
        return 2;
    }
    model_blas_setup();
    check_reference(argv[1]);
    check_memoryless();
    check_accumulator();
    for (int i = 0; i < g_nfx; i++) free(g_fx[i].v);
    if (g_failures) {
        printf("%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
