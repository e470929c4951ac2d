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
    // explain / predict --explain
    const char *target;     // --target predicted|action:NAME|gap
    int steps, max_steps;   // --steps M, --max-steps M (0: absent)
    int window, per_user;   // --window N, --per-user N (0: absent)
    long long users;        // --users N (0: every user)
    int explain, sanity;    // --explain, --sanity
} CliArgs;

// Parses argv (after the subcommand words). allowed is a space-separated list of the
// options this command accepts ("--set --checkpoint"). Exits 2 with one line on misuse.
void cli_parse(int argc, char **argv, const char *command, const char *allowed, int need_exp,
               CliArgs *out);
// Loads the experiment named in args (exits 2 on any config error).
void cli_load_config(const CliArgs *args, Config *cfg);

