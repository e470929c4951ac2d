// config.c: the schema table, the YAML loader, overrides and the canonical text. See config.h.
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hash.h"

typedef enum { K_INT, K_FLOAT, K_BOOL, K_STR, K_ENUM, K_LIST } KeyType;

typedef struct {
    const char *key; // dotted path, "train.lr"
    KeyType type;
    size_t offset;       // into Config
    size_t size;         // bytes, for strings
    const char *def;     // default, as YAML text
    double min, max;     // inclusive range for K_INT / K_FLOAT
    const char *choices; // "a|b|c" for K_ENUM
    const char *doc;
} KeySpec;

#define OFF(field) offsetof(Config, field), sizeof(((Config *)0)->field)
#define BIG        9.007199254740992e15 // 2^53: integers beyond this do not survive a double

// The one schema table. Order here is the order of `config show` and of the canonical text.
static const KeySpec SCHEMA[] = {
    {"run.dir", K_STR, OFF(run.dir), "", 0, 0, NULL,
     "run directory (config, log, checkpoints); empty: runs/<experiment file name>"},
    {"run.seed", K_INT, OFF(run.seed), "1", 0, BIG, NULL,
     "seed of every random choice: init, shuffling, dropout"},

    {"data.source", K_ENUM, OFF(data.source), "synth", 0, 0, "synth|csv",
     "synth: generate users with the built-in generator; csv: read event files"},
    {"data.train_path", K_STR, OFF(data.train_path), "", 0, 0, NULL,
     "CSV of training events (given splits): a file, .csv.gz, a directory or glob of part "
     "files; empty: use data.path"},
    {"data.valid_path", K_STR, OFF(data.valid_path), "", 0, 0, NULL,
     "CSV of validation events (given splits; file, .gz, directory or glob as train_path)"},
    {"data.test_path", K_STR, OFF(data.test_path), "", 0, 0, NULL,
     "CSV of test events (given splits; file, .gz, directory or glob as train_path)"},
    {"data.path", K_STR, OFF(data.path), "", 0, 0, NULL,
     "one CSV (or .csv.gz, a directory or glob of part files) split into train/valid/test by "
     "user (data.valid_frac, data.test_frac)"},
    {"data.valid_frac", K_FLOAT, OFF(data.valid_frac), "0.1", 0, 0.5, NULL,
     "share of users held out for validation when splitting data.path"},
    {"data.test_frac", K_FLOAT, OFF(data.test_frac), "0.1", 0, 0.5, NULL,
     "share of users held out for test when splitting data.path"},
    {"data.user_col", K_STR, OFF(data.user_col), "user", 0, 0, NULL, "CSV column of the user id"},
    {"data.time_col", K_STR, OFF(data.time_col), "time", 0, 0, NULL,
     "CSV column of the event time"},
    {"data.action_col", K_STR, OFF(data.action_col), "action", 0, 0, NULL,
     "CSV column of the action type (any string)"},
    {"data.categorical_cols", K_LIST, OFF(data.categorical_cols), "[]", 0, 0, NULL,
     "further categorical CSV columns, each embedded"},
    {"data.numeric_cols", K_LIST, OFF(data.numeric_cols), "[]", 0, 0, NULL,
     "numeric CSV columns, normalised with train-set statistics"},
    {"data.engagement_col", K_STR, OFF(data.engagement_col), "", 0, 0, NULL,
     "numeric column predicted by the engagement head (one of data.numeric_cols; empty: none)"},
    {"data.time_format", K_ENUM, OFF(data.time_format), "number", 0, 0, "number|iso8601",
     "number: a count of data.time_unit; iso8601: 2026-01-05T13:45:12Z"},
    {"data.time_unit", K_ENUM, OFF(data.time_unit), "s", 0, 0, "s|ms|us|min|h|d|none",
     "unit of numeric times and of predicted gaps; none: no time of day/week features"},
    {"data.numeric_transform", K_ENUM, OFF(data.numeric_transform), "none", 0, 0, "none|log1p",
     "transform applied to numeric columns before normalising"},
    {"data.on_error", K_ENUM, OFF(data.on_error), "stop", 0, 0, "stop|skip",
     "bad CSV rows: stop at the first, or skip and count them"},
    {"data.max_bad_rows", K_INT, OFF(data.max_bad_rows), "1000000", 0, BIG, NULL,
     "with on_error=skip, stop anyway after this many bad rows"},
    {"data.on_duplicate_time", K_ENUM, OFF(data.on_duplicate_time), "warn", 0, 0, "warn|stop",
     "events of a user at the same time as the user's previous one (gap 0): warn with counts "
     "when preparing, or stop"},
    {"data.on_unsorted", K_ENUM, OFF(data.on_unsorted), "warn", 0, 0, "warn|stop",
     "events earlier in time than the same user's previous row of the file (a negative gap; "
     "events are sorted by time): warn with counts, or stop"},
    {"data.on_split_overlap", K_ENUM, OFF(data.on_split_overlap), "warn", 0, 0, "warn|stop",
     "a user id in more than one of train_path, valid_path, test_path (each file's rows stay "
     "a separate user): warn with counts, or stop"},
    {"data.shard_dir", K_STR, OFF(data.shard_dir), "", 0, 0, NULL,
     "where prepared shards live; empty: <run.dir>/shards"},
    {"data.virtual_shards", K_INT, OFF(data.virtual_shards), "16", 1, 4096, NULL,
     "V units of users fixed at prepare time; ranks hold whole units (P must divide V)"},
    {"data.key_file", K_STR, OFF(data.key_file), "", 0, 0, NULL,
     "file holding the user-id hashing key; empty: $TRAINER_KEY_FILE or "
     "~/.config/lstm-trainer/user-id.key (the key itself never comes from the config)"},
    {"data.min_events", K_INT, OFF(data.min_events), "2", 2, 1e9, NULL,
     "users with fewer events are dropped (counted in the prepare report)"},
    {"data.prepare_mem_mb", K_INT, OFF(data.prepare_mem_mb), "1024", 1, 1048576, NULL,
     "memory per rank for sorting the data at prepare (MiB); beyond it, sorted runs spill to "
     "disk and are merged (the shards are the same)"},
    {"data.exclude_users", K_STR, OFF(data.exclude_users), "", 0, 0, NULL,
     "erasure list: a file of user ids (raw, or their 16-hex-digit hashes), one a line; "
     "those users are dropped everywhere"},
    {"data.consent_col", K_STR, OFF(data.consent_col), "", 0, 0, NULL,
     "CSV column of consent: rows where it is false/0/no/n/off are dropped; empty: none"},

    {"synth.out_dir", K_STR, OFF(synth.out_dir), "", 0, 0, NULL,
     "where `data synth` writes its CSVs; empty: <run.dir>/synth"},
    {"synth.users", K_INT, OFF(synth.users), "2000", 10, 1e9, NULL, "number of synthetic users"},
    {"synth.min_events", K_INT, OFF(synth.min_events), "20", 2, 1e7, NULL,
     "fewest events per synthetic user"},
    {"synth.max_events", K_INT, OFF(synth.max_events), "120", 2, 1e7, NULL,
     "most events per synthetic user"},
    {"synth.seed", K_INT, OFF(synth.seed), "7", 0, BIG, NULL, "seed of the generator"},
    {"synth.valid_frac", K_FLOAT, OFF(synth.valid_frac), "0.1", 0.01, 0.5, NULL,
     "share of synthetic users written to valid.csv"},
    {"synth.test_frac", K_FLOAT, OFF(synth.test_frac), "0.1", 0.01, 0.5, NULL,
     "share of synthetic users written to test.csv"},
    {"synth.irregular_frac", K_FLOAT, OFF(synth.irregular_frac), "0", 0, 0.5, NULL,
     "share of synthetic users made irregular part-way (labelled in truth.csv; excluded from "
     "the best achievable losses)"},
    {"synth.irregular_kinds", K_LIST, OFF(synth.irregular_kinds), "[]", 0, 0, NULL,
     "kinds of irregular users, drawn uniformly: bot, burst, takeover, spree; empty: all four"},
    {"synth.drift_kind", K_ENUM, OFF(synth.drift_kind), "none", 0, 0,
     "none|segment_mix|habits|new_action|tempo",
     "a second period (period2/ under synth.out_dir) whose users changed: segment shares, "
     "transition habits, a new action type, or shorter gaps; none: no second period"},
    {"synth.drift_strength", K_FLOAT, OFF(synth.drift_strength), "1", 0, 1, NULL,
     "how far period 2 moves from period 1 (0: not at all, 1: the full change)"},

    {"model.hidden", K_INT, OFF(model.hidden), "64", 1, 16384, NULL, "LSTM width H"},
    {"model.layers", K_INT, OFF(model.layers), "1", 1, 8, NULL, "stacked LSTM layers L"},
    {"model.action_embed", K_INT, OFF(model.action_embed), "16", 1, 4096, NULL,
     "embedding width of the action type"},
    {"model.cat_embed", K_INT, OFF(model.cat_embed), "8", 1, 4096, NULL,
     "embedding width of each further categorical column"},
    {"model.dropout", K_FLOAT, OFF(model.dropout), "0", 0, 0.9, NULL,
     "inverted dropout between LSTM layers (training only)"},
    {"model.gap_offset", K_FLOAT, OFF(model.gap_offset), "0.001", 1e-12, 1e12, NULL,
     "delta in time units: the time head models log(gap + delta), so zero gaps are fine"},
    {"model.init_scale", K_FLOAT, OFF(model.init_scale), "0", 0, 10, NULL,
     "uniform init range of LSTM/head weights; 0: 1/sqrt(hidden) as PyTorch"},
    {"model.engagement_head", K_BOOL, OFF(model.engagement_head), "true", 0, 0, NULL,
     "predict the next data.engagement_col value (ignored when that is empty)"},
    {"model.time_mixture", K_INT, OFF(model.time_mixture), "1", 1, 32, NULL,
     "M log-normal components of the next-gap density (Shchur et al. 2020); 1: the single "
     "log-normal"},
    {"model.gap_input", K_BOOL, OFF(model.gap_input), "false", 0, 0, NULL,
     "one more input per event: log1p(previous gap / the train set's geometric-mean gap)"},
    {"model.dropout_input", K_FLOAT, OFF(model.dropout_input), "0", 0, 0.9, NULL,
     "inverted dropout on layer 0's input row (embeddings and dense inputs; training only)"},
    {"model.dropout_output", K_FLOAT, OFF(model.dropout_output), "0", 0, 0.9, NULL,
     "inverted dropout on the top layer's output, before the heads (training only)"},

    {"train.batch_size", K_INT, OFF(train.batch_size), "32", 1, 1 << 20, NULL,
     "global lanes B (a multiple of data.virtual_shards); each rank runs B/P"},
    {"train.window", K_INT, OFF(train.window), "32", 1, 1 << 16, NULL,
     "truncated-BPTT window T in events"},
    {"train.steps", K_INT, OFF(train.steps), "300", 0, BIG, NULL, "optimizer steps to run"},
    {"train.optimizer", K_ENUM, OFF(train.optimizer), "adamw", 0, 0, "sgd|adam|adamw",
     "sgd (with momentum), adam (L2 decay in the gradient) or adamw (decoupled decay)"},
    {"train.lr", K_FLOAT, OFF(train.lr), "0.003", 0, 100, NULL, "peak learning rate"},
    {"train.momentum", K_FLOAT, OFF(train.momentum), "0.9", 0, 0.9999, NULL, "sgd momentum"},
    {"train.beta1", K_FLOAT, OFF(train.beta1), "0.9", 0, 0.9999, NULL, "adam beta1"},
    {"train.beta2", K_FLOAT, OFF(train.beta2), "0.999", 0, 0.999999, NULL, "adam beta2"},
    {"train.eps", K_FLOAT, OFF(train.eps), "1e-08", 1e-30, 1, NULL, "adam epsilon"},
    {"train.weight_decay", K_FLOAT, OFF(train.weight_decay), "0", 0, 10, NULL,
     "weight decay of matrices and embeddings (never biases)"},
    {"train.clip_norm", K_FLOAT, OFF(train.clip_norm), "1", 0, 1e9, NULL,
     "clip the global gradient norm to this; 0: no clipping"},
    {"train.schedule", K_ENUM, OFF(train.schedule), "cosine", 0, 0, "constant|cosine|linear",
     "learning-rate schedule after the linear warm-up"},
    {"train.warmup_steps", K_INT, OFF(train.warmup_steps), "20", 0, BIG, NULL,
     "steps of linear warm-up from 0 to train.lr"},
    {"train.min_lr_frac", K_FLOAT, OFF(train.min_lr_frac), "0.1", 0, 1, NULL,
     "cosine/linear decay ends at train.lr * min_lr_frac"},
    {"train.on_nonfinite", K_ENUM, OFF(train.on_nonfinite), "skip", 0, 0, "skip|stop",
     "a non-finite loss or gradient on any rank: every rank skips the step, or the run stops"},
    {"train.reproducible", K_BOOL, OFF(train.reproducible), "false", 0, 0, NULL,
     "bitwise-identical results for every P dividing V (per-shard passes, exact integer "
     "gradient sums; slower)"},
    {"train.early_stop_patience", K_INT, OFF(train.early_stop_patience), "0", 0, BIG, NULL,
     "stop after N validations without an improvement of eval.metric by at least "
     "train.early_stop_min_delta (needs eval.every > 0); 0: never stop early"},
    {"train.early_stop_min_delta", K_FLOAT, OFF(train.early_stop_min_delta), "0", 0, 1e9, NULL,
     "smallest change of eval.metric that counts as an improvement"},
    {"train.init_from", K_STR, OFF(train.init_from), "", 0, 0, NULL,
     "warm start: a checkpoint FILE or RUNDIR (its best) whose parameters start this run; "
     "vocabularies are matched by value; empty: random initialisation"},
    {"train.init_optimizer", K_BOOL, OFF(train.init_optimizer), "false", 0, 0, NULL,
     "with train.init_from: also take its optimizer moments and step"},
    {"train.init_stats", K_ENUM, OFF(train.init_stats), "refit", 0, 0, "keep|refit",
     "with train.init_from: keep its numeric normalisation, or refit it on this data"},
    {"train.init_new_lr_mult", K_FLOAT, OFF(train.init_new_lr_mult), "10", 1, 1000, NULL,
     "with train.init_from: learning-rate multiplier of the rows created for new values "
     "(their embedding and output rows, which start from nothing while the kept rows only "
     "adjust)"},

    {"loss.action", K_FLOAT, OFF(loss.action), "1", 0, 1e6, NULL,
     "weight of the next-action cross-entropy"},
    {"loss.time", K_FLOAT, OFF(loss.time), "1", 0, 1e6, NULL,
     "weight of the next-gap log-normal NLL"},
    {"loss.engagement", K_FLOAT, OFF(loss.engagement), "0.5", 0, 1e6, NULL,
     "weight of the next-engagement squared error (normalised units)"},

    {"eval.every", K_INT, OFF(eval.every), "100", 0, BIG, NULL,
     "validate every N steps (and at the end); 0: only at the end"},
    {"eval.top_k", K_INT, OFF(eval.top_k), "5", 1, 1000, NULL, "k of the top-k accuracy"},
    {"eval.batch_size", K_INT, OFF(eval.batch_size), "64", 1, 1 << 20, NULL,
     "lanes per rank when evaluating"},
    {"eval.metric", K_ENUM, OFF(eval.metric), "loss", 0, 0, "action_nll|time_nll|loss|top1",
     "validation figure that picks the best checkpoint and drives early stopping (top1: "
     "higher is better, the others lower)"},
    {"eval.time_point", K_ENUM, OFF(eval.time_point), "median", 0, 0, "median|mean",
     "point prediction of the next gap scored by time MAE and RMSE: the median (minimises "
     "MAE) or the mean (minimises RMSE) of the predicted density"},
    {"eval.next_k", K_INT, OFF(eval.next_k), "0", 0, 64, NULL,
     "trainer eval: accuracy of the next k event types from greedy roll-outs of the model's own "
     "predictions, per step (0: off)"},

    {"score.window", K_INT, OFF(score.window), "8", 1, 1 << 20, NULL,
     "events per window of the irregularity score (trainer score, trainer serve)"},
    {"score.statistic", K_ENUM, OFF(score.statistic), "zwindow", 0, 0, "zwindow|window|mean",
     "per-user irregularity (run/surprise.h): zwindow = the most extreme window of one part's "
     "excess surprisal in its own standard deviations, corrected for the number of windows; "
     "window = the largest mean total excess over a window; mean = over the whole history"},
    {"score.flag_rate", K_FLOAT, OFF(score.flag_rate), "0.01", 0, 1, NULL,
     "share of validation users above the flag threshold (the score quantile 1 - rate)"},

    {"log.every", K_INT, OFF(log.every), "20", 1, BIG, NULL, "log progress every N steps"},

    {"checkpoint.every", K_INT, OFF(checkpoint.every), "100", 0, BIG, NULL,
     "write a checkpoint every N steps (and at the end, and on a stop signal); 0: only those"},
    {"checkpoint.keep", K_INT, OFF(checkpoint.keep), "3", 1, 1e6, NULL,
     "checkpoints kept in the run directory (the newest good one is never deleted)"},
    {"checkpoint.resume", K_ENUM, OFF(checkpoint.resume), "auto", 0, 0, "auto|never",
     "auto: continue from the newest valid checkpoint of run.dir; never: refuse if one exists"},
    {"checkpoint.async", K_BOOL, OFF(checkpoint.async), "true", 0, 0, NULL,
     "write checkpoints on a background thread (training does not wait for the disk)"},
    {"checkpoint.keep_best", K_BOOL, OFF(checkpoint.keep_best), "true", 0, 0, NULL,
     "keep the checkpoint with the best eval.metric apart from the newest checkpoint.keep "
     "(named in checkpoints/best.json); scoring commands read it by default"},

    {"comm.timeout_s", K_FLOAT, OFF(comm.timeout_s), "300", 0, 1e7, NULL,
     "seconds a rank waits in a collective without progress before the job ends with status "
     "4, naming the ranks that never arrived (0: wait forever)"},
    {"comm.bucket_mb", K_FLOAT, OFF(comm.bucket_mb), "4", 0.001, 4096, NULL,
     "largest gradient bucket reduced in one non-blocking allreduce"},

    {"privacy.dp", K_BOOL, OFF(privacy.dp), "false", 0, 0, NULL,
     "user-level DP-SGD: Poisson-sampled users, per-user clipping, Gaussian noise, accountant"},
    {"privacy.clip", K_FLOAT, OFF(privacy.clip), "1", 0, 1e9, NULL,
     "per-user L2 bound C of the gradient of a user's mean event loss"},
    {"privacy.noise_multiplier", K_FLOAT, OFF(privacy.noise_multiplier), "0", 0, 1e6, NULL,
     "sigma: noise N(0, sigma^2 C^2) per coordinate of the gradient sum; 0: solve it from "
     "privacy.target_epsilon"},
    {"privacy.target_epsilon", K_FLOAT, OFF(privacy.target_epsilon), "0", 0, 1e6, NULL,
     "epsilon to reach after train.steps (sigma solved before training); 0: none"},
    {"privacy.delta", K_FLOAT, OFF(privacy.delta), "0", 0, 0.999999, NULL,
     "delta of (epsilon, delta); 0: 1/(training users) rounded down to a power of ten"},
    {"privacy.accountant", K_ENUM, OFF(privacy.accountant), "balle", 0, 0, "balle|classic",
     "RDP to (epsilon, delta): Balle et al. 2020 (tighter, as Opacus) or classic (as TF Privacy)"},
    {"privacy.lane_norms", K_ENUM, OFF(privacy.lane_norms), "ghost", 0, 0, "ghost|explicit",
     "how per-user gradient norms are computed (same values; ghost is faster, README)"},
    {"privacy.min_group_size", K_INT, OFF(privacy.min_group_size), "10", 1, 1e9, NULL,
     "aggregates (per segment, per group) over fewer users are suppressed in outputs"},
};
#define N_KEYS ((int)ARRAY_LEN(SCHEMA))

// ---------------------------------------------------------------- errors

typedef struct {
    int n_errors;
    char origin[N_KEYS][CFG_PATH_LEN]; // where each key was set last
} LoadState;

static void report(LoadState *st, const char *where, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int g_quiet; // config_quiet(): count errors without printing them

void config_quiet(int quiet) { g_quiet = quiet; }

static void report(LoadState *st, const char *where, const char *key, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st->n_errors++;
    if (g_quiet) return;
    if (key && *key)
        fprintf(stderr, "%serror: %s: %s: %s\n", log_prefix(), where, key, msg);
    else
        fprintf(stderr, "%serror: %s: %s\n", log_prefix(), where, msg);
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 127 || lb > 127) return 1000;
    int prev[128], cur[128];
    for (int j = 0; j <= lb; j++) prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

// Fills hint with " (did you mean 'x'?)" when some choice is close to word.
static void did_you_mean(const char *word, const char **choices, int n, char *hint, size_t cap) {
    int best = 1000, best_i = -1;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, choices[i]);
        if (d < best) best = d, best_i = i;
    }
    int limit = (int)strlen(word) / 3 + 1;
    if (limit > 3) limit = 3;
    hint[0] = 0;
    if (best_i >= 0 && best <= limit) snprintf(hint, cap, " (did you mean '%s'?)", choices[best_i]);
}

static void key_hint(const char *path, char *hint, size_t cap) {
    // Candidates: every key, and every section name (for a misspelt section).
    const char *names[2 * N_KEYS];
    char sections[N_KEYS][32];
    int n = 0;
    for (int i = 0; i < N_KEYS; i++) names[n++] = SCHEMA[i].key;
    for (int i = 0; i < N_KEYS && !strchr(path, '.'); i++) {
        snprintf(sections[i], sizeof sections[i], "%.*s",
                 (int)(strchr(SCHEMA[i].key, '.') - SCHEMA[i].key), SCHEMA[i].key);
        if (i == 0 || strcmp(sections[i], sections[i - 1]) != 0) names[n++] = sections[i];
    }
    did_you_mean(path, names, n, hint, cap);
    if (hint[0]) return;
    // A right leaf in the wrong section ("lr" for "train.lr", "model.lr" for "train.lr").
    const char *leaf = strrchr(path, '.');
    leaf = leaf ? leaf + 1 : path;
    for (int i = 0; i < N_KEYS; i++) {
        const char *l = strrchr(SCHEMA[i].key, '.') + 1;
        if (strcmp(l, leaf) == 0) {
            snprintf(hint, cap, " (did you mean '%s'?)", SCHEMA[i].key);
            return;
        }
    }
}

static int find_key(const char *path) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(SCHEMA[i].key, path) == 0) return i;
    return -1;
}

static int is_section(const char *path) {
    size_t n = strlen(path);
    for (int i = 0; i < N_KEYS; i++)
        if (strncmp(SCHEMA[i].key, path, n) == 0 && SCHEMA[i].key[n] == '.') return 1;
    return 0;
}

// ---------------------------------------------------------------- values

// A value to assign: either a scalar (with whether it was quoted) or a list of scalars.
typedef struct {
    int is_list, quoted, is_null;
    const char *scalar;
    int n_items;
    const char *items[CFG_LIST_MAX + 1];
    int items_quoted[CFG_LIST_MAX + 1];
    int too_many, nested;
} Value;

static int parse_int(const char *s, int64_t *out) {
    if (!*s) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_float(const char *s, double *out) {
    if (!*s) return -1;
    // YAML spells special floats .inf/.nan; reject both them and C's spellings.
    for (const char *p = s; *p; p++)
        if (isalpha((unsigned char)*p) && *p != 'e' && *p != 'E') return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "on", "On"};
    static const char *no[] = {"false", "False", "FALSE", "no", "No", "off", "Off"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        if (strcmp(s, yes[i]) == 0) return *out = 1, 0;
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        if (strcmp(s, no[i]) == 0) return *out = 0, 0;
    return -1;
}

static void fmt_number(char *buf, size_t cap, double v) {
    snprintf(buf, cap, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, cap, "%.17g", v);
}

static void range_text(const KeySpec *k, char *buf, size_t cap) {
    char lo[32], hi[32];
    fmt_number(lo, sizeof lo, k->min);
    fmt_number(hi, sizeof hi, k->max);
    if (k->max >= BIG)
        snprintf(buf, cap, ">= %s", lo);
    else
        snprintf(buf, cap, "%s..%s", lo, hi);
}

static int split_choices(const char *choices, char names[][32], const char **ptrs) {
    int n = 0;
    const char *p = choices;
    while (*p && n < 16) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        snprintf(names[n], 32, "%.*s", (int)len, p);
        ptrs[n] = names[n];
        n++;
        p = bar ? bar + 1 : p + len;
    }
    return n;
}

static const char *type_name(KeyType t) {
    switch (t) {
    case K_INT:
        return "an integer";
    case K_FLOAT:
        return "a number";
    case K_BOOL:
        return "true or false";
    case K_STR:
        return "a string";
    case K_ENUM:
        return "one of the choices";
    case K_LIST:
        return "a list of strings";
    }
    return "?";
}

// Assigns v to key i of cfg, reporting errors against `where`. Returns 0 on success.
// A K_LIST key: a flow or block sequence of plain, non-empty strings.
static int assign_list(const KeySpec *k, StrList *list, LoadState *st, const Value *v,
                       const char *where) {
    if (!v->is_list) {
        report(st, where, k->key, "expected a list of strings like [a, b], got \"%s\"",
               v->scalar);
        return -1;
    }
    if (v->nested) {
        report(st, where, k->key, "list items must be plain strings");
        return -1;
    }
    if (v->too_many) {
        report(st, where, k->key, "too many items (at most %d)", CFG_LIST_MAX);
        return -1;
    }
    memset(list, 0, sizeof *list);
    for (int j = 0; j < v->n_items; j++) {
        if (strlen(v->items[j]) >= CFG_NAME_LEN || !v->items[j][0]) {
            report(st, where, k->key, "item %d is empty or longer than %d characters", j,
                   CFG_NAME_LEN - 1);
            return -1;
        }
        strcpy(list->item[j], v->items[j]);
    }
    list->n = v->n_items;
    return 0;
}

// A K_INT or K_FLOAT key: an unquoted number within the key's range.
static int assign_number(const KeySpec *k, char *dst, LoadState *st, const Value *v,
                         const char *where) {
    const char *s = v->scalar;
    const int is_int = k->type == K_INT;
    int64_t xi = 0;
    double x = 0;
    int bad = v->quoted || (is_int ? parse_int(s, &xi) : parse_float(s, &x)) != 0;
    if (bad && !v->quoted && is_int && s[strspn(s, "+-")] && !s[strspn(s, "+-0123456789")]) {
        char r[80]; // digits only: too large for 64 bits, not malformed
        range_text(k, r, sizeof r);
        report(st, where, k->key, "value %s is out of range (allowed: %s)", s, r);
        return -1;
    }
    if (bad) {
        report(st, where, k->key, "expected %s, got %s\"%s\"", is_int ? "an integer" : "a number",
               v->quoted ? "the string " : "", s);
        return -1;
    }
    if (is_int) x = (double)xi;
    if (x < k->min || x > k->max) {
        char r[80];
        range_text(k, r, sizeof r);
        if (is_int)
            report(st, where, k->key, "value %lld is out of range (allowed: %s)", (long long)xi, r);
        else
            report(st, where, k->key, "value %s is out of range (allowed: %s)", s, r);
        return -1;
    }
    if (is_int)
        *(int64_t *)dst = xi;
    else
        *(double *)dst = x;
    return 0;
}

static int assign(Config *cfg, LoadState *st, int i, const Value *v, const char *where) {
    const KeySpec *k = &SCHEMA[i];
    char *dst = (char *)cfg + k->offset;
    if (v->is_null) {
        report(st, where, k->key, "missing value (expected %s)", type_name(k->type));
        return -1;
    }
    if (k->type == K_LIST) return assign_list(k, (StrList *)dst, st, v, where);
    if (v->is_list) {
        report(st, where, k->key, "expected %s, got a list", type_name(k->type));
        return -1;
    }
    const char *s = v->scalar;
    switch (k->type) {
    case K_INT:
    case K_FLOAT:
        return assign_number(k, dst, st, v, where);
    case K_BOOL: {
        int x;
        if (v->quoted || parse_bool(s, &x) != 0) {
            report(st, where, k->key, "expected true or false, got %s\"%s\"",
                   v->quoted ? "the string " : "", s);
            return -1;
        }
        *(int *)dst = x;
        return 0;
    }
    case K_ENUM: {
        char names[16][32];
        const char *ptrs[16];
        int n = split_choices(k->choices, names, ptrs);
        for (int j = 0; j < n; j++)
            if (strcmp(s, ptrs[j]) == 0) {
                str_copy(dst, k->size, s);
                return 0;
            }
        char hint[128];
        did_you_mean(s, ptrs, n, hint, sizeof hint);
        report(st, where, k->key, "\"%s\" is not one of %s%s", s, k->choices, hint);
        return -1;
    }
    case K_STR:
        if (strlen(s) >= k->size) {
            report(st, where, k->key, "string longer than %zu characters", k->size - 1);
            return -1;
        }
        strcpy(dst, s);
        return 0;
    case K_LIST:
        break;
    }
    return -1;
}

// ---------------------------------------------------------------- YAML

static void node_to_value(yaml_document_t *doc, yaml_node_t *node, Value *v) {
    memset(v, 0, sizeof *v);
    if (node->type == YAML_SCALAR_NODE) {
        v->scalar = (const char *)node->data.scalar.value;
        v->quoted = node->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    node->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        v->is_null = !v->quoted && (node->data.scalar.length == 0 || strcmp(v->scalar, "~") == 0 ||
                                    strcmp(v->scalar, "null") == 0);
    } else if (node->type == YAML_SEQUENCE_NODE) {
        v->is_list = 1;
        v->scalar = "[...]";
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             it < node->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(doc, *it);
            if (item->type != YAML_SCALAR_NODE) {
                v->nested = 1;
                continue;
            }
            if (v->n_items >= CFG_LIST_MAX) {
                v->too_many = 1;
                continue;
            }
            v->items[v->n_items++] = (const char *)item->data.scalar.value;
        }
    } else {
        v->is_list = 1;
        v->nested = 1;
        v->scalar = "{...}";
    }
}

static void where_of(char *buf, size_t cap, const char *file, yaml_mark_t m) {
    snprintf(buf, cap, "%s:%zu:%zu", file, m.line + 1, m.column + 1);
}

// Where key i was set, for later messages: a long --set text is kept shortened, never fatal.
static void set_origin(LoadState *st, int i, const char *where) {
    snprintf(st->origin[i], sizeof st->origin[i], "%s", where);
}

static void load_mapping(Config *cfg, LoadState *st, yaml_document_t *doc, yaml_node_t *map,
                         const char *prefix, const char *file) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        char where[CFG_PATH_LEN + 32];
        where_of(where, sizeof where, file, kn->start_mark);
        if (kn->type != YAML_SCALAR_NODE) {
            report(st, where, prefix, "keys must be plain names");
            continue;
        }
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "",
                 (const char *)kn->data.scalar.value);
        // Duplicate keys in one mapping are almost always a mistake.
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(doc, q->key);
            if (qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value,
                                                       (const char *)kn->data.scalar.value) == 0) {
                report(st, where, path, "duplicate key (first set on line %zu)",
                       qk->start_mark.line + 1);
                break;
            }
        }
        int i = find_key(path);
        if (i >= 0) {
            char vwhere[CFG_PATH_LEN + 32];
            where_of(vwhere, sizeof vwhere, file, vn->start_mark);
            Value v;
            node_to_value(doc, vn, &v);
            if (assign(cfg, st, i, &v, vwhere) == 0) set_origin(st, i, vwhere);
        } else if (is_section(path)) {
            if (vn->type != YAML_MAPPING_NODE)
                report(st, where, path, "is a section: expected a mapping of its keys");
            else
                load_mapping(cfg, st, doc, vn, path, file);
        } else {
            char hint[160];
            key_hint(path, hint, sizeof hint);
            report(st, where, path, "unknown key%s", hint);
        }
    }
}

static const char *yaml_problem(yaml_parser_t *p, char *buf, size_t cap, yaml_mark_t *mark) {
    *mark = p->problem_mark;
    snprintf(buf, cap, "invalid YAML: %s%s%s", p->problem ? p->problem : "parse error",
             p->context ? " " : "", p->context ? p->context : "");
    return buf;
}

// ---------------------------------------------------------------- paths

// Keys naming files or directories. In an experiment file a relative value is relative to
// the file's directory (as a sweep's base: is); on the command line (--set) and in resolved
// files (config show, RUNDIR/config.yaml, a sweep's trial configs), to the working directory.
static const char *const PATH_KEYS[] = {"run.dir",        "data.path",      "data.train_path",
                                        "data.valid_path", "data.test_path", "data.shard_dir",
                                        "data.key_file",   "data.exclude_users", "synth.out_dir"};
#define RESOLVED_MARK                                                                              \
    "# resolved experiment: relative paths are relative to the working directory\n"

// dir/rel with "." and "name/.." removed, into out (cap bytes); -1 if it does not fit.
static int join_path(const char *dir, const char *rel, char *out, size_t cap) {
    char joined[2 * CFG_PATH_LEN + 2];
    snprintf(joined, sizeof joined, "%s/%s", dir, rel);
    char *part[256];
    int n = 0;
    const int absolute = joined[0] == '/';
    for (char *save = NULL, *t = strtok_r(joined, "/", &save); t && n < 256;
         t = strtok_r(NULL, "/", &save)) {
        if (strcmp(t, ".") == 0) continue;
        if (strcmp(t, "..") == 0 && n > 0 && strcmp(part[n - 1], "..") != 0) {
            n--;
            continue;
        }
        if (strcmp(t, "..") == 0 && absolute) continue; // /.. is /
        part[n++] = t;
    }
    size_t used = 0;
    out[0] = 0;
    if (absolute) used = (size_t)snprintf(out, cap, "/");
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "/" : "", part[i]);
    if (!n && !absolute) used = (size_t)snprintf(out, cap, ".");
    return used < cap ? 0 : -1;
}

static void resolve_file_paths(Config *cfg, LoadState *st, const char *path, const char *text) {
    if (strncmp(text, RESOLVED_MARK, strlen(RESOLVED_MARK)) == 0) return;
    const char *slash = strrchr(path, '/');
    if (!slash) return; // the file is in the working directory: nothing to join
    char dir[CFG_PATH_LEN];
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) ? (int)(slash - path) : 1, path);
    for (size_t k = 0; k < ARRAY_LEN(PATH_KEYS); k++) {
        const int i = find_key(PATH_KEYS[k]);
        char *value = (char *)cfg + SCHEMA[i].offset;
        if (!value[0] || value[0] == '/' || strncmp(st->origin[i], path, strlen(path)) != 0)
            continue;
        char out[CFG_PATH_LEN];
        if (join_path(dir, value, out, sizeof out) != 0 || strlen(out) >= SCHEMA[i].size)
            report(st, st->origin[i], SCHEMA[i].key, "%s/%s is too long (at most %zu characters)",
                   dir, value, SCHEMA[i].size - 1);
        else
            snprintf(value, SCHEMA[i].size, "%s", out);
    }
}

static void load_file(Config *cfg, LoadState *st, const char *path) {
    size_t size;
    char *text = read_file(path, &size);
    if (!text) {
        report(st, path, NULL, "cannot read experiment file (%s)", strerror(errno));
        return;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, size);
    if (!yaml_parser_load(&parser, &doc)) {
        char msg[512], where[CFG_PATH_LEN + 32];
        yaml_mark_t m;
        yaml_problem(&parser, msg, sizeof msg, &m);
        where_of(where, sizeof where, path, m);
        report(st, where, NULL, "%s", msg);
        yaml_parser_delete(&parser);
        free(text);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        load_mapping(cfg, st, &doc, root, "", path);
        resolve_file_paths(cfg, st, path, text);
    } else if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        char where[CFG_PATH_LEN + 32];
        where_of(where, sizeof where, path, root->start_mark);
        report(st, where, NULL, "expected a mapping of sections (run:, data:, model:, ...)");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    free(text);
}

// Applies one "key=value" override; value is read as YAML (so [a, b] is a list).
static void apply_override(Config *cfg, LoadState *st, const char *text, const char *origin) {
    char where[600];
    // Messages quote the override; a long one (a path beyond any limit) is shortened.
    size_t text_len = strlen(text);
    if (text_len <= 200)
        snprintf(where, sizeof where, "%s %s", origin, text);
    else
        snprintf(where, sizeof where, "%s %.160s... (%zu characters)", origin, text, text_len);
    const char *eq = strchr(text, '=');
    if (!eq || eq == text) {
        report(st, where, NULL, "expected key=value, for example train.lr=3e-4");
        return;
    }
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - text), text);
    int i = find_key(key);
    if (i < 0) {
        char hint[160];
        key_hint(key, hint, sizeof hint);
        if (is_section(key))
            report(st, where, key, "is a section, not a key");
        else
            report(st, where, key, "unknown key%s", hint);
        return;
    }
    const char *vtext = eq + 1;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)vtext, strlen(vtext));
    if (!yaml_parser_load(&parser, &doc)) {
        report(st, where, key, "value is not valid YAML (%s)",
               parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    Value v;
    if (!root) {
        memset(&v, 0, sizeof v);
        v.is_null = 1;
    } else
        node_to_value(&doc, root, &v);
    if (assign(cfg, st, i, &v, where) == 0) set_origin(st, i, where);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

// ---------------------------------------------------------------- cross-field rules

static const char *origin_of(LoadState *st, const char *key) {
    int i = find_key(key);
    return st->origin[i][0] ? st->origin[i] : "default";
}

static int list_has(const StrList *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->item[i], name) == 0) return 1;
    return 0;
}

static void check_rules(Config *c, LoadState *st) {
#define RULE(cond, key, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) report(st, origin_of(st, key), key, __VA_ARGS__);                             \
    } while (0)
    RULE(c->train.batch_size % c->data.virtual_shards == 0, "train.batch_size",
         "%lld is not a multiple of data.virtual_shards (%lld): each virtual shard feeds "
         "batch_size/virtual_shards lanes",
         (long long)c->train.batch_size, (long long)c->data.virtual_shards);
    RULE(c->synth.min_events <= c->synth.max_events, "synth.min_events",
         "%lld is larger than synth.max_events (%lld)", (long long)c->synth.min_events,
         (long long)c->synth.max_events);
    for (int i = 0; i < c->synth.irregular_kinds.n; i++) {
        const char *k = c->synth.irregular_kinds.item[i];
        RULE(strcmp(k, "bot") == 0 || strcmp(k, "burst") == 0 || strcmp(k, "takeover") == 0 ||
                 strcmp(k, "spree") == 0,
             "synth.irregular_kinds", "\"%s\" is not one of bot, burst, takeover, spree", k);
    }
    RULE(c->data.valid_frac + c->data.test_frac < 0.9, "data.valid_frac",
         "data.valid_frac + data.test_frac must leave at least 10%% of users for training");
    if (strcmp(c->data.source, "csv") == 0) {
        int given = c->data.train_path[0] != 0, single = c->data.path[0] != 0;
        RULE(given || single, "data.source",
             "csv needs data.train_path (with data.valid_path, data.test_path) or data.path");
        RULE(!(given && single), "data.path", "set either data.path or data.train_path, not both");
        if (given)
            RULE(c->data.valid_path[0] != 0, "data.valid_path",
                 "required with data.train_path (validation users)");
    }
    if (c->data.engagement_col[0])
        RULE(list_has(&c->data.numeric_cols, c->data.engagement_col), "data.engagement_col",
             "\"%s\" is not one of data.numeric_cols", c->data.engagement_col);
    const char *roles[] = {c->data.user_col, c->data.time_col, c->data.action_col};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            RULE(strcmp(roles[i], roles[j]) != 0, "data.user_col",
                 "user, time and action columns must be different columns (\"%s\" used twice)",
                 roles[i]);
    for (int i = 0; i < c->data.categorical_cols.n; i++)
        RULE(!list_has(&c->data.numeric_cols, c->data.categorical_cols.item[i]),
             "data.categorical_cols", "\"%s\" is also listed in data.numeric_cols",
             c->data.categorical_cols.item[i]);
    RULE(!(strcmp(c->data.time_format, "iso8601") == 0 && strcmp(c->data.time_unit, "none") == 0),
         "data.time_unit", "iso8601 times have a unit: use s, min, h, ...");
    const int warmup_default = strcmp(origin_of(st, "train.warmup_steps"), "default") == 0;
    RULE(c->train.warmup_steps <= c->train.steps || c->train.steps == 0, "train.warmup_steps",
         "%lld%s is more than train.steps (%lld): set train.warmup_steps to at most that",
         (long long)c->train.warmup_steps, warmup_default ? " (the default value)" : "",
         (long long)c->train.steps);
    RULE(c->train.early_stop_patience == 0 || c->eval.every > 0, "train.early_stop_patience",
         "needs eval.every > 0 (early stopping counts validations during the run)");
    RULE(c->loss.action + c->loss.time + c->loss.engagement > 0, "loss.action",
         "at least one loss weight must be positive");
    if (c->privacy.dp) {
        RULE(c->privacy.clip > 0, "privacy.clip", "must be > 0 with privacy.dp");
        RULE(c->privacy.noise_multiplier > 0 || c->privacy.target_epsilon > 0,
             "privacy.noise_multiplier",
             "must be > 0 with privacy.dp (or set privacy.target_epsilon to solve it)");
        RULE(!(c->privacy.noise_multiplier > 0 && c->privacy.target_epsilon > 0),
             "privacy.target_epsilon",
             "set either privacy.target_epsilon or privacy.noise_multiplier, not both");
        // (per-user gradient norms, nn/lane_grad.h, read the undropped inputs and outputs)
        RULE(c->model.dropout_input == 0 && c->model.dropout_output == 0, "model.dropout_input",
             "model.dropout_input and model.dropout_output must be 0 with privacy.dp");
    }
#undef RULE
}

// ---------------------------------------------------------------- load

static void set_defaults(Config *cfg, LoadState *st) {
    memset(cfg, 0, sizeof *cfg);
    for (int i = 0; i < N_KEYS; i++) {
        Value v;
        memset(&v, 0, sizeof v);
        if (SCHEMA[i].type == K_LIST) {
            v.is_list = 1; // every list default is []
        } else {
            v.scalar = SCHEMA[i].def;
        }
        if (assign(cfg, st, i, &v, "schema default") != 0)
            fatal("internal: bad default for %s", SCHEMA[i].key);
    }
}

int config_load(Config *cfg, const char *path, int n_overrides, char **overrides) {
    LoadState *st = xcalloc(1, sizeof *st);
    set_defaults(cfg, st);
    if (path) load_file(cfg, st, path);
    for (int i = 0; i < n_overrides; i++) apply_override(cfg, st, overrides[i], "--set");
    if (st->n_errors == 0) check_rules(cfg, st);
    if (st->n_errors == 0 && !cfg->run.dir[0]) {
        // Derived default: runs/<experiment file name without .yaml>.
        char stem[256] = "default";
        if (path) {
            const char *base = strrchr(path, '/');
            base = base ? base + 1 : path;
            snprintf(stem, sizeof stem, "%s", base);
            char *dot = strrchr(stem, '.');
            if (dot && dot != stem) *dot = 0;
        }
        snprintf(cfg->run.dir, sizeof cfg->run.dir, "runs/%s", stem);
    }
    if (st->n_errors == 0 && !cfg->data.shard_dir[0]) {
        if (strlen(cfg->run.dir) + 8 >= sizeof cfg->data.shard_dir)
            report(st, origin_of(st, "run.dir"), "run.dir",
                   "%zu characters is too long to derive data.shard_dir (at most %zu; or set data.shard_dir)",
                   strlen(cfg->run.dir), sizeof cfg->data.shard_dir - 9);
        else
            snprintf(cfg->data.shard_dir, sizeof cfg->data.shard_dir, "%s/shards", cfg->run.dir);
    }
    if (st->n_errors == 0 && !cfg->synth.out_dir[0]) {
        if (strlen(cfg->run.dir) + 8 >= sizeof cfg->synth.out_dir)
            report(st, origin_of(st, "run.dir"), "run.dir",
                   "%zu characters is too long to derive synth.out_dir (at most %zu; or set synth.out_dir)",
                   strlen(cfg->run.dir), sizeof cfg->data.shard_dir - 9);
        else
            snprintf(cfg->synth.out_dir, sizeof cfg->synth.out_dir, "%s/synth", cfg->run.dir);
    }
    int rc = st->n_errors ? -1 : 0;
    free(st);
    return rc;
}

int config_check_override(const char *override_text, const char *origin) {
    Config *cfg = xmalloc(sizeof *cfg);
    LoadState *st = xcalloc(1, sizeof *st);
    set_defaults(cfg, st);
    apply_override(cfg, st, override_text, origin);
    int rc = st->n_errors ? -1 : 0;
    free(st);
    free(cfg);
    return rc;
}

// ---------------------------------------------------------------- text

static void quote_into(StrBuf *sb, const char *s) {
    sb_append(sb, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') sb_append(sb, "\\", 1);
        if ((unsigned char)*p < 0x20)
            sb_appendf(sb, "\\x%02x", (unsigned char)*p);
        else
            sb_append(sb, p, 1);
    }
    sb_append(sb, "\"", 1);
}

static void value_text(const Config *cfg, int i, StrBuf *sb) {
    const KeySpec *k = &SCHEMA[i];
    const char *src = (const char *)cfg + k->offset;
    char num[64];
    switch (k->type) {
    case K_INT:
        sb_appendf(sb, "%lld", (long long)*(const int64_t *)src);
        break;
    case K_FLOAT:
        fmt_number(num, sizeof num, *(const double *)src), sb_appendf(sb, "%s", num);
        break;
    case K_BOOL:
        sb_appendf(sb, "%s", *(const int *)src ? "true" : "false");
        break;
    case K_ENUM:
        sb_appendf(sb, "%s", src);
        break;
    case K_STR:
        quote_into(sb, src);
        break;
    case K_LIST: {
        const StrList *l = (const StrList *)src;
        sb_append(sb, "[", 1);
        for (int j = 0; j < l->n; j++) {
            if (j) sb_append(sb, ", ", 2);
            quote_into(sb, l->item[j]);
        }
        sb_append(sb, "]", 1);
        break;
    }
    }
}

char *config_to_yaml(const Config *cfg, int with_docs) {
    StrBuf sb = {0};
    sb_appendf(&sb, "%s", RESOLVED_MARK);
    char section[64] = "";
    for (int i = 0; i < N_KEYS; i++) {
        const char *dot = strchr(SCHEMA[i].key, '.');
        size_t slen = (size_t)(dot - SCHEMA[i].key);
        if (strlen(section) != slen || strncmp(section, SCHEMA[i].key, slen) != 0) {
            snprintf(section, sizeof section, "%.*s", (int)slen, SCHEMA[i].key);
            sb_appendf(&sb, "%s:\n", section);
        }
        sb_appendf(&sb, "  %s: ", dot + 1);
        value_text(cfg, i, &sb);
        if (with_docs) sb_appendf(&sb, "  # %s", SCHEMA[i].doc);
        sb_append(&sb, "\n", 1);
    }
    return sb.data;
}

int config_is_location_key(const char *key) {
    return strcmp(key, "run.dir") == 0 || strcmp(key, "data.shard_dir") == 0 ||
           strcmp(key, "synth.out_dir") == 0;
}

// The experiment's identity: every key but where its files are, so a run directory that is
// copied or moved (with its shards and synthetic data) is the same experiment.
uint64_t config_hash(const Config *cfg) {
    StrBuf sb = {0};
    for (int i = 0; i < N_KEYS; i++) {
        if (config_is_location_key(SCHEMA[i].key)) continue;
        sb_appendf(&sb, "%s: ", SCHEMA[i].key);
        value_text(cfg, i, &sb);
        sb_append(&sb, "\n", 1);
    }
    uint64_t h = hash_bytes(sb.data, sb.len, 0);
    sb_free(&sb);
    return h;
}

int config_key_text(const Config *cfg, const char *key, StrBuf *out) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(SCHEMA[i].key, key) == 0) {
            value_text(cfg, i, out);
            return 0;
        }
    return -1;
}

void config_diff(const Config *a, const Config *b, char *out, size_t cap) {
    out[0] = 0;
    size_t used = 0;
    for (int i = 0; i < N_KEYS; i++) {
        if (config_is_location_key(SCHEMA[i].key)) continue;
        StrBuf x = {0}, y = {0};
        value_text(a, i, &x);
        value_text(b, i, &y);
        if (strcmp(x.data, y.data) != 0) {
            int n = snprintf(out + used, cap - used, "%s%s (%s -> %s)", used ? ", " : "",
                             SCHEMA[i].key, x.data, y.data);
            if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
        }
        sb_free(&x);
        sb_free(&y);
    }
}

void config_print_schema(FILE *out) {
    fprintf(out, "| key | type | default | allowed | doc |\n|---|---|---|---|---|\n");
    for (int i = 0; i < N_KEYS; i++) {
        const KeySpec *k = &SCHEMA[i];
        char allowed[128] = "";
        const char *tn = "string";
        switch (k->type) {
        case K_INT:
            tn = "int", range_text(k, allowed, sizeof allowed);
            break;
        case K_FLOAT:
            tn = "float", range_text(k, allowed, sizeof allowed);
            break;
        case K_BOOL:
            tn = "bool", snprintf(allowed, sizeof allowed, "true, false");
            break;
        case K_ENUM:
            tn = "choice", snprintf(allowed, sizeof allowed, "%s", k->choices);
            break;
        case K_LIST:
            tn = "list";
            break;
        case K_STR:
            break;
        }
        for (char *p = allowed; *p; p++)
            if (*p == '|') *p = '/';
        fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", k->key, tn,
                k->type == K_LIST ? "[]" : k->def, allowed, k->doc);
    }
}

double config_time_unit_seconds(const Config *cfg) {
    const char *u = cfg->data.time_unit;
    if (strcmp(u, "s") == 0) return 1;
    if (strcmp(u, "ms") == 0) return 1e-3;
    if (strcmp(u, "us") == 0) return 1e-6;
    if (strcmp(u, "min") == 0) return 60;
    if (strcmp(u, "h") == 0) return 3600;
    if (strcmp(u, "d") == 0) return 86400;
    return 0;
}
