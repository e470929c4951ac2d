// synth_truth.h: truth.csv, what the synthetic generator knows about each user's segment.
//
// `data synth` writes synth.out_dir/truth.csv next to the event CSVs, one row per user of
// every split, in generation order:
//   user,segment,bayes_segment,irregular,irregular_start
//   u0000000,lurker,lurker,,
//   u0000007,creator,creator,bot,31
// user is the raw synthetic id (as in the event CSVs), segment the segment the user was
// drawn from, bayes_segment the MAP segment of the generator's own posterior after the
// user's whole history: the best any method can recover from the events. Commands that
// measure segmentation (`trainer segment`) read it back keyed by the experiment's user hash,
// so no raw id leaves this module.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "userkey.h"
#include "util.h"

#define SYNTH_TRUTH_FILE    "truth.csv"
#define SYNTH_TRUTH_COLUMNS "user,segment,bayes_segment" // then irregular,irregular_start
#define SYNTH_TRUTH_MAX_SEG 16

// ---------------------------------------------------------------- writing (the generator)

typedef struct {
    char path[1100];
    StrBuf text;
    long long users, bayes_correct;
} SynthTruthOut;

void synth_truth_open(SynthTruthOut *t, const char *dir);
// irregular: "" for a normal user, else the planted kind (synth_irregular.h) starting at
// event index irregular_start.
void synth_truth_row(SynthTruthOut *t, const char *user_id, const char *segment,
                     const char *bayes_segment, const char *irregular, long long irregular_start);
// Writes the file atomically (fatal on error); returns the share of users whose
// bayes_segment is their segment (the accuracy best.txt records).
double synth_truth_finish(SynthTruthOut *t);

// ---------------------------------------------------------------- reading (the measurers)

typedef struct {
    uint64_t user_hash;
    int16_t segment, bayes_segment; // indices into names
} TruthUser;

typedef struct {
    int64_t n_users;
    TruthUser *users; // sorted by user_hash
    int n_segments;
    char names[SYNTH_TRUTH_MAX_SEG][32];
} SynthTruth;

// Reads a truth file, hashing each id with key as userkey_split_hash(., split) does (the
// hashes of the shards or file being measured). 0, or -1 with "path:line: reason" in err.
int synth_truth_read(const char *path, const UserKey *key, int split, SynthTruth *out, char *err,
                     size_t errlen);
// The row of a user hash, or NULL.
const TruthUser *synth_truth_find(const SynthTruth *t, uint64_t user_hash);
void synth_truth_free(SynthTruth *t);
