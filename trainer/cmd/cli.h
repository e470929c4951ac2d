// cli.h: the subcommands and the argument parsing they share.
#pragma once
#include "config.h"

// Arguments common to commands that read an experiment: EXP.yaml plus options.
typedef struct {
    const char *exp_path;
    int n_overrides;
    char **overrides;
    // Options some commands take; NULL/0 when absent.
    const char *checkpoint; // --checkpoint FILE|RUNDIR
    const char *split;      // --split train|valid|test
    const char *input;      // --input FILE.csv
    const char *output;     // --output FILE
    int resume;             // --resume: continue this run dir even though the experiment changed
    int trial;              // --trial i (sweeps), -1 when absent
    int top;                // --top N
    int top_given;          // --top was on the command line
    int docs;               // --docs
    // Any other accepted option (a command's own: --flag-rate, --max-batch, ...), in order;
    // a flag without a value (--events) has the value "".
    int n_extra;
    const char *extra_name[16], *extra_val[16];
    // segment / predict --segments
    const char *k;          // --k K|auto
    const char *features;   // --features model|handmade
    const char *embedding;  // --embedding last|mean|last+mean
    const char *segments;   // --segments DIR (predict)
    int restarts;           // --restarts N, -1 when absent
    int force;              // --force: replace results already in --output
    // explain / predict --explain
    const char *target;     // --target predicted|action:NAME|gap
    int steps, max_steps;   // --steps M, --max-steps M (0: absent)
    int window, per_user;   // --window N, --per-user N (0: absent)
    long long users;        // --users N (0: every user)
    int explain, sanity;    // --explain, --sanity
} CliArgs;

// The value of a command's own option (the last one given), or NULL if absent.
const char *cli_get(const CliArgs *args, const char *opt);
// The same as a number in [min, max] (def when absent); exits 2 naming the option otherwise.
double cli_get_number(const CliArgs *args, const char *command, const char *opt, double min,
                      double max, double def);

// Parses argv (after the subcommand words). allowed is a space-separated list of the
// options this command accepts ("--set --checkpoint"). Exits 2 with one line on misuse.
void cli_parse(int argc, char **argv, const char *command, const char *allowed, int need_exp,
               CliArgs *out);
// Loads the experiment named in args (exits 2 on any config error).
void cli_load_config(const CliArgs *args, Config *cfg);
// Exits 2 with "error: trainer COMMAND: WHAT is required" when value is NULL (an option the
// command cannot do without, e.g. "--checkpoint FILE|RUNDIR"); checked before comm starts.
void cli_require(const char *command, const void *value, const char *what);

