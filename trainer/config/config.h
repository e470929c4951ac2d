// config.h: the experiment configuration: one schema table, a YAML loader and overrides.
//
// Every key has a type, a default, a range (or a set of choices) and a one-line doc, all in
// the table in config.c. A Config is loaded from an experiment YAML file, then `--set
// key=value` overrides are applied; unknown keys, wrong types and out-of-range values are
// errors naming file:line:column (or the --set argument) and the key path, with a "did you
// mean" for near misses. Only config.c and sweep_config.c include yaml.h.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define CFG_PATH_LEN 512
#define CFG_NAME_LEN 64
#define CFG_LIST_MAX 8

typedef struct {
    int n;
    char item[CFG_LIST_MAX][CFG_NAME_LEN];
} StrList;

typedef struct {
    struct {
        char dir[CFG_PATH_LEN]; // run directory: config, logs, checkpoints
        int64_t seed;
    } run;
    struct {
        char source[16]; // synth | csv
        char train_path[CFG_PATH_LEN], valid_path[CFG_PATH_LEN], test_path[CFG_PATH_LEN];
        char path[CFG_PATH_LEN]; // one file split by user fractions
        double valid_frac, test_frac;
        char user_col[CFG_NAME_LEN], time_col[CFG_NAME_LEN], action_col[CFG_NAME_LEN];
        StrList categorical_cols, numeric_cols;
        char engagement_col[CFG_NAME_LEN];
        char time_format[16];       // number | iso8601
        char time_unit[16];         // s | ms | us | min | h | d | none
        char numeric_transform[16]; // none | log1p
        char on_error[8];           // stop | skip
        int64_t max_bad_rows;
        char on_duplicate_time[8]; // warn | stop (checked when the data is prepared)
        char on_unsorted[8];       // warn | stop
        char on_split_overlap[8];  // warn | stop
        char shard_dir[CFG_PATH_LEN];
        int64_t virtual_shards;
        char key_file[CFG_PATH_LEN];
        int64_t min_events;
        int64_t prepare_mem_mb; // per rank, for sorting buckets (beyond it: runs on disk)
        char exclude_users[CFG_PATH_LEN]; // erasure list (raw ids or hashes)
        char consent_col[CFG_NAME_LEN];   // rows with a false value are dropped
    } data;
    struct {
        char out_dir[CFG_PATH_LEN];
        int64_t users, min_events, max_events, seed;
        double valid_frac, test_frac;
        double irregular_frac;    // share of users made irregular (data/synth_irregular.h)
        StrList irregular_kinds; // bot | burst | takeover | spree; empty: all
        char drift_kind[16];     // none | segment_mix | habits | new_action | tempo
        double drift_strength;   // 0..1
    } synth;
    struct {
        int64_t hidden, layers, action_embed, cat_embed;
        double dropout, gap_offset, init_scale;
        int engagement_head;
        int64_t time_mixture;                 // log-normal components of the time head
        int gap_input;                        // log1p(previous gap / typical gap) as an input
        double dropout_input, dropout_output; // on layer 0's inputs, on the top layer's output
    } model;
    struct {
        int64_t batch_size, window, steps;
        char optimizer[16]; // sgd | adam | adamw
        double lr, momentum, beta1, beta2, eps, weight_decay, clip_norm;
        char schedule[16]; // constant | cosine | linear
        int64_t warmup_steps;
        double min_lr_frac;
        char on_nonfinite[8]; // skip | stop
        int reproducible;
        int64_t early_stop_patience; // validations without improvement; 0: off
        double early_stop_min_delta;
        char init_from[CFG_PATH_LEN]; // warm start: checkpoint FILE|RUNDIR
        int init_optimizer;
        char init_stats[8]; // keep | refit
        double init_new_lr_mult; // learning-rate multiplier of the rows of new values
    } train;
    struct {
        double action, time, engagement;
    } loss;
    struct {
        int64_t every, top_k, batch_size;
        char metric[16]; // action_nll | time_nll | loss | top1
        char time_point[8]; // median | mean: the gap's point prediction (MAE, RMSE)
        int64_t next_k;     // `trainer eval`: next-k accuracy of greedy roll-outs (0: off)
    } eval;
    struct {
        int64_t window;      // events per window of the irregularity score
        char statistic[16];  // window | mean
        double flag_rate;    // share of validation users flagged
    } score;
    struct {
        int64_t every;
    } log;
    struct {
        int64_t every, keep;
        char resume[8]; // auto | never
        int async;
        int keep_best;
    } checkpoint;
    struct {
        double bucket_mb;
        double timeout_s; // watchdog: seconds without progress in a collective (0: off)
    } comm;
    struct {
        int dp;
        double clip, noise_multiplier, target_epsilon, delta;
        char accountant[16]; // balle | classic
        char lane_norms[16]; // ghost | explicit
        int64_t min_group_size;
    } privacy;
} Config;

// Loads defaults, then the file (NULL: defaults only), then the overrides ("key=value").
// On any error prints every problem (one line each) and returns -1; 0 on success.
int config_load(Config *cfg, const char *path, int n_overrides, char **overrides);
// With quiet on, config_load() reports nothing (every rank loads the experiment; one says why).
void config_quiet(int quiet);

// Canonical text of the resolved config: YAML, sections in schema order, no comments.
// It is what run directories and checkpoints store and what the config hash is taken of.
// with_docs adds each key's doc as a trailing comment (for `trainer config show`).
char *config_to_yaml(const Config *cfg, int with_docs);
// The hash and the diff leave out the location keys (run.dir, data.shard_dir, synth.out_dir):
// where a run's files are is not part of the experiment, so a copied or moved run directory
// is the same experiment.
uint64_t config_hash(const Config *cfg);
int config_is_location_key(const char *key);
// Appends the value of `key` as config show writes it; -1 if there is no such key.
int config_key_text(const Config *cfg, const char *key, StrBuf *out);

// Keys whose values differ between a and b, comma separated into out (empty if none).
void config_diff(const Config *a, const Config *b, char *out, size_t cap);

// Validates one "key=value" override without a Config (used by sweeps to check their axes).
// Returns 0, or -1 after printing the error.
int config_check_override(const char *override_text, const char *origin);

// Prints the schema (key, type, default, range, doc) as a Markdown table.
void config_print_schema(FILE *out);

// Small helpers derived from the config.
double config_time_unit_seconds(const Config *cfg); // seconds per time unit, 0 if "none"
