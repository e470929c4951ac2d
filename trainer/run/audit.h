// audit.h: `trainer audit privacy EXP.yaml --checkpoint RUNDIR [--reference RUNDIR]
// [--output F.json]`: how well can an attacker tell the users a model was trained on from
// users it never saw (membership inference)?
//
// Members are the training split's users, non-members the held-out users (validation and
// test). Each user's score comes from one pass over users (run/scoring.h): the mean next-
// action NLL of the user's events. Two attacks:
//   loss threshold (Yeom et al. 2018):  score = -NLL_target(u)
//   likelihood ratio, per user (offline LiRA-style calibration): score = NLL_ref(u) - NLL_target(u),
//     NLL_ref under a reference model (--reference) trained without any of these users, so
//     a user who is simply hard to predict is not mistaken for a non-member.
// Reported per attack: AUC (Mann-Whitney, ties count one half) and the true-positive rate at
// a false-positive rate of at most 0.1% (LiRA's figure), next to the checkpoint's epsilon.
#pragma once
#include <stddef.h>

// AUC of scores: P(member score > non-member score) + P(tie) / 2.
double mia_auc(const double *member, size_t n_member, const double *non, size_t n_non);
// The share of members scoring above the threshold that at most fpr of non-members exceed.
double mia_tpr_at_fpr(const double *member, size_t n_member, const double *non, size_t n_non,
                      double fpr);

int audit_privacy_main(const char *exp, int n_overrides, char **overrides, const char *checkpoint,
                       const char *reference, const char *output, int *argc, char ***argv);
