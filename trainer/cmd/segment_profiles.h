// segment_profiles.h: what `trainer segment` says about each segment, from the handmade
// features of its users (whatever features the clustering used): size and share, events per
// user, action mix, active hours and days, typical gap, engagement, and the features that
// most distinguish it from the whole population (the segment's mean in population standard
// deviations). Written as profiles.json and a readable profiles.md.
#pragma once
#include <stdint.h>

#include "user_features.h"

typedef struct {
    // The run, for the headers.
    const char *features, *embedding, *what, *ckpt_path, *k_rule;
    int64_t step, n_users;
    int k;
    const char *time_unit;
    // Truth (synthetic data): ARIs and the segment x true-segment table; has_truth = 0: none.
    int has_truth, n_true;
    const char (*true_names)[32];
    const int64_t *truth_table; // (k, n_true)
    double ari, ari_other, ari_bayes;
    const char *other_features;
    int64_t truth_users;
} ProfileRun;

typedef struct {
    const HandmadeSpec *hs;
    int k, dim;
    int64_t *sizes;     // (k) users
    double *events;     // (k) events
    double *user_mean;  // (k, dim) mean over the segment's users
    double *event_mean; // (k, dim) mean weighted by the users' event counts
    const double *pop_mean, *pop_std; // (dim) over all users
} Profiles;

// Aggregates (collective): hand (n, dim) raw handmade features, n_events (n), labels (n).
void profiles_compute(Profiles *p, const HandmadeSpec *hs, const float *hand,
                      const double *n_events, const int32_t *labels, int64_t n, int k,
                      const double *pop_mean, const double *pop_std);
void profiles_free(Profiles *p);
// Writes DIR/profiles.json and DIR/profiles.md (atomically; fatal on I/O errors).
void profiles_write(const Profiles *p, const ProfileRun *run, const char *dir);
