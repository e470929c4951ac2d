// cli.c: see cli.h.
#include "cli.h"

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
            int *flag = strcmp(opt, "--resume") == 0    ? &out->resume
                        : strcmp(opt, "--docs") == 0    ? &out->docs
                        : strcmp(opt, "--explain") == 0 ? &out->explain
                        : strcmp(opt, "--sanity") == 0  ? &out->sanity
                                                        : NULL;
            if (flag) {
                *flag = 1;
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

void cli_load_config(const CliArgs *args, Config *cfg) {
    if (config_load(cfg, args->exp_path, args->n_overrides, args->overrides) != 0) exit(EXIT_USAGE);
}
