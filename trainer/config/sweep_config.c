// sweep_config.c: see sweep_config.h.
#include "sweep_config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hash.h"
#include "util.h"

typedef struct {
    const char *file;
    int errors;
    yaml_document_t *doc;
} Ctx;

static void err(Ctx *c, yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void err(Ctx *c, yaml_node_t *at, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at)
        fprintf(stderr, "error: %s:%zu:%zu: %s\n", c->file, at->start_mark.line + 1,
                at->start_mark.column + 1, msg);
    else
        fprintf(stderr, "error: %s: %s\n", c->file, msg);
    c->errors++;
}

static const char *scalar(yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

// YAML text of a value node, usable after "key=" in an override ([a, b] for lists).
static int value_text(Ctx *c, yaml_node_t *n, char *out, size_t cap) {
    if (n->type == YAML_SCALAR_NODE) {
        snprintf(out, cap, "%s", (const char *)n->data.scalar.value);
        return 0;
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        size_t used = (size_t)snprintf(out, cap, "[");
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            const char *v = scalar(yaml_document_get_node(c->doc, *it));
            if (!v) return -1;
            used += (size_t)snprintf(out + used, used < cap ? cap - used : 0, "%s%s",
                                     it == n->data.sequence.items.start ? "" : ", ", v);
        }
        snprintf(out + used, used < cap ? cap - used : 0, "]");
        return 0;
    }
    return -1;
}

// Checks "key=value" as an experiment override would be checked, reporting at node n.
static void check_override(Ctx *c, yaml_node_t *n, const char *kv) {
    char where[CFG_PATH_LEN + 64];
    snprintf(where, sizeof where, "%s:%zu:%zu:", c->file, n->start_mark.line + 1,
             n->start_mark.column + 1);
    if (config_check_override(kv, where) != 0) c->errors++;
}

static double number(Ctx *c, yaml_node_t *n, const char *what) {
    const char *s = scalar(n);
    char *end;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || *end || !isfinite(v)) {
        err(c, n, "%s must be a number", what);
        return NAN;
    }
    return v;
}

// Appends "key=value" for every item of the list node `list` to ax->values, checking each
// as an override; `what` names the section in messages (grid, random).
static int load_axis_values(Ctx *c, SweepAxis *ax, const char *what, yaml_node_t *list) {
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        yaml_node_t *v = yaml_document_get_node(c->doc, *it);
        if (ax->n_values >= SWEEP_MAX_VALUES) {
            err(c, v, "%s.%s: more than %d values", what, ax->key, SWEEP_MAX_VALUES);
            return -1;
        }
        if (value_text(c, v, ax->values[ax->n_values], sizeof ax->values[0]) != 0) {
            err(c, v, "%s.%s: values must be scalars or lists of scalars", what, ax->key);
            return -1;
        }
        char kv[300];
        snprintf(kv, sizeof kv, "%s=%s", ax->key, ax->values[ax->n_values++]);
        check_override(c, v, kv);
    }
    return 0;
}

// uniform | loguniform | int: low and high, both valid values of the key.
static int load_range(Ctx *c, SweepAxis *ax, const char *dist, yaml_node_t *spec, yaml_node_t *low,
                      yaml_node_t *high) {
    const char *key = ax->key;
    if (strcmp(dist, "uniform") == 0)
        ax->kind = AX_UNIFORM;
    else if (strcmp(dist, "loguniform") == 0)
        ax->kind = AX_LOGUNIFORM;
    else if (strcmp(dist, "int") == 0)
        ax->kind = AX_INT;
    else {
        err(c, spec, "random.%s: unknown dist '%s' (choice, uniform, loguniform, int)", key, dist);
        return -1;
    }
    if (!low || !high) {
        err(c, spec, "random.%s: %s needs low and high", key, dist);
        return -1;
    }
    ax->low = number(c, low, "low"), ax->high = number(c, high, "high");
    if (!(ax->low <= ax->high)) err(c, spec, "random.%s: low must be <= high", key);
    if (ax->kind == AX_LOGUNIFORM && !(ax->low > 0))
        err(c, low, "random.%s: loguniform needs low > 0", key);
    if (ax->kind == AX_INT && (ax->low != floor(ax->low) || ax->high != floor(ax->high)))
        err(c, spec, "random.%s: int needs integer low and high", key);
    char kv[300];
    snprintf(kv, sizeof kv, ax->kind == AX_INT ? "%s=%.0f" : "%s=%.17g", key, ax->low);
    check_override(c, low, kv);
    snprintf(kv, sizeof kv, ax->kind == AX_INT ? "%s=%.0f" : "%s=%.17g", key, ax->high);
    check_override(c, high, kv);
    return 0;
}

// random.KEY: {dist: choice, values: [...]} or {dist: uniform|loguniform|int, low:, high:}.
static void load_random_axis(Ctx *c, SweepSpec *sp, const char *key, yaml_node_t *spec) {
    SweepAxis *ax = &sp->axes[sp->n_axes];
    memset(ax, 0, sizeof *ax);
    snprintf(ax->key, sizeof ax->key, "%s", key);
    if (spec->type != YAML_MAPPING_NODE) {
        err(c, spec,
            "random.%s: expected {dist: ..., low: ..., high: ...} or {dist: choice, values: [...]}",
            key);
        return;
    }
    const char *dist = NULL;
    yaml_node_t *low = NULL, *high = NULL, *values = NULL;
    for (yaml_node_pair_t *p = spec->data.mapping.pairs.start; p < spec->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key),
                    *v = yaml_document_get_node(c->doc, p->value);
        const char *name = scalar(k);
        if (!name) continue;
        if (strcmp(name, "dist") == 0)
            dist = scalar(v);
        else if (strcmp(name, "low") == 0)
            low = v;
        else if (strcmp(name, "high") == 0)
            high = v;
        else if (strcmp(name, "values") == 0)
            values = v;
        else
            err(c, k, "random.%s: unknown field '%s' (dist, low, high, values)", key, name);
    }
    if (!dist) {
        err(c, spec, "random.%s: missing dist (choice, uniform, loguniform, int)", key);
        return;
    }
    if (strcmp(dist, "choice") != 0) {
        if (load_range(c, ax, dist, spec, low, high) == 0) sp->n_axes++;
        return;
    }
    ax->kind = AX_CHOICE;
    if (!values || values->type != YAML_SEQUENCE_NODE) {
        err(c, spec, "random.%s: choice needs values: [...]", key);
        return;
    }
    if (load_axis_values(c, ax, "random", values) != 0) return;
    if (ax->n_values == 0) err(c, values, "random.%s: values is empty", key);
    sp->n_axes++;
}

static int has_random(const SweepSpec *s);

// Refuses a sweep of more than max_trials trials, naming the count and its factors (the
// count itself is checked for overflow: 32 axes of 64 values do not fit in 64 bits).
static void check_trial_count(Ctx *c, const SweepSpec *sp, yaml_node_t *at) {
    int64_t n = sweep_trial_count(sp);
    if (n >= 0 && n <= sp->max_trials) return;
    char factors[1536] = "";
    size_t used = 0;
    for (int a = 0; a < sp->n_axes && used < sizeof factors; a++)
        if (sp->axes[a].kind == AX_GRID)
            used += (size_t)snprintf(factors + used, sizeof factors - used, "%s%d (%s)",
                                     used ? " x " : "", sp->axes[a].n_values, sp->axes[a].key);
    if (has_random(sp) && used < sizeof factors)
        snprintf(factors + used, sizeof factors - used, "%s%lld (trials)", used ? " x " : "",
                 (long long)sp->trials);
    char count[64];
    if (n < 0)
        snprintf(count, sizeof count, "more than %lld", (long long)INT64_MAX);
    else
        snprintf(count, sizeof count, "%lld", (long long)n);
    err(c, at,
        "the sweep defines %s trials (%s), more than max_trials=%lld: shrink the grid or "
        "trials, or raise max_trials",
        count, factors, (long long)sp->max_trials);
}

// What the top-level keys fill in while the file is read.
typedef struct {
    int have_base;
    yaml_node_t *grid_node, *trials_node;
} Seen;

// base: the experiment file, relative to the sweep file's directory.
static void load_base(Ctx *c, SweepSpec *sp, yaml_node_t *v, Seen *seen) {
    const char *b = scalar(v);
    if (!b || !*b) {
        err(c, v, "base: expected the path of an experiment file");
        return;
    }
    const char *slash = strrchr(c->file, '/');
    if (b[0] == '/' || !slash)
        snprintf(sp->base, sizeof sp->base, "%s", b);
    else
        snprintf(sp->base, sizeof sp->base, "%.*s/%s", (int)(slash - c->file), c->file, b);
    seen->have_base = 1;
}

static void load_metric(Ctx *c, SweepSpec *sp, yaml_node_t *v) {
    static const char *ok[] = {"valid.action_nll", "valid.time_nll", "valid.loss",
                               "valid.top1",       "valid.topk",     "valid.gap_mae",
                               "valid.gap_rmse",   "valid.eng_mse"};
    const char *m = scalar(v);
    for (size_t i = 0; m && i < ARRAY_LEN(ok); i++)
        if (strcmp(m, ok[i]) == 0) {
            snprintf(sp->metric, sizeof sp->metric, "%s", m);
            return;
        }
    err(c, v,
        "metric: expected one of valid.action_nll, valid.time_nll, valid.loss, "
        "valid.top1, valid.topk, valid.gap_mae, valid.gap_rmse, valid.eng_mse");
}

static void load_mode(Ctx *c, SweepSpec *sp, yaml_node_t *v) {
    const char *m = scalar(v);
    if (m && strcmp(m, "min") == 0)
        sp->maximize = 0;
    else if (m && strcmp(m, "max") == 0)
        sp->maximize = 1;
    else
        err(c, v, "mode: expected min or max");
}

// seed (>= 0), trials and max_trials (>= 1), each at most 1000000.
static void load_count(Ctx *c, SweepSpec *sp, const char *name, yaml_node_t *v, Seen *seen) {
    const char *s = scalar(v);
    char *end;
    int positive = strcmp(name, "seed") != 0;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : -1;
    if (!s || *end || errno || x < positive || x > 1000000)
        err(c, v, "%s: expected a %s integer up to 1000000", name,
            positive ? "positive" : "non-negative");
    else if (strcmp(name, "seed") == 0)
        sp->seed = x;
    else if (strcmp(name, "trials") == 0)
        sp->trials = x, seen->trials_node = v;
    else
        sp->max_trials = x;
}

// set.KEY: VALUE, one fixed override of every trial.
static void load_fixed(Ctx *c, SweepSpec *sp, const char *key, yaml_node_t *kk, yaml_node_t *vv) {
    char val[200];
    if (sp->n_fixed >= SWEEP_MAX_FIXED || value_text(c, vv, val, sizeof val) != 0) {
        err(c, vv, "set.%s: expected a scalar or a list of scalars", key);
        return;
    }
    snprintf(sp->fixed[sp->n_fixed], sizeof sp->fixed[0], "%s=%s", key, val);
    check_override(c, kk, sp->fixed[sp->n_fixed++]);
}

// grid.KEY: [values], every value crossed with every other axis.
static void load_grid_axis(Ctx *c, SweepSpec *sp, const char *key, yaml_node_t *vv) {
    SweepAxis *ax = &sp->axes[sp->n_axes];
    memset(ax, 0, sizeof *ax);
    snprintf(ax->key, sizeof ax->key, "%s", key);
    ax->kind = AX_GRID;
    if (vv->type != YAML_SEQUENCE_NODE ||
        vv->data.sequence.items.top == vv->data.sequence.items.start) {
        err(c, vv, "grid.%s: expected a non-empty list of values", key);
        return;
    }
    if (load_axis_values(c, ax, "grid", vv) == 0) sp->n_axes++;
}

// set:, grid: or random:, a mapping of experiment keys.
static void load_section(Ctx *c, SweepSpec *sp, const char *name, yaml_node_t *v, Seen *seen) {
    if (v->type != YAML_MAPPING_NODE) {
        err(c, v, "%s: expected a mapping of experiment keys", name);
        return;
    }
    if (strcmp(name, "grid") == 0) seen->grid_node = v;
    for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
        yaml_node_t *kk = yaml_document_get_node(c->doc, q->key),
                    *vv = yaml_document_get_node(c->doc, q->value);
        const char *key = scalar(kk);
        if (!key)
            err(c, kk, "%s: keys must be dotted experiment keys", name);
        else if (strcmp(name, "set") == 0)
            load_fixed(c, sp, key, kk, vv);
        else if (sp->n_axes >= SWEEP_MAX_AXES)
            err(c, kk, "more than %d axes", SWEEP_MAX_AXES);
        else if (strcmp(name, "random") == 0)
            load_random_axis(c, sp, key, vv);
        else
            load_grid_axis(c, sp, key, vv);
    }
}

static void unknown_key(Ctx *c, yaml_node_t *k, const char *name) {
    static const char *known[] = {"base", "metric", "mode",   "seed",      "trials",
                                  "set",  "grid",   "random", "max_trials"};
    int best = -1;
    for (size_t i = 0; i < ARRAY_LEN(known); i++)
        if (strncmp(name, known[i], 2) == 0) best = (int)i;
    if (best >= 0)
        err(c, k, "unknown key '%s' (did you mean '%s'?)", name, known[best]);
    else
        err(c, k,
            "unknown key '%s' (base, metric, mode, seed, trials, max_trials, set, grid, random)",
            name);
}

static void load_key(Ctx *c, SweepSpec *sp, yaml_node_t *k, yaml_node_t *v, Seen *seen) {
    const char *name = scalar(k);
    if (!name)
        err(c, k, "keys must be plain names");
    else if (strcmp(name, "base") == 0)
        load_base(c, sp, v, seen);
    else if (strcmp(name, "metric") == 0)
        load_metric(c, sp, v);
    else if (strcmp(name, "mode") == 0)
        load_mode(c, sp, v);
    else if (strcmp(name, "seed") == 0 || strcmp(name, "trials") == 0 ||
             strcmp(name, "max_trials") == 0)
        load_count(c, sp, name, v, seen);
    else if (strcmp(name, "set") == 0 || strcmp(name, "grid") == 0 || strcmp(name, "random") == 0)
        load_section(c, sp, name, v, seen);
    else
        unknown_key(c, k, name);
}

static void load_document(Ctx *c, SweepSpec *sp) {
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    Seen seen = {0, NULL, NULL};
    if (!root || root->type != YAML_MAPPING_NODE) {
        err(c, root, "expected a mapping (base:, grid:, random:, ...)");
        return;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++)
        load_key(c, sp, yaml_document_get_node(c->doc, p->key),
                 yaml_document_get_node(c->doc, p->value), &seen);
    if (!seen.have_base) err(c, root, "missing base: the experiment the trials start from");
    if (!c->errors)
        check_trial_count(c, sp, seen.grid_node ? seen.grid_node
                                 : seen.trials_node ? seen.trials_node
                                                    : root);
}

int sweep_spec_load(const char *path, SweepSpec *sp) {
    memset(sp, 0, sizeof *sp);
    snprintf(sp->path, sizeof sp->path, "%s", path);
    snprintf(sp->metric, sizeof sp->metric, "valid.action_nll");
    sp->trials = 1;
    sp->seed = 0;
    sp->max_trials = SWEEP_DEFAULT_MAX_TRIALS;
    size_t size;
    char *text = read_file(path, &size);
    if (!text) {
        fprintf(stderr, "error: %s: cannot read sweep file (%s)\n", path, strerror(errno));
        return -1;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
    if (!yaml_parser_load(&parser, &doc)) {
        fprintf(stderr, "error: %s:%zu:%zu: invalid YAML: %s\n", path, parser.problem_mark.line + 1,
                parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        free(text);
        return -1;
    }
    Ctx c = {path, 0, &doc};
    load_document(&c, sp);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
    return c.errors ? -1 : 0;
}

static int has_random(const SweepSpec *s) {
    for (int a = 0; a < s->n_axes; a++)
        if (s->axes[a].kind != AX_GRID) return 1;
    return 0;
}

int64_t sweep_trial_count(const SweepSpec *s) {
    int64_t n = 1;
    for (int a = 0; a < s->n_axes; a++)
        if (s->axes[a].kind == AX_GRID && __builtin_mul_overflow(n, (int64_t)s->axes[a].n_values, &n))
            return -1;
    if (has_random(s) && __builtin_mul_overflow(n, s->trials, &n)) return -1;
    return n;
}

int sweep_trial_overrides(const SweepSpec *s, int64_t trial, char out[][256], int cap) {
    int n = 0;
    int64_t per_point = has_random(s) ? s->trials : 1, point = trial / per_point;
    // Grid: the last axis varies fastest.
    int64_t rest = point;
    int idx[SWEEP_MAX_AXES];
    for (int a = s->n_axes - 1; a >= 0; a--) {
        if (s->axes[a].kind != AX_GRID) continue;
        idx[a] = (int)(rest % s->axes[a].n_values);
        rest /= s->axes[a].n_values;
    }
    for (int a = 0; a < s->n_axes && n < cap; a++) {
        const SweepAxis *ax = &s->axes[a];
        // Each trial and axis draws from its own stream: adding an axis leaves the others' draws.
        Rng r = rng_make((uint64_t)s->seed, mix64((uint64_t)trial * 1315423911u +
                                                  hash_bytes(ax->key, strlen(ax->key), 0)));
        switch (ax->kind) {
        case AX_GRID:
            snprintf(out[n++], 256, "%s=%s", ax->key, ax->values[idx[a]]);
            break;
        case AX_CHOICE:
            snprintf(out[n++], 256, "%s=%s", ax->key,
                     ax->values[rng_below(&r, (uint64_t)ax->n_values)]);
            break;
        case AX_UNIFORM:
            snprintf(out[n++], 256, "%s=%.6g", ax->key,
                     ax->low + (ax->high - ax->low) * rng_uniform(&r));
            break;
        case AX_LOGUNIFORM:
            snprintf(out[n++], 256, "%s=%.6g", ax->key,
                     exp(log(ax->low) + (log(ax->high) - log(ax->low)) * rng_uniform(&r)));
            break;
        case AX_INT:
            snprintf(out[n++], 256, "%s=%lld", ax->key,
                     (long long)ax->low +
                         (long long)rng_below(&r, (uint64_t)(ax->high - ax->low + 1)));
            break;
        }
    }
    return n;
}
