// explain_change.h: the change-point evidence behind a flagged user, for `trainer explain
// --target change`. For every user whose score is above the calibrated threshold (as `score`
// flags) with the change point as its strongest channel (reason "<part>-change"), it gives
// where the change happened, the segment whose fresh state (started at event t, as for a new
// user) explains the user better than the carried state, and how much each event and part
// added to that segment's ratio: min(carried - fresh surprisal, CP_CLIP_NATS) nats per event
// of its window (from t + burn-in to the peak's end) and part (surprise.h). The additions ARE
// the statistic, so they sum to the ratio exactly (completeness error at rounding level).
//
// Rows in explain's formats (run/explain_summary.h), one block per such user:
//   events.csv   user_hash,target_index (the window's last event),offset (1 = that event,
//                the window's first event has the largest),group (action, timing,
//                engagement),attribution (nats)
//   targets.csv  target "change:T" (T: the fresh state's first event), predicted = the reason,
//                p_predicted = the user's score, f_input = the ratio, f_baseline 0 (a segment
//                that adds nothing), attribution_sum, completeness_error, steps 0; no deletion
//                or sanity check.
#pragma once
#include "attribution.h"
#include "irregular.h"

// Explain's feature groups for these rows (the parts), for explain_write_summary.
void explain_change_groups(FeatureGroups *fg);
// Collective: one pass (irregular_pass) over the scorer's users; rows for this rank's users
// into events and targets (user_rows_open'ed); *n gets this rank's users explained.
void explain_change_pass(Scorer *sc, const ScoreSpec *spec, const Calibration *cal,
                         const SurpriseParams *sp, UserRows *events, UserRows *targets,
                         long long *n);
