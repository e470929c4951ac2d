// groupstat.c: see groupstat.h.
#include "groupstat.h"

#include <math.h>

void group_guard_init(GroupGuard *g, int64_t min_users) {
    g->min_users = min_users > 1 ? min_users : 1;
    g->groups = g->suppressed = 0;
}

static int small(const GroupGuard *g, int64_t n) {
    return n < g->min_users;
}

int group_shown(GroupGuard *g, int64_t n_users) {
    g->groups++;
    if (!small(g, n_users)) return 1;
    g->suppressed++;
    return 0;
}

const char *group_value(const GroupGuard *g, int64_t n_users, double value, const char *fmt,
                        char *buf, size_t cap) {
    if (small(g, n_users))
        snprintf(buf, cap, "suppressed (< %lld users)", (long long)g->min_users);
    else
        snprintf(buf, cap, fmt, value);
    return buf;
}

const char *group_count(const GroupGuard *g, int64_t n_users, char *buf, size_t cap) {
    if (small(g, n_users))
        snprintf(buf, cap, "<%lld", (long long)g->min_users);
    else
        snprintf(buf, cap, "%lld", (long long)n_users);
    return buf;
}

const char *group_json(const GroupGuard *g, int64_t n_users, double value, char *buf, size_t cap) {
    if (small(g, n_users) || !isfinite(value))
        snprintf(buf, cap, "null");
    else
        snprintf(buf, cap, "%.9g", value);
    return buf;
}

void group_report(const GroupGuard *g, FILE *out, const char *what) {
    if (g->suppressed == 0) return;
    fprintf(out,
            "privacy: %lld of %lld %s over fewer than %lld users suppressed "
            "(privacy.min_group_size)\n",
            (long long)g->suppressed, (long long)g->groups, what, (long long)g->min_users);
}
