// checkpoint.h: protobuf checkpoints that are never lost or half-written.
//
// File layout (format version 1): the 8 bytes "LSTMCKPT", then records, each
//   u32 length | u64 hash of the message bytes | message bytes (protobuf)
// The first record is a CheckpointHeader, then TensorChunk records (no message exceeds
// 64 MiB, far from protobuf's 2 GiB limit), then a CheckpointFooter with the record count
// and a hash over all record hashes. A file without its footer is incomplete.
//
// Rank 0 writes step-NNNNNNNN.ckpt into the run's checkpoints/ directory through a temp file:
// every write checked, fsync, rename, fsync of the directory; then deletes checkpoints
// beyond the newest `keep` (never the one just written). A model with non-finite values is
// never written. Writing can run on a background thread: the step only pays for copying
// the state into the writer's buffers. Only checkpoint.c (and tbevents.c, for TensorBoard) include
// the protobuf-c code.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "evaluate.h"
#include "model.h"

#define CKPT_FORMAT_VERSION 1

// The privacy record of a checkpoint (proto Privacy).
typedef struct {
    int dp;
    double epsilon, delta, sigma, q, clip;
    char accountant[16];
    uint64_t exclusion_digest, excluded_users;
} CkptPrivacy;

// The best validation so far (proto BestRecord).
typedef struct {
    int has_best;
    int64_t best_step;
    double best_value; // of metric at best_step
    char metric[16];   // eval.metric
    int64_t evals_since_best;
    int is_best; // this checkpoint holds the model of best_step
} CkptBest;

// Everything a run needs to continue exactly where it stopped.
typedef struct {
    int64_t step;          // optimizer steps completed
    int64_t skipped_steps; // steps skipped for non-finite gradients
    double events_seen;    // targets trained on (all ranks)
    double epoch;          // mean epochs over the train shards (for reports)
    uint64_t seed;         // run.seed: with the counters below it fixes every random draw
    const char *config_text;
    uint64_t config_hash;
    uint64_t data_hash; // content of the prepared data (see dataset_content_hash)
    int world_size;     // metadata only: resuming with another number of ranks works
    ModelShape shape;
    size_t n_params;
    const float *params, *adam_m, *adam_v;
    // Data cursor, for all virtual shards and all lanes of the global batch.
    int n_vshards, n_lanes, lanes_per_shard;
    const ShardCursor *shards;
    const LaneCursor *lanes;
    const float *lane_h, *lane_c; // (L, n_lanes, H)
    int has_metrics;
    Metrics last_valid;
    CkptPrivacy privacy;
    CkptBest best;
    const DataMeta *meta; // vocabularies and statistics written with it (NULL: none)
    size_t n_boost;              // optimizer spans at lr_boost times the lr (optim.h)
    const uint64_t *boost_spans; // 2 * n_boost
    double lr_boost;
} CheckpointData;

// A checkpoint read back: owns its buffers.
typedef struct {
    CheckpointData d;
    char *config_text;
    float *params, *adam_m, *adam_v, *lane_h, *lane_c;
    uint64_t *boost_spans;
    ShardCursor *shards;
    LaneCursor *lanes;
    int has_meta;  // the checkpoint carries its vocabularies and statistics:
    DataMeta meta; // vocab_size, vocab, column, n_cat, n_num, num_*, loggap_*, gap_offset
} LoadedCheckpoint;

typedef struct CkptWriter CkptWriter;

// keep: checkpoints to keep; async: write on a background thread. With keep_best, a
// checkpoint written with best.is_best is kept apart from the newest `keep` until a better
// one is written, and dir/best.json names it ({"step","metric","value","file"}), written
// atomically after the checkpoint itself, so it always names a whole file.
CkptWriter *ckpt_writer_create(const char *dir, int keep, int async, int keep_best);
// After a resume: the best named by the checkpoint resumed from (kept from now on; best.json
// rewritten when it names another step).
void ckpt_writer_set_best(CkptWriter *w, const CkptBest *best);
// Copies the state (the caller may change it right after) and writes step-NNNNNNNN.ckpt.
// Waits first if the previous write is still running. Returns the seconds the caller was
// stalled (copying plus waiting).
double ckpt_writer_submit(CkptWriter *w, const CheckpointData *d);
// Waits for the write in flight. Returns 0, or -1 if the last write failed (the reason was
// printed when it failed; earlier checkpoints are intact). A failed write followed by a good
// one returns 0: training goes on after a failed periodic checkpoint.
int ckpt_writer_wait(CkptWriter *w);
void ckpt_writer_free(CkptWriter *w);
// Seconds the last completed write took on its own (serialise, write, fsync, rename).
double ckpt_writer_last_write_seconds(const CkptWriter *w);
const char *ckpt_writer_last_path(const CkptWriter *w);

// Synchronous write of one checkpoint file (what the writer thread runs).
int checkpoint_write_file(const char *path, const CheckpointData *d, char *err, size_t errlen);

// Parses and verifies a whole checkpoint held in memory. 0, or -1 with the reason.
int checkpoint_parse(const unsigned char *buf, size_t size, LoadedCheckpoint *out, char *err,
                     size_t errlen);
int checkpoint_read_file(const char *path, LoadedCheckpoint *out, char *err, size_t errlen);
void checkpoint_free(LoadedCheckpoint *c);

// The newest checkpoint in dir that verifies; those that do not are reported. Returns 0
// with its path and its bytes (*bytes, *size; the caller frees them), or -1 when none
// verifies (none_found = 1 if the directory has none at all).
int checkpoint_find_latest(const char *dir, char *path, size_t cap, int *none_found,
                           unsigned char **bytes, size_t *size);
// Resolves a --checkpoint argument: a file; a run directory: its best checkpoint (best.json)
// when that verifies, else its newest valid one; RUNDIR:latest: the newest valid one. A
// directory's choice is said on stderr.
// Returns 0 with the path and the file's bytes (caller frees), or -1 with the reason in err.
int checkpoint_resolve(const char *arg, char *path, size_t cap, unsigned char **bytes, size_t *size,
                       char *err, size_t errlen);

// Human report for `trainer checkpoint inspect`.
void checkpoint_print(const LoadedCheckpoint *c, const char *path);

// dir/best.json: 0 with its step (and value, metric when not NULL), or -1 when absent or bad.
int checkpoint_read_best(const char *dir, long long *step, double *value, char *metric,
                         size_t metric_cap);

// The newest step-N.ckpt in dir (by name; not validated): 0 and *step, or -1 when none.
int checkpoint_newest_step(const char *dir, long long *step);
