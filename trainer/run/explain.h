// explain.h: the pass over users behind `trainer explain` and `predict --explain`: which
// predictions are explained, their windows captured during the scoring pass, and the
// explanations computed (run/attribution.h) in chunks as the windows complete.
//
// The predictions explained are, per selected user with n events, those made after events
// n-1, n-2, ..., n-per_user (the first: the next, unknown event; target_index = the index of
// the event predicted, so n for it). Each window holds the last `window` events up to the
// one after which the prediction is made; events before it act through the state, which
// the scoring pass carries exactly as for eval and predict (captured at the slot of the
// event before the window). --users N keeps the N users with the smallest keyed hashes
// (the same users on any number of ranks). Done callbacks see each explained target once,
// on the rank that holds its user.
#pragma once
#include <stdint.h>

#include "attribution.h"
#include "scoring.h"

typedef struct {
    AttrKind kind;
    const char *action_name; // ATTR_ACTION: the action (resolved against the vocabulary)
    int steps;               // m (default 32)
    int max_steps;           // doubling stops here (default 16 m)
    int window;              // events per window (default: train.window)
    int per_user;            // predictions per user (default 1)
    long long users;         // 0: every user of the split / file
    int deletion, sanity;    // deletion check; attributions of a random-init model as well
} ExplainOptions;

// Parses --target (NULL: the predicted action): "action:NAME", "gap"; exits 2 naming the
// value otherwise (`explain --target change` is handled by the command before this).
void explain_parse_target(const char *command, const char *text, ExplainOptions *o);
// Resolves an action target's name against the vocabulary: 0, or -1 after printing (rank 0)
// the name and the valid ones.
int explain_resolve_target(const ExplainOptions *o, const DataMeta *meta, int rank, int *action);

typedef struct {
    AttrItem item;
    uint64_t user_hash;
    const Shard *shard;     // the user's events stay readable for the whole pass
    const ShardUser *user;
    int last;               // index of the window's last event (the prediction follows it)
    float *y;               // (O) the model's outputs there, from the scoring pass
    AttrResult random_res;  // with sanity: the random-init model's attributions
    double sanity_rho;      // Spearman of |attributions|, trained vs random init (NAN: off)
} ExplainTarget;

typedef struct Explainer Explainer;
typedef void (*ExplainDone)(void *ctx, const Explainer *ex, const ExplainTarget *t);

struct Explainer {
    Scorer *sc;
    ExplainOptions opt;
    FeatureGroups fg;
    int action; // resolved ATTR_ACTION class
    Attributor *at, *at_random;
    uint64_t threshold; // users with hash <= threshold are explained
    struct Pending *pend; // (rank-local users of the pass)
    int64_t n_users;
    ExplainTarget **ready;
    int n_ready, max_items;
    ExplainDone done;
    void *ctx;
    double seconds;        // spent explaining (this rank), wall clock
    double cpu_seconds;    // ... and CPU time of the explaining thread (shared machines)
    long long n_explained; // targets (this rank)
};

// Collective (the user selection). action: the resolved class of ATTR_ACTION.
Explainer *explainer_create(Scorer *sc, const ExplainOptions *o, int action, ExplainDone done,
                            void *ctx);
// The ScorerVisit of the pass (ctx = the Explainer); may be called from another visit.
void explainer_visit(void *ctx, Scorer *sc, const EvalStream *es, const BatchBuf *bb);
void explainer_finish(Explainer *ex); // explains what is left (after scorer_pass)
void explainer_free(Explainer *ex);

// The n strongest reasons (n <= 8) in words, e.g. "last event: view (41%)", "time of day:
// 22h (17%)": the (event, group) cells of largest |attribution|, as percentages of the sum
// of |attribution| over all cells, negative where the cell speaks against the prediction.
// Returns how many were written (fewer when fewer cells are non-zero).
#define EXPLAIN_REASON_LEN 176
int explain_reasons(const Explainer *ex, const ExplainTarget *t, int n_reasons,
                    char (*out)[EXPLAIN_REASON_LEN]);
// Describes the target ("log p(view)", "gap") into out.
void explain_target_name(const Explainer *ex, const ExplainTarget *t, char *out, size_t cap);
int explain_predicted(const Explainer *ex, const ExplainTarget *t); // top-1 action id (not <unk>)
