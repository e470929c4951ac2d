// groupstat.h: suppression of aggregates over small groups (privacy.min_group_size).
//
// Any per-segment or per-group statistic that an output or report shows must go through a
// GroupGuard: a statistic over fewer than min_group_size distinct users is not shown (text:
// "suppressed (< N users)"; JSON: null, with the group's "suppressed": true), and the guard
// counts what it held back so the report can say so. The user count itself of a small group
// is suppressed too (it would tell that a rare group exists and how rare).
//
//   GroupGuard g;
//   group_guard_init(&g, cfg->privacy.min_group_size);
//   char buf[64];
//   printf("segment %d: %s users, mean score %s\n", k, group_count(&g, n, buf1, sizeof buf1),
//          group_value(&g, n, mean, "%.4f", buf2, sizeof buf2));
//   group_report(&g, stdout, "segments");
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    int64_t min_users;
    int64_t groups, suppressed; // groups asked about, groups held back
} GroupGuard;

void group_guard_init(GroupGuard *g, int64_t min_users);
// 1 if a statistic over n_users users may be shown; counts the group once per call.
int group_shown(GroupGuard *g, int64_t n_users);
// The value formatted with fmt (one double), or the suppression text. Does not count.
const char *group_value(const GroupGuard *g, int64_t n_users, double value, const char *fmt,
                        char *buf, size_t cap);
// The user count, or "<N" when suppressed. Does not count.
const char *group_count(const GroupGuard *g, int64_t n_users, char *buf, size_t cap);
// JSON number or null. Does not count.
const char *group_json(const GroupGuard *g, int64_t n_users, double value, char *buf, size_t cap);
// "privacy: 3 of 12 <what> over fewer than 10 users suppressed (privacy.min_group_size)";
// nothing when none was suppressed.
void group_report(const GroupGuard *g, FILE *out, const char *what);
