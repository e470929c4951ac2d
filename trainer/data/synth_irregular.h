// synth_irregular.h: the synthetic users the generator makes irregular on purpose, with their
// labels, so that `trainer score` can be measured against a known truth.
//
// With synth.irregular_frac = q, each user is, independently with probability q (a stream of
// its own, so the normal users are the same bytes for every q), made irregular from an event
// index `start` drawn uniformly in [n/4, n/2] of its n events, with one kind drawn uniformly
// from synth.irregular_kinds (empty: all four):
//   bot       from start to the end: one repeated action and content, near-periodic gaps
//             (period P uniform in [30, 300] s, each gap P * exp(0.03 z))
//   burst     L = 15..30 events from start: gaps log-normal around 5 s (sigma 0.5), actions,
//             content and engagement as the user's own; then the user goes on as before
//   takeover  from start to the end: the behaviour of another segment (TAKEOVER_TO below)
//   spree     L = 15..30 events from start: likes and shares (even odds), gaps log-normal
//             around 20 s (sigma 0.7), engagement 12 times the user's usual (log + 2.5)
// The user's event count stays n. Irregular users are left out of the best achievable
// losses (best.txt, synth_score_csv) and listed in truth.csv:
//   user,segment,bayes_segment,irregular,irregular_start (irregular: empty or the kind; start: the index
//                                               of the first irregular event, empty if none)
#pragma once
#include <stdint.h>

#include "config.h"
#include "hash.h"
#include "util.h"

enum { IRR_NONE, IRR_BOT, IRR_BURST, IRR_TAKEOVER, IRR_SPREE, IRR_N_KINDS };
extern const char *const IRREGULAR_KIND_NAMES[IRR_N_KINDS]; // "", "bot", "burst", ...

typedef struct {
    int kind;             // IRR_NONE: a normal user
    long long start, end; // events [start, end) are irregular
    int action, content;  // bot: what it repeats
    double period_s;      // bot: its period
    Rng rng;              // draws of the irregular part (its own stream)
} IrregularPlan;

// What event i does differently from the user's own process (-1 / 0: nothing).
typedef struct {
    int segment, action, content; // -1: drawn as usual (segment: the user's own)
    double gap_s;                 // > 0: this gap instead of the usual draw
    double log_eng_shift;         // added to the log of the drawn engagement
} IrregularStep;

// The plan of user u (n_events events) under cfg->synth.*; deterministic in (seed, u).
void synth_irregular_plan(const Config *cfg, uint64_t u, long long n_events, IrregularPlan *p);
// Fills *st for event i (1 <= i < n) of a user of segment `segment`; returns 1 if event i
// is irregular, else 0 (and *st says "nothing").
int synth_irregular_step(IrregularPlan *p, long long i, int segment, IrregularStep *st);

// The raw ids truth.csv (next to csv_path) marks irregular, as sorted 64-bit hashes of the id
// (not the user key's hash: this is the generator's own bookkeeping). Returns the count (0 if
// there is no truth.csv); *out is malloc'd (NULL when 0).
long long truth_irregular_ids(const char *csv_path, uint64_t **out);
int truth_ids_contain(const uint64_t *ids, long long n, const char *user_id, size_t len);
