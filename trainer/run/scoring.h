// scoring.h: what every command that asks a trained model questions shares (eval, predict,
// and the passes over users built on them): the set-up (comm up, config resolved on every
// rank, data prepared, checkpoint read and checked against the experiment and its data), ONE
// pass over users (each user's whole history fed through the model, windows carrying the
// lane state), and per-user output rows written by every rank and joined by rank 0.
//
// A pass deals this rank's users to eval.batch_size lanes (run/batch.h's EvalStream); after
// each window's forward, visit() sees the window's batch (bb->slot_user / slot_pos name the
// user and event of every (t, b) slot; -1: padding) and the model's activations (act.y: head
// outputs, act.hout[L-1]: top-layer states), so a command reads what it needs in place.
#pragma once
#include <stdio.h>

#include "batch.h"
#include "checkpoint.h"
#include "config.h"
#include "dataset.h"
#include "model.h"

typedef struct {
    const char *command; // "eval", for messages
    const char *exp_path;
    int n_overrides;
    char **overrides;
    const char *checkpoint; // FILE|RUNDIR (required)
    const char *input;      // a CSV in the experiment's format instead of a split, or NULL
    int split;              // the split to read (--input: the split its users stand for)
    int min_events;         // users with fewer events are left out of --input
    // A checkpoint that cannot be used (unreadable, corrupt, of another model or other
    // data): 0: fatal (exit 1); 1: every rank returns EXIT_USAGE from scorer_open, after
    // one message naming the checkpoint and the experiment.
    int bad_checkpoint_is_usage;
    // 1: the passes read only loss sums (no visitor reads act.y) unless eval.next_k > 0 (eval):
    // a large vocabulary then gets the tiled head (model.h, model_head_should_tile).
    int sums_only;
} ScoreRequest;

typedef struct {
    Config cfg;
    Dataset ds;
    LoadedCheckpoint ck;
    char ckpt_path[CFG_PATH_LEN + 64];
    Model *model;
    LossConfig lc;
    int rank, size, lanes, split;
    long long input_rows, input_bad; // --input only
    long long input_unseen[1 + CFG_LIST_MAX]; // --input: rows per vocabulary scored as <unk>
} Scorer;

// Brings comm up (argc/argv for MPI) and opens everything; returns EXIT_OK, or EXIT_USAGE
// after a config error (or a bad checkpoint, see above; comm is then finalised). Other
// errors are fatal.
int scorer_open(Scorer *sc, const ScoreRequest *req, int *argc, char ***argv);
void scorer_close(Scorer *sc); // frees everything and finalises comm
// EXIT_OK, or (one line on rank 0, then scorer_close) EXIT_USAGE when the checkpoint's time
// head is a mixture (model.time_mixture > 1), which `what` (a command) does not support.
int scorer_require_single_lognormal(Scorer *sc, const char *what);
// --input: "N rows with an action never seen in training, M with a content never seen
// (scored as <unk>)" or "every value seen in training", into out.
void scorer_unseen_text(const Scorer *sc, char *out, size_t cap);

// The user behind slot (t, b) = r of the current window (NULL for padding), with its shard.
const ShardUser *scorer_slot_user(const EvalStream *es, const BatchBuf *bb, int r,
                                  const Shard **shard);

typedef void (*ScorerVisit)(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb);
// One forward over every user of this rank (include_last: also feed each user's last event,
// which has no target); adds loss sums to *sums when sums != NULL (local: the caller reduces);
// calls visit (when not NULL) after each window. Allocates its buffers once per pass.
void scorer_pass(Scorer *sc, int include_last, LossSums *sums, ScorerVisit visit, void *ctx);
// The same over another split of the experiment's prepared data (calibration on validation
// users, also when the pass proper reads --input): scorer_open_split loads this rank's share.
void scorer_open_split(Scorer *sc, Dataset *ds, int split);
void scorer_pass_on(Scorer *sc, const Dataset *ds, int split, int include_last, LossSums *sums,
                    ScorerVisit visit, void *ctx);

// Per-user CSV rows, written by every rank to FINAL.partR, joined by rank 0 into FINAL
// (atomically) in the order of their first field, so the file is the same on any number of
// ranks. Rows must start with the fixed-width user hash; a user may have several rows, all
// written by the one rank that holds the user, which keep the order they were written in.
typedef struct {
    char final[CFG_PATH_LEN + 32], part[CFG_PATH_LEN + 48];
    FILE *f;
    int rank, size;
} UserRows;

void user_rows_open(UserRows *ur, const char *final, int rank, int size);
// Closes this rank's part; rank 0 then writes header + every rank's rows sorted into FINAL and
// returns the number of rows (collective: every rank calls it; others return 0).
long long user_rows_join(UserRows *ur, const char *header);
