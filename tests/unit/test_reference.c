// test_reference.c: the float32 C model against an independent float64 PyTorch reference.
//
// tests/fixtures/reference.txt is written by tests/tools/make_reference.py (the model written
// from its definition with torch ops, gradients by autograd, optimizers from torch.optim).
// It holds the shape, the inputs (resets, padded positions, carried state), the weights
// (float32 values, so both sides start from identical numbers), the mean loss, every
// gradient, and the losses of 5 SGD, Adam and AdamW steps with global-norm clipping. This
// test needs no PyTorch: it rebuilds the C model from the fixture, compares tensor by
// tensor and prints each tensor's worst difference.
//
// What it deliberately is not: a finite-difference check (test_gradcheck does that in
// double). This one catches the model and the optimizer disagreeing with PyTorch's
// definitions, e.g. a gate order, a reset applied to the wrong step, a bias correction.
//
// Tolerances. The C model works in float32 (unit roundoff 6e-8) with a polynomial exp
// good to a few ulp; its sums run over at most 4H = 32 terms per GEMM and T*B = 18 per
// weight gradient, through T = 6 steps and 2 layers. An element's float32 error is then a
// few ulp of the terms summed into it, i.e. of the tensor's scale: measured, at most
// 5e-7 * max|torch| of the tensor, and 1.5e-6 relative on elements near that maximum.
// Any modelling error (a wrong derivative, a missed reset, a gate order) is of order
// 1e-2 to 1. So:
//   - an element passes if |C - torch| <= RTOL * max(|torch|, FLOOR * max|torch| of its
//     tensor): relative for the tensor's large elements, absolute (1e-5 of the tensor's
//     scale) for elements below FLOOR of it, which come from cancelling sums whose
//     float32 error scales with the summands, not with the result. Measured worst 4.9e-6
//     in these units: ~20x headroom for other BLAS kernels and instruction sets.
//   - the mean loss and its parts: LOSS_RTOL relative (measured 1e-8 on the first forward,
//     at most 8e-7 after five optimizer steps, which replay float32 parameter updates).
//   - the gradient norm and clip factor of each optimizer step: NORM_RTOL relative
//     (measured at most 2.4e-6: after Adam steps the parameters carry float32 rounding
//     and the gradient is more sensitive to it than the loss).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "model.h"
#include "optim.h"
#include "step.h"
#include "util.h"

#define RTOL      1e-4
#define FLOOR     1e-1
#define LOSS_RTOL 1e-5
#define NORM_RTOL 5e-5

// ---------------------------------------------------------------- the fixture

typedef struct {
    char name[64];
    int count;
    double *v;
} Entry;

typedef struct {
    Entry *e;
    int n;
    const char *path;
} Fixture;

// `name count` then count numbers, whitespace-separated; lines starting with # are comments.
static void fixture_load(Fixture *fx, const char *path) {
    size_t size = 0;
    char *text = read_file(path, &size);
    if (!text) fatal("reference: cannot read %s (the fixture tests/fixtures/reference.txt)", path);
    memset(fx, 0, sizeof *fx);
    fx->path = path;
    int cap = 0;
    char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (*p == '#') {
            while (*p && *p != '\n') p++;
            continue;
        }
        if (!*p) break;
        char *name_end = p;
        while (*name_end && *name_end != ' ' && *name_end != '\n') name_end++;
        if ((size_t)(name_end - p) >= sizeof fx->e[0].name)
            fatal("reference: %s: name too long near '%.20s'", path, p);
        if (fx->n == cap) {
            cap = cap ? 2 * cap : 64;
            fx->e = xrealloc(fx->e, sizeof(Entry) * (size_t)cap);
        }
        Entry *e = &fx->e[fx->n++];
        memcpy(e->name, p, (size_t)(name_end - p));
        e->name[name_end - p] = 0;
        char *end;
        long count = strtol(name_end, &end, 10);
        if (end == name_end || count < 1 || count > 1000000)
            fatal("reference: %s: bad count for %s", path, e->name);
        e->count = (int)count;
        e->v = xmalloc(sizeof(double) * (size_t)count);
        p = end;
        for (long i = 0; i < count; i++) {
            e->v[i] = strtod(p, &end);
            if (end == p)
                fatal("reference: %s: %s has fewer than %ld numbers", path, e->name, count);
            p = end;
        }
    }
    free(text);
}

static void fixture_free(Fixture *fx) {
    for (int i = 0; i < fx->n; i++) free(fx->e[i].v);
    free(fx->e);
}

// The entry `name`, which must hold exactly `count` numbers (count < 0: any).
static const double *get(const Fixture *fx, const char *name, int count) {
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->e[i].name, name) == 0) {
            if (count >= 0 && fx->e[i].count != count)
                fatal("reference: %s: %s has %d numbers, the C model needs %d (regenerate the "
                      "fixture?)",
                      fx->path, name, fx->e[i].count, count);
            return fx->e[i].v;
        }
    fatal("reference: %s: no entry %s (regenerate the fixture with tests/tools/make_reference.py)",
          fx->path, name);
}

static int get_int(const Fixture *fx, const char *name) {
    return (int)get(fx, name, 1)[0];
}

// ---------------------------------------------------------------- comparisons

static int g_failures = 0;
static double g_worst_tensor = 0, g_worst_loss = 0, g_worst_norm = 0; // as compared

// Compares c (n) with the reference r (n), scaled by `scale` (c = scale * computed).
static void compare_tensor(const char *name, const real *c, double scale, const double *r, int n) {
    double ref_max = 0;
    for (int i = 0; i < n; i++) ref_max = fmax(ref_max, fabs(r[i]));
    double worst_abs = 0, worst_rel = 0;
    int worst_i = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)c[i] * scale - r[i]);
        double rel = d / fmax(fabs(r[i]), FLOOR * ref_max);
        if (ref_max == 0) rel = d > 0 ? INFINITY : 0;
        if (isnan(rel)) rel = INFINITY; // a NaN in C fails, never passes a comparison
        if (rel > worst_rel) worst_rel = rel, worst_i = i;
        worst_abs = fmax(worst_abs, d);
    }
    int bad = worst_rel > RTOL;
    printf("  %-18s %5d  max|ref| %.3e  worst abs %.2e  worst rel %.2e %s\n", name, n, ref_max,
           worst_abs, worst_rel, bad ? "FAIL" : "ok");
    if (bad)
        printf("    element %d: C %.9g, torch %.9g\n", worst_i, (double)c[worst_i] * scale,
               r[worst_i]);
    g_failures += bad;
    g_worst_tensor = fmax(g_worst_tensor, worst_rel);
}

// A loss (rtol == LOSS_RTOL) or a gradient norm / clip factor (NORM_RTOL).
static void compare_scalar(const char *what, double c, double r, double rtol) {
    double rel = fabs(c - r) / fmax(fabs(r), 1e-30);
    if (isnan(rel)) rel = INFINITY;
    int bad = rel > rtol;
    printf("  %-26s C %.9f  torch %.9f  rel %.2e %s\n", what, c, r, rel, bad ? "FAIL" : "ok");
    g_failures += bad;
    if (rtol == LOSS_RTOL)
        g_worst_loss = fmax(g_worst_loss, rel);
    else
        g_worst_norm = fmax(g_worst_norm, rel);
}

// ---------------------------------------------------------------- the C side

typedef struct {
    ModelShape shape;
    LossConfig lc;
    int32_t *action, *cat, *tgt;
    real *dense, *loggap, *eng;
    uint8_t *keep;
    uint64_t lane_id[64];
    Batch batch;
    LaneState init, work;
    real *params0; // the fixture's weights
} Setup;

static void to_real(real *dst, const double *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = (real)src[i];
}

static void to_int(int32_t *dst, const double *src, int n) {
    for (int i = 0; i < n; i++) dst[i] = (int32_t)src[i];
}

static Model *setup(const Fixture *fx, Setup *su) {
    memset(su, 0, sizeof *su);
    ModelShape *s = &su->shape;
    s->n_actions = get_int(fx, "shape.n_actions");
    s->action_embed = get_int(fx, "shape.action_embed");
    s->cat_embed = get_int(fx, "shape.cat_embed");
    s->n_dense = get_int(fx, "shape.n_dense");
    s->hidden = get_int(fx, "shape.hidden");
    s->layers = get_int(fx, "shape.layers");
    s->engagement = get_int(fx, "shape.engagement");
    s->max_lanes = get_int(fx, "shape.lanes");
    s->window = get_int(fx, "shape.window");
    for (int i = 0; i < fx->n; i++)
        if (strcmp(fx->e[i].name, "shape.cat_vocab") == 0) s->n_cat = fx->e[i].count;
    if (s->n_cat > MODEL_MAX_CAT || s->max_lanes > 64) fatal("reference: shape too large");
    const double *vocab = get(fx, "shape.cat_vocab", s->n_cat);
    for (int c = 0; c < s->n_cat; c++) s->cat_vocab[c] = (int)vocab[c];
    su->lc = (LossConfig){.w_action = get(fx, "loss.w_action", 1)[0],
                          .w_time = get(fx, "loss.w_time", 1)[0],
                          .w_eng = get(fx, "loss.w_eng", 1)[0],
                          .loggap_mean = get(fx, "loss.loggap_mean", 1)[0],
                          .loggap_std = get(fx, "loss.loggap_std", 1)[0],
                          .gap_offset = get(fx, "loss.gap_offset", 1)[0],
                          .top_k = 1};

    const int B = s->max_lanes, T = s->window, TB = B * T, C = s->n_cat, D = s->n_dense;
    su->action = xmalloc(sizeof(int32_t) * TB);
    su->cat = xmalloc(sizeof(int32_t) * (size_t)(TB * (C ? C : 1)));
    su->tgt = xmalloc(sizeof(int32_t) * TB);
    su->dense = xmalloc(sizeof(real) * (size_t)(TB * (D ? D : 1)));
    su->loggap = xmalloc(sizeof(real) * TB);
    su->eng = xmalloc(sizeof(real) * TB);
    su->keep = xmalloc(TB);
    to_int(su->action, get(fx, "input.action", TB), TB);
    to_int(su->cat, get(fx, "input.cat", TB * C), TB * C);
    to_int(su->tgt, get(fx, "input.tgt_action", TB), TB);
    to_real(su->dense, get(fx, "input.dense", TB * D), TB * D);
    to_real(su->loggap, get(fx, "input.tgt_loggap", TB), TB);
    to_real(su->eng, get(fx, "input.tgt_eng", TB), TB);
    const double *keep = get(fx, "input.keep", TB);
    for (int i = 0; i < TB; i++) su->keep[i] = keep[i] != 0;
    for (int i = 0; i < B; i++) su->lane_id[i] = (uint64_t)i;
    su->batch = (Batch){.lanes = B,
                        .window = T,
                        .action = su->action,
                        .cat = su->cat,
                        .dense = su->dense,
                        .keep = su->keep,
                        .tgt_action = su->tgt,
                        .tgt_loggap = su->loggap,
                        .tgt_eng = su->eng,
                        .lane_id = su->lane_id};

    su->init = lane_state_alloc(s, B);
    su->work = lane_state_alloc(s, B);
    char name[64];
    for (int l = 0; l < s->layers; l++) {
        snprintf(name, sizeof name, "input.h0.%d", l);
        to_real(su->init.h[l], get(fx, name, B * s->hidden), B * s->hidden);
        snprintf(name, sizeof name, "input.c0.%d", l);
        to_real(su->init.c[l], get(fx, name, B * s->hidden), B * s->hidden);
    }

    Model *m = model_create(s);
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(s, ti);
    for (int k = 0; k < nt; k++) {
        snprintf(name, sizeof name, "param.%s", ti[k].name);
        to_real(m->params + ti[k].offset, get(fx, name, (int)ti[k].count), (int)ti[k].count);
    }
    su->params0 = xmalloc(sizeof(real) * m->n_params);
    memcpy(su->params0, m->params, sizeof(real) * m->n_params);
    return m;
}

static void setup_free(Setup *su) {
    free(su->action), free(su->cat), free(su->tgt), free(su->dense), free(su->loggap);
    free(su->eng), free(su->keep), free(su->params0);
    lane_state_free(&su->init);
    lane_state_free(&su->work);
}

// Forward (and backward if want_grad, into freshly zeroed grads) from the initial state.
static LossSums run_model(Model *m, Setup *su, int want_grad) {
    const ModelShape *s = &m->shape;
    size_t bytes = sizeof(real) * (size_t)s->max_lanes * (size_t)s->hidden;
    for (int l = 0; l < s->layers; l++) {
        memcpy(su->work.h[l], su->init.h[l], bytes);
        memcpy(su->work.c[l], su->init.c[l], bytes);
    }
    LossSums sums;
    memset(&sums, 0, sizeof sums);
    if (want_grad) memset(m->grads, 0, sizeof(real) * m->n_params);
    m->want_input_grad = 1;
    DropoutConfig no_dropout = {.p = 0};
    model_forward(m, &su->batch, &su->work, &su->lc, &no_dropout, &sums, want_grad);
    if (want_grad) model_backward(m, &su->batch, NULL);
    return sums;
}

static void check_gradients(const Fixture *fx, Model *m, Setup *su) {
    const ModelShape *s = &m->shape;
    LossSums sums = run_model(m, su, 1);
    const double n = sums.n_targets;
    printf("forward (mean over targets):\n");
    if (n != get(fx, "out.n_targets", 1)[0]) {
        printf("  FAIL: %.0f targets, torch %.0f\n", n, get(fx, "out.n_targets", 1)[0]);
        g_failures++;
        return;
    }
    compare_scalar("loss", sums.loss / n, get(fx, "out.loss", 1)[0], LOSS_RTOL);
    compare_scalar("action_nll", sums.action_nll / n, get(fx, "out.action_nll", 1)[0], LOSS_RTOL);
    compare_scalar("time_nll", sums.time_nll / n, get(fx, "out.time_nll", 1)[0], LOSS_RTOL);
    compare_scalar("eng_se", sums.eng_se / n, get(fx, "out.eng_se", 1)[0], LOSS_RTOL);
    const int BH = s->max_lanes * s->hidden;
    char name[64];
    for (int l = 0; l < s->layers; l++) {
        snprintf(name, sizeof name, "out.h.%d", l);
        compare_tensor(name, su->work.h[l], 1.0, get(fx, name, BH), BH);
        snprintf(name, sizeof name, "out.c.%d", l);
        compare_tensor(name, su->work.c[l], 1.0, get(fx, name, BH), BH);
    }

    printf("gradients of the mean loss (C sums / %.0f targets):\n", n);
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(s, ti);
    for (int k = 0; k < nt; k++) {
        snprintf(name, sizeof name, "grad.%s", ti[k].name);
        compare_tensor(ti[k].name, m->grads + ti[k].offset, 1.0 / n,
                       get(fx, name, (int)ti[k].count), (int)ti[k].count);
    }
    // The dense inputs (want_input_grad was set before backward).
    const int TB = s->max_lanes * s->window, D = s->n_dense;
    compare_tensor("input.dense", m->act.d_dense, 1.0 / n, get(fx, "grad.input.dense", TB * D),
                   TB * D);
}

// The step's batch: the fixture's, from the fixture's initial lane state every time.
static const Batch *fixture_batch(void *ctx, int first, int n) {
    Setup *su = ctx;
    const ModelShape *s = &su->shape;
    size_t bytes = sizeof(real) * (size_t)s->max_lanes * (size_t)s->hidden;
    for (int l = 0; l < s->layers; l++) {
        memcpy(su->work.h[l], su->init.h[l], bytes);
        memcpy(su->work.c[l], su->init.c[l], bytes);
    }
    return &su->batch;
}

// Runs `kind`'s optimizer through the shipped training step (run/step.c step_run on one
// rank: gradient sums, the mean-gradient norm, the clip factor, optim_step(clip / N)) and
// compares each step's loss, gradient norm and clip factor with torch's.
static void check_optimizer(const Fixture *fx, Model *m, Setup *su, const char *kind,
                            OptimKind ok) {
    char name[64];
    const int steps = get_int(fx, "optim.steps");
    OptimConfig oc = {.kind = ok,
                      .schedule = SCHED_CONSTANT,
                      .warmup_steps = 0,
                      .total_steps = steps,
                      .min_lr_frac = 0};
    oc.momentum = get(fx, "optim.momentum", 1)[0];
    oc.beta1 = get(fx, "optim.beta1", 1)[0];
    oc.beta2 = get(fx, "optim.beta2", 1)[0];
    oc.eps = get(fx, "optim.eps", 1)[0];
    oc.clip_norm = get(fx, "optim.clip_norm", 1)[0];
    snprintf(name, sizeof name, "%s.lr", kind);
    oc.lr = get(fx, name, 1)[0];
    snprintf(name, sizeof name, "%s.weight_decay", kind);
    oc.weight_decay = get(fx, name, 1)[0];
    snprintf(name, sizeof name, "%s.loss", kind);
    const double *ref_loss = get(fx, name, steps + 1);
    snprintf(name, sizeof name, "%s.grad_norm", kind);
    const double *ref_norm = get(fx, name, steps);
    snprintf(name, sizeof name, "%s.clip", kind);
    const double *ref_clip = get(fx, name, steps);

    printf("%s: lr %g, weight decay %g, clip_norm %g (through step_run)\n", kind, oc.lr,
           oc.weight_decay, oc.clip_norm);
    memcpy(m->params, su->params0, sizeof(real) * m->n_params);
    Optimizer opt;
    optim_init(&opt, &oc, &m->shape, m->n_params);
    Stepper st;
    stepper_init(&st, m, &opt, &su->lc, 0, 0, 4, su->shape.max_lanes);
    m->want_input_grad = 0;
    char what[64];
    for (int k = 0; k < steps; k++) {
        StepResult r = step_run(&st, k, &su->work, fixture_batch, su, NULL);
        const double n = r.h.sums.n_targets;
        snprintf(what, sizeof what, "loss before step %d", k);
        compare_scalar(what, r.h.sums.loss / n, ref_loss[k], LOSS_RTOL);
        if (r.skipped) {
            printf("  FAIL: step %d skipped\n", k);
            g_failures++;
            break;
        }
        compare_scalar("  grad norm", r.grad_norm, ref_norm[k], NORM_RTOL);
        compare_scalar("  clip factor", optim_clip_factor(&oc, r.grad_norm), ref_clip[k],
                       NORM_RTOL);
    }
    LossSums sums = run_model(m, su, 0);
    snprintf(what, sizeof what, "loss after step %d", steps - 1);
    compare_scalar(what, sums.loss / sums.n_targets, ref_loss[steps], LOSS_RTOL);
    stepper_free(&st);
    optim_free(&opt);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s tests/fixtures/reference.txt\n", argv[0]);
        return 2;
    }
    comm_init(&argc, &argv); // the step's allreduce runs as a one-rank singleton
    Fixture fx;
    fixture_load(&fx, argv[1]);
    Setup su;
    Model *m = setup(&fx, &su);
    printf("reference: %s (K=%d, H=%d, L=%d, B=%d, T=%d, %zu parameters)\n", argv[1],
           su.shape.n_actions, su.shape.hidden, su.shape.layers, su.shape.max_lanes,
           su.shape.window, m->n_params);
    printf("tolerances: element |C - torch| <= %.0e * max(|torch|, %.0e * max|torch| of the "
           "tensor); losses %.0e, norms %.0e relative\n",
           RTOL, FLOOR, LOSS_RTOL, NORM_RTOL);
    check_gradients(&fx, m, &su);
    check_optimizer(&fx, m, &su, "sgd", OPT_SGD);
    check_optimizer(&fx, m, &su, "adam", OPT_ADAM);
    check_optimizer(&fx, m, &su, "adamw", OPT_ADAMW);
    printf("worst: tensor element %.2e (tolerance %.0e), loss %.2e (%.0e), grad norm %.2e "
           "(%.0e)\n",
           g_worst_tensor, RTOL, g_worst_loss, LOSS_RTOL, g_worst_norm, NORM_RTOL);
    if (g_failures)
        printf("FAILED: %d comparisons out of tolerance\n", g_failures);
    else
        printf("all comparisons passed\n");
    model_free(m);
    setup_free(&su);
    fixture_free(&fx);
    comm_finalize();
    return g_failures ? 1 : 0;
}
