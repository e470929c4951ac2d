// cli.c: see cli.h.
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int allows(const char *allowed, const char *opt) {
    size_t n = strlen(opt);
    for (const char *p = allowed; (p = strstr(p, opt)) != NULL; p += n)
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

static int parse_nonneg(const char *command, const char *opt, const char *s) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1000000000L) {
        fprintf(stderr, "error: trainer %s: %s expects a non-negative integer, got \"%s\"\n",
                command, opt, s);
        exit(EXIT_USAGE);
    }
    return (int)v;
}

static void add_extra(CliArgs *out, const char *arg, const char *val) {
    if (out->n_extra == 16) {
        fprintf(stderr, "error: too many options\n");
        exit(EXIT_USAGE);
    }
    // The name is the argument up to '=' (kept in argv, which outlives the parse).
    static char names[16][64];
    snprintf(names[out->n_extra], sizeof names[0], "%.*s", (int)strcspn(arg, "="), arg);
    out->extra_name[out->n_extra] = names[out->n_extra];
    out->extra_val[out->n_extra++] = val;
}

const char *cli_get(const CliArgs *args, const char *opt) {
    const char *v = NULL;
    for (int i = 0; i < args->n_extra; i++)
        if (strcmp(args->extra_name[i], opt) == 0) v = args->extra_val[i];
    return v;
}

double cli_get_number(const CliArgs *args, const char *command, const char *opt, double min,
                      double max, double def) {
    const char *s = cli_get(args, opt);
    if (!s) return def;
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= min && v <= max)) {
        fprintf(stderr, "error: trainer %s: %s expects a number in [%g, %g], got \"%s\"\n",
                command, opt, min, max, s);
        exit(EXIT_USAGE);
    }
    return v;
}

static int parse_positive(const char *command, const char *opt, const char *s) {
    int v = parse_nonneg(command, opt, s);
    if (v < 1) {
        fprintf(stderr, "error: trainer %s: %s must be at least 1, got \"%s\"\n", command, opt, s);
        exit(EXIT_USAGE);
    }
    return v;
}

void cli_parse(int argc, char **argv, const char *command, const char *allowed, int need_exp,
               CliArgs *out) {
    memset(out, 0, sizeof *out);
    out->trial = -1;
    out->restarts = -1;
    out->overrides = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            char opt[64];
            snprintf(opt, sizeof opt, "%.*s", (int)(eq ? eq - a : (long)strlen(a)), a);
            if (!allows(allowed, opt)) {
                if (allowed[0])
                    fprintf(stderr, "error: trainer %s: unknown option '%s' (accepted: %s)\n",
                            command, opt, allowed);
                else
                    fprintf(stderr, "error: trainer %s: unknown option '%s'\n", command, opt);
                exit(EXIT_USAGE);
            }
            int is_flag = strcmp(opt, "--resume") == 0 || strcmp(opt, "--docs") == 0 ||
                          strcmp(opt, "--events") == 0 || strcmp(opt, "--force") == 0 ||
                          strcmp(opt, "--explain") == 0 || strcmp(opt, "--sanity") == 0;
            if (is_flag) {
                if (strcmp(opt, "--resume") == 0)
                    out->resume = 1;
                else if (strcmp(opt, "--force") == 0)
                    out->force = 1;
                else if (strcmp(opt, "--docs") == 0)
                    out->docs = 1;
                else if (strcmp(opt, "--explain") == 0)
                    out->explain = 1;
                else if (strcmp(opt, "--sanity") == 0)
                    out->sanity = 1;
                else
                    add_extra(out, a, "");
                continue;
            }
            const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val) {
                fprintf(stderr, "error: trainer %s: %s needs a value\n", command, opt);
                exit(EXIT_USAGE);
            }
            if (strcmp(opt, "--set") == 0)
                out->overrides[out->n_overrides++] = (char *)val;
            else if (strcmp(opt, "--checkpoint") == 0)
                out->checkpoint = val;
            else if (strcmp(opt, "--split") == 0) {
                if (strcmp(val, "train") && strcmp(val, "valid") && strcmp(val, "test")) {
                    fprintf(stderr,
                            "error: trainer %s: --split must be train, valid or test, got \"%s\"\n",
                            command, val);
                    exit(EXIT_USAGE);
                }
                out->split = val;
            } else if (strcmp(opt, "--input") == 0)
                out->input = val;
            else if (strcmp(opt, "--output") == 0)
                out->output = val;
            else if (strcmp(opt, "--trial") == 0)
                out->trial = parse_nonneg(command, opt, val);
            else if (strcmp(opt, "--top") == 0)
                out->top = parse_nonneg(command, opt, val), out->top_given = 1;
            else if (strcmp(opt, "--restarts") == 0)
                out->restarts = parse_nonneg(command, opt, val);
            else if (strcmp(opt, "--k") == 0)
                out->k = val;
            else if (strcmp(opt, "--features") == 0)
                out->features = val;
            else if (strcmp(opt, "--embedding") == 0)
                out->embedding = val;
            else if (strcmp(opt, "--segments") == 0)
                out->segments = val;
            else if (strcmp(opt, "--target") == 0)
                out->target = val;
            else if (strcmp(opt, "--steps") == 0)
                out->steps = parse_positive(command, opt, val);
            else if (strcmp(opt, "--max-steps") == 0)
                out->max_steps = parse_positive(command, opt, val);
            else if (strcmp(opt, "--window") == 0)
                out->window = parse_positive(command, opt, val);
            else if (strcmp(opt, "--per-user") == 0)
                out->per_user = parse_positive(command, opt, val);
            else if (strcmp(opt, "--users") == 0)
                out->users = parse_positive(command, opt, val);
            else
                add_extra(out, a, val);
            continue;
        }
        if (!out->exp_path) {
            out->exp_path = a;
            continue;
        }
        fprintf(stderr, "error: trainer %s: unexpected argument '%s'\n", command, a);
        exit(EXIT_USAGE);
    }
    if (need_exp && !out->exp_path) {
        fprintf(stderr, "error: trainer %s: missing the experiment file (EXP.yaml)\n", command);
        exit(EXIT_USAGE);
    }
}

void cli_require(const char *command, const void *value, const char *what) {
    if (value) return;
    fprintf(stderr, "error: trainer %s: %s is required\n", command, what);
    exit(EXIT_USAGE);
}

void cli_load_config(const CliArgs *args, Config *cfg) {
    if (config_load(cfg, args->exp_path, args->n_overrides, args->overrides) != 0) exit(EXIT_USAGE);
}
