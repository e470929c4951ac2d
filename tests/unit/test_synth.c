// test_synth.c: the synthetic generator writes well-formed, deterministic files and a report
// of best achievable losses that can be recomputed from the files alone.
//
// Checks: files and header; rows grouped by user with strictly increasing times; known
// action/content values; split sizes; the counts in the report; byte-identical output for
// the same config (and different output for another seed); best.txt round trip and
// rejection of missing or malformed reports; plausible best losses; the Bayes predictor
// beating the segment-unknown prior mixture; re-scoring the CSVs giving the same numbers.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "synth.h"
#include "util.h"

#include "check.h"


static const char *const SPLIT_FILES[3] = {"train.csv", "valid.csv", "test.csv"};
static const char *const ACTIONS[] = {"post", "like", "comment", "share", "view", "follow"};
static const char *const CONTENTS[] = {"text", "image", "video", "link"};

static void generate(const char *out_dir, int64_t seed, int n_users, SynthReport *rep) {
    char users[64], dir[600], seed_kv[64];
    snprintf(users, sizeof users, "synth.users=%d", n_users);
    snprintf(dir, sizeof dir, "synth.out_dir=%s", out_dir);
    snprintf(seed_kv, sizeof seed_kv, "synth.seed=%lld", (long long)seed);
    char *overrides[] = {users, dir, seed_kv, "synth.min_events=20", "synth.max_events=120"};
    Config cfg;
    if (config_load(&cfg, NULL, (int)ARRAY_LEN(overrides), overrides) != 0) {
        printf("  FAIL: config_load rejected the test overrides\n");
        exit(1);
    }
    synth_generate(&cfg, rep);
}

static int in_set(const char *s, size_t n, const char *const *set, int count) {
    for (int i = 0; i < count; i++)
        if (strlen(set[i]) == n && memcmp(s, set[i], n) == 0) return 1;
    return 0;
}

// "digits.ddd" -> thousandths, or -1.
static long long parse_milli(const char *s, size_t n) {
    if (n < 5 || s[n - 4] != '.') return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == n - 4) continue;
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

typedef struct {
    long long users, events;
} FileCounts;

// Checks one CSV row by row; fills the user and event counts. seen_users marks user ids
// (u<index>) so that a user appearing in two blocks or two files is caught.
static void check_csv(const char *path, FileCounts *counts, unsigned char *seen_users,
                      int n_users) {
    size_t size = 0;
    char *text = read_file(path, &size);
    CHECK(text != NULL, "%s: cannot read", path);
    if (!text) return;
    const char *header = SYNTH_COLUMNS "\n";
    CHECK(strncmp(text, header, strlen(header)) == 0, "%s: header is not %s", path, SYNTH_COLUMNS);
    CHECK(size > 0 && text[size - 1] == '\n', "%s: does not end in a newline", path);
    memset(counts, 0, sizeof *counts);
    int bad_rows = 0, bad_order = 0, bad_values = 0, bad_first = 0, bad_groups = 0;
    long long prev_user = -1, prev_time = 0;
    char *save = NULL;
    int line_no = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line_no++ == 0) continue; // header
        const char *field[5];
        size_t len[5];
        int nf = 0;
        const char *p = line;
        for (;;) {
            const char *comma = strchr(p, ',');
            if (nf < 5) {
                field[nf] = p;
                len[nf] = comma ? (size_t)(comma - p) : strlen(p);
            }
            nf++;
            if (!comma) break;
            p = comma + 1;
        }
        if (nf != 5 || len[0] < 2 || field[0][0] != 'u') {
            bad_rows++;
            continue;
        }
        long long user = atoll(field[0] + 1);
        long long t = parse_milli(field[1], len[1]), e = parse_milli(field[4], len[4]);
        if (t < 0 || e < 0 || !in_set(field[2], len[2], ACTIONS, 6) ||
            !in_set(field[3], len[3], CONTENTS, 4) || user < 0 || user >= n_users) {
            bad_values++;
            continue;
        }
        counts->events++;
        if (user != prev_user) {
            if (seen_users[user]) bad_groups++;
            seen_users[user] = 1;
            counts->users++;
            // First events fall in the week from 2026-01-05T00:00:00Z.
            if (t < 1767571200000LL || t >= 1767571200000LL + 7 * 86400000LL) bad_first++;
        } else if (t <= prev_time) {
            bad_order++;
        }
        prev_user = user;
        prev_time = t;
    }
    CHECK(bad_rows == 0, "%s: %d rows without 5 fields or a u<index> user id", path, bad_rows);
    CHECK(bad_values == 0, "%s: %d rows with an unknown action/content or bad number", path,
          bad_values);
    CHECK(bad_order == 0, "%s: %d rows whose time does not increase within the user", path,
          bad_order);
    CHECK(bad_groups == 0, "%s: %d users split over several blocks or files", path, bad_groups);
    CHECK(bad_first == 0, "%s: %d users whose first event is outside the first week", path,
          bad_first);
    free(text);
}

static int files_equal(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *ta = read_file(a, &na), *tb = read_file(b, &nb);
    int same = ta && tb && na == nb && memcmp(ta, tb, na) == 0;
    free(ta);
    free(tb);
    return same;
}

static int close_enough(double a, double b, double tol) {
    return fabs(a - b) <= tol * (1.0 + fabs(b));
}

static void write_text(const char *path, const char *text) {
    char err[256];
    if (write_file_atomic(path, text, strlen(text), err, sizeof err) != 0) {
        printf("  FAIL: %s\n", err);
        exit(1);
    }
}

static void remove_outputs(const char *dir) {
    const char *names[] = {"train.csv", "valid.csv", "test.csv", "best.txt"};
    char path[700];
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

int main(void) {
    char base[] = "/tmp/test_synth_XXXXXX";
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    char dir_a[600], dir_b[600], dir_c[600], path[700], path_b[700];
    snprintf(dir_a, sizeof dir_a, "%s/a", base);
    snprintf(dir_b, sizeof dir_b, "%s/b/nested", base); // mkdir_p makes the parents
    snprintf(dir_c, sizeof dir_c, "%s/c", base);
    const int n_users = 300;

    printf("generate %d users into %s\n", n_users, dir_a);
    SynthReport rep;
    generate(dir_a, 7, n_users, &rep);

    printf("check the files: header, rows, order, value sets, one block per user\n");
    unsigned char *seen = xcalloc((size_t)n_users, 1);
    FileCounts counts[3];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir_a, SPLIT_FILES[k]);
        check_csv(path, &counts[k], seen, n_users);
        snprintf(path, sizeof path, "%s/%s.tmp", dir_a, SPLIT_FILES[k]);
        CHECK(!path_exists(path), "%s left behind", path);
    }
    long long all_users = 0;
    for (int i = 0; i < n_users; i++) all_users += seen[i];
    CHECK(all_users == n_users, "%lld of %d users appear in the files", all_users, n_users);
    free(seen);

    printf("check the counts in the report and the split sizes\n");
    CHECK(counts[1].users == 30 && counts[2].users == 30,
          "valid/test have %lld/%lld users, want 30", counts[1].users, counts[2].users);
    for (int k = 0; k < 3; k++) {
        const SynthSplitStats *st = &rep.split[k];
        CHECK(st->n_users == counts[k].users && st->n_events == counts[k].events,
              "%s: report says %lld users %lld events, file has %lld and %lld", SPLIT_FILES[k],
              st->n_users, st->n_events, counts[k].users, counts[k].events);
        CHECK(st->n_targets == st->n_events - st->n_users, "%s: %lld targets, want %lld",
              SPLIT_FILES[k], st->n_targets, st->n_events - st->n_users);
        CHECK(counts[k].events >= 20 * counts[k].users && counts[k].events <= 120 * counts[k].users,
              "%s: %lld events for %lld users is outside [20, 120] per user", SPLIT_FILES[k],
              counts[k].events, counts[k].users);
    }

    printf("check determinism: the same config gives the same bytes\n");
    SynthReport rep_b;
    generate(dir_b, 7, n_users, &rep_b);
    const char *all_files[] = {"train.csv", "valid.csv", "test.csv", "best.txt"};
    for (size_t i = 0; i < ARRAY_LEN(all_files); i++) {
        snprintf(path, sizeof path, "%s/%s", dir_a, all_files[i]);
        snprintf(path_b, sizeof path_b, "%s/%s", dir_b, all_files[i]);
        CHECK(files_equal(path, path_b), "%s differs between two runs of one config", all_files[i]);
    }
    CHECK(memcmp(&rep, &rep_b, sizeof rep) == 0, "reports differ between two runs");

    printf("check another seed gives other data\n");
    SynthReport rep_c;
    generate(dir_c, 8, n_users, &rep_c);
    snprintf(path, sizeof path, "%s/train.csv", dir_a);
    snprintf(path_b, sizeof path_b, "%s/train.csv", dir_c);
    CHECK(!files_equal(path, path_b), "seeds 7 and 8 wrote the same train.csv");

    printf("check best.txt round trip\n");
    SynthReport back;
    CHECK(synth_read_report(dir_a, &back) == 0, "synth_read_report failed on %s", dir_a);
    for (int k = 0; k < 3; k++) {
        const SynthSplitStats *w = &rep.split[k], *g = &back.split[k];
        CHECK(close_enough(g->action_nll, w->action_nll, 1e-9) &&
                  close_enough(g->time_nll, w->time_nll, 1e-9) &&
                  fabs(g->action_acc - w->action_acc) <= 1e-6,
              "split %d: read %.10f %.10f %.6f, wrote %.10f %.10f %.6f", k, g->action_nll,
              g->time_nll, g->action_acc, w->action_nll, w->time_nll, w->action_acc);
        CHECK(g->n_targets == w->n_targets && g->n_users == w->n_users &&
                  g->n_events == w->n_events,
              "split %d: counts do not round-trip", k);
    }

    printf("check missing and malformed reports are refused\n");
    snprintf(path, sizeof path, "%s/no_such_dir", base);
    CHECK(synth_read_report(path, &back) == -1, "a missing best.txt was accepted");
    snprintf(path, sizeof path, "%s/best.txt", dir_c);
    const char *line = "split train action_nll 1.0 time_nll 7.0 action_acc 0.5 targets 10 "
                       "users 1 events 11\n";
    write_text(path, line); // valid and test missing
    CHECK(synth_read_report(dir_c, &back) == -1, "a best.txt with one split was accepted");
    char text[1024];
    snprintf(text, sizeof text, "%s%s%s", line, "split valid action_nll 1.0 time_nll x\n",
             "split test action_nll 1.0\n");
    write_text(path, text);
    CHECK(synth_read_report(dir_c, &back) == -1, "a best.txt with a bad number was accepted");
    snprintf(text, sizeof text, "%s%s%s", line,
             "split valid action_nll 1.0 time_nll 7.0 action_acc 0.5 targets 10 users 1 "
             "events 11 color blue\n",
             "split test action_nll 1.0 time_nll 7.0 action_acc 0.5 targets 10 users 1 "
             "events 11\n");
    write_text(path, text);
    CHECK(synth_read_report(dir_c, &back) == -1, "a best.txt with an unknown key was accepted");

    printf("check the best losses are plausible\n");
    const SynthSplitStats *v = &rep.split[1];
    printf("  best valid: action_nll %.4f time_nll %.4f action_acc %.4f (%lld targets)\n",
           v->action_nll, v->time_nll, v->action_acc, v->n_targets);
    CHECK(isfinite(v->action_nll) && v->action_nll > 0.3 && v->action_nll < log(6.0),
          "valid action_nll %.4f is not in (0.3, log 6)", v->action_nll);
    CHECK(isfinite(v->time_nll), "valid time_nll is not finite");
    CHECK(v->action_acc > 0 && v->action_acc < 1, "valid action_acc %.4f not in (0, 1)",
          v->action_acc);

    printf("check re-scoring the CSVs from the files alone gives the report, and that the\n"
           "Bayes predictor beats the segment-unknown prior mixture\n");
    for (int k = 0; k < 3; k++) {
        SynthSplitStats bayes, prior_mix;
        snprintf(path, sizeof path, "%s/%s", dir_a, SPLIT_FILES[k]);
        CHECK(synth_score_csv(path, &bayes, &prior_mix) == 0, "synth_score_csv(%s) failed", path);
        const SynthSplitStats *w = &rep.split[k];
        CHECK(close_enough(bayes.action_nll, w->action_nll, 1e-12) &&
                  close_enough(bayes.time_nll, w->time_nll, 1e-12) &&
                  bayes.action_acc == w->action_acc && bayes.n_targets == w->n_targets,
              "%s: re-scored %.10f %.10f %.6f, report %.10f %.10f %.6f", SPLIT_FILES[k],
              bayes.action_nll, bayes.time_nll, bayes.action_acc, w->action_nll, w->time_nll,
              w->action_acc);
        printf("  %s: bayes action_nll %.4f time_nll %.4f | prior mixture %.4f %.4f\n",
               SPLIT_FILES[k], bayes.action_nll, bayes.time_nll, prior_mix.action_nll,
               prior_mix.time_nll);
        CHECK(bayes.action_nll <= prior_mix.action_nll, "%s: Bayes action_nll %.4f > prior %.4f",
              SPLIT_FILES[k], bayes.action_nll, prior_mix.action_nll);
        CHECK(bayes.time_nll <= prior_mix.time_nll, "%s: Bayes time_nll %.4f > prior %.4f",
              SPLIT_FILES[k], bayes.time_nll, prior_mix.time_nll);
    }

    remove_outputs(dir_a);
    remove_outputs(dir_b);
    snprintf(path, sizeof path, "%s/b", base);
    rmdir(path);
    remove_outputs(dir_c);
    rmdir(base);
    if (g_failures) {
        printf("test_synth: %d check(s) FAILED\n", g_failures);
        return 1;
    }
    printf("test_synth: all checks passed\n");
    return 0;
}
