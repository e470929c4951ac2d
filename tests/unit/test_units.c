// test_units.c: unit tests of the pieces of the event-data pipeline that are pure functions
// or small state machines, where a bash test would only see them through a whole prepare.
//
// Checks: the CSV reader (quoted fields with commas and "" escapes, CRLF, blank lines, a
// newline inside quotes and the line numbers after it, an unterminated quote reported and
// the rows after it still read, a stray quote inside an unquoted field, no trailing newline,
// a UTF-8 byte order mark, a row split across the reader's 1 MiB blocks, a row over the 64 MiB
// limit); ISO-8601 (zones, fractions, date only,
// impossible dates, garbage); SipHash-2-4 against the paper's test vector; hash_bytes equal
// to the streaming Hasher for any split of the input; vocabulary ids (count desc, then byte
// order; unseen -> 0); config_time_unit_seconds; the batch of one user's window (the target
// log gap log(dt + gap_offset) is the next position's input gap before normalisation).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "config.h"
#include "csv.h"
#include "hash.h"
#include "timeparse.h"
#include "util.h"
#include "vocab.h"

#include "check.h"


static char g_dir[256];

static const char *write_tmp(const char *name, const char *text, size_t len) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        printf("  FAIL: cannot write %s\n", path);
        exit(1);
    }
    return path;
}

// ---------------------------------------------------------------- CSV reader

// One row as the reader saw it: status, line, fields joined with '|'.
typedef struct {
    int rc;
    long long line;
    char text[256];
} SeenRow;

static int read_all(const char *path, SeenRow *rows, int cap) {
    CsvReader *r = csv_open(path);
    if (!r) {
        printf("  FAIL: csv_open %s\n", path);
        exit(1);
    }
    int n = 0, rc;
    char **f;
    int nf;
    // A reader that made no progress would loop: the cap turns that into a failure.
    while ((rc = csv_next(r, &f, &nf)) != 0 && n < cap) {
        SeenRow *s = &rows[n++];
        s->rc = rc;
        s->line = csv_line(r);
        s->text[0] = 0;
        if (rc < 0) {
            snprintf(s->text, sizeof s->text, "ERR %s", csv_error(r));
            continue;
        }
        size_t used = 0;
        for (int i = 0; i < nf; i++)
            used +=
                (size_t)snprintf(s->text + used, sizeof s->text - used, "%s%s", i ? "|" : "", f[i]);
    }
    csv_close(r);
    return n;
}

static void expect_rows(const char *name, const char *csv, const SeenRow *want, int n_want) {
    const char *path = write_tmp(name, csv, strlen(csv));
    SeenRow got[64];
    int n = read_all(path, got, 64);
    CHECK(n == n_want, "%s: %d rows read, expected %d", name, n, n_want);
    for (int i = 0; i < n && i < n_want; i++) {
        CHECK(got[i].rc == want[i].rc, "%s row %d: status %d, expected %d (%s)", name, i, got[i].rc,
              want[i].rc, got[i].text);
        CHECK(got[i].line == want[i].line, "%s row %d: line %lld, expected %lld", name, i,
              got[i].line, want[i].line);
        if (want[i].rc > 0)
            CHECK(strcmp(got[i].text, want[i].text) == 0, "%s row %d: [%s], expected [%s]", name, i,
                  got[i].text, want[i].text);
        else
            CHECK(strstr(got[i].text, want[i].text) != NULL,
                  "%s row %d: [%s], expected an "
                  "error containing [%s]",
                  name, i, got[i].text, want[i].text);
    }
}

static void test_csv(void) {
    {
        const SeenRow want[] = {{1, 1, "user|time|action"},
                                {1, 2, "u1|1|a,b"},
                                {1, 3, "u2|2|say \"hi\""},
                                {1, 4, "|3|"},
                                {1, 5, "u4|4|x"}};
        expect_rows("quoted.csv",
                    "user,time,action\nu1,1,\"a,b\"\nu2,2,\"say \"\"hi\"\"\"\n,3,\"\"\nu4,4,x\n",
                    want, 5);
    }
    {
        const SeenRow want[] = {{1, 1, "a|b"}, {1, 2, "1|2"}, {1, 4, "3|4"}, {1, 6, "5|"}};
        expect_rows("crlf.csv", "a,b\r\n1,2\r\n\r\n3,4\r\n\n5,\r\n", want, 4);
    }
    {
        // The quoted newline belongs to the row of line 2; the next row starts on line 4.
        const SeenRow want[] = {
            {1, 1, "a|b"}, {1, 2, "1|x\ny"}, {1, 4, "2|z"}, {1, 5, "3|p\r\nq\n\nr"}, {1, 9, "4|w"}};
        expect_rows("embedded.csv", "a,b\n1,\"x\ny\"\n2,z\n3,\"p\r\nq\n\nr\"\r\n4,w\n", want, 5);
    }
    {
        // A quote that never closes costs its own line only: the rows after it are read.
        const SeenRow want[] = {{1, 1, "a|b"},
                                {1, 2, "1|ok"},
                                {-1, 3, "unterminated"},
                                {1, 4, "3|fine"},
                                {1, 5, "4|last"}};
        expect_rows("unterminated.csv", "a,b\n1,ok\n2,\"broken\n3,fine\n4,last\n", want, 5);
    }
    {
        // ... also when a later quote would pair with it.
        const SeenRow want[] = {
            {1, 1, "a|b"}, {-1, 2, "unterminated"}, {1, 3, "3|\"x\""}, {1, 4, "4|y"}};
        expect_rows("unterminated2.csv", "a,b\n2,\"broken\n3,\"\"\"x\"\"\"\n4,y\n", want, 4);
    }
    {
        // A quote inside an unquoted field is a literal character, not an opening quote.
        const SeenRow want[] = {{1, 1, "a|b"}, {1, 2, "1|5\" screen"}, {1, 3, "2|z"}};
        expect_rows("literal.csv", "a,b\n1,5\" screen\n2,z\n", want, 3);
    }
    {
        const SeenRow want[] = {{1, 1, "a|b"}, {-1, 2, "after a closing quote"}, {1, 3, "2|z"}};
        expect_rows("after.csv", "a,b\n1,\"x\"y\n2,z\n", want, 3);
    }
    {
        const SeenRow want[] = {{1, 1, "a|b"}, {1, 2, "1|2"}, {1, 3, "3|\"q\""}};
        expect_rows("notrail.csv", "a,b\n1,2\n3,\"\"\"q\"\"\"", want, 3);
    }
    {
        const SeenRow want[] = {{1, 1, "a|b"}, {-1, 2, "unterminated"}};
        expect_rows("notrail2.csv", "a,b\n1,\"x", want, 2);
    }
    {
        // A UTF-8 byte order mark is not part of the first field; only at the very start.
        const SeenRow want[] = {{1, 1, "user|time"}, {1, 2, "\xEF\xBB\xBFu|1"}};
        expect_rows("bom.csv", "\xEF\xBB\xBFuser,time\r\n\xEF\xBB\xBFu,1\r\n", want, 2);
        expect_rows("bom_only.csv", "\xEF\xBB\xBF", want, 0);
        const SeenRow short_want[] = {{1, 1, "a"}};
        expect_rows("two_bytes.csv", "a\n", short_want, 1);
    }
    {
        const SeenRow want[] = {{1, 1, "a"}};
        expect_rows("blank_end.csv", "a\n\n\n", want, 1);
        expect_rows("empty.csv", "", want, 0);
    }
    {
        // Rows that straddle the reader's 1 MiB blocks, one with a quoted newline on the
        // boundary: every row and line number must survive the refill.
        size_t cap = 3u << 20, len = 0;
        char *text = xmalloc(cap);
        int n_rows = 0;
        len += (size_t)snprintf(text + len, cap - len, "id,payload\n");
        while (len < (5u << 19)) {
            n_rows++;
            len += (size_t)snprintf(text + len, cap - len, "%d,\"v%d\nw\"\n", n_rows, n_rows);
        }
        const char *path = write_tmp("blocks.csv", text, len);
        free(text);
        CsvReader *r = csv_open(path);
        char **f;
        int nf, rc, seen = 0, bad = 0;
        csv_next(r, &f, &nf);
        while ((rc = csv_next(r, &f, &nf)) != 0) {
            seen++;
            char want[64];
            snprintf(want, sizeof want, "v%d\nw", seen);
            if (rc != 1 || nf != 2 || atoi(f[0]) != seen || strcmp(f[1], want) != 0 ||
                csv_line(r) != 2 + 2LL * (seen - 1))
                bad++;
        }
        csv_close(r);
        CHECK(seen == n_rows && bad == 0, "blocks.csv: %d of %d rows read, %d wrong", seen, n_rows,
              bad);
    }
    // A row longer than the reader's 64 MiB limit is one bad row, and reading goes on after
    // it (quoted or not): the reader must not stall on it.
    for (int quoted = 0; quoted < 2; quoted++) {
        size_t big = (65u << 20);
        char *text = xmalloc(big + 64);
        size_t len = (size_t)snprintf(text, 64, "a,b\n1,%s", quoted ? "\"" : "");
        memset(text + len, 'x', big);
        len += big;
        len += (size_t)snprintf(text + len, 64, "\n2,3\n");
        const char *path = write_tmp("long.csv", text, len);
        free(text);
        SeenRow got[8];
        int n = read_all(path, got, 8);
        unlink(path);
        CHECK(n == 3 && got[1].rc < 0 && got[1].line == 2 && strstr(got[1].text, "longer") &&
                  got[2].rc == 1 && got[2].line == 3 && strcmp(got[2].text, "2|3") == 0,
              "long row (quoted %d): %d rows; row 2: %s; row 3 line %lld [%s]", quoted, n,
              n > 1 ? got[1].text : "-", n > 2 ? got[2].line : -1, n > 2 ? got[2].text : "-");
    }
}

// ---------------------------------------------------------------- ISO-8601

static void expect_time(const char *s, double want) {
    double got = NAN;
    const char *why = "";
    int rc = parse_iso8601(s, &got, &why);
    CHECK(rc == 0 && fabs(got - want) < 1e-6, "\"%s\": rc %d (%s), %.6f, expected %.6f", s, rc,
          rc ? why : "", got, want);
}

static void expect_bad_time(const char *s, const char *why_part) {
    double got = 0;
    const char *why = "";
    int rc = parse_iso8601(s, &got, &why);
    CHECK(rc != 0, "\"%s\" was accepted (%.3f)", s, got);
    if (rc != 0 && why_part)
        CHECK(strstr(why, why_part) != NULL, "\"%s\": reason \"%s\" lacks \"%s\"", s, why,
              why_part);
}

static void test_iso8601(void) {
    const double d = 86400;
    expect_time("1970-01-01T00:00:00Z", 0);
    expect_time("1970-01-01", 0);
    expect_time("2000-03-01", 11017 * d);
    expect_time("2024-02-29T12:00:00Z", 19782 * d + 12 * 3600);
    expect_time("2026-01-05T13:45:12Z", 1767620712);
    expect_time("2026-01-05 13:45:12", 1767620712);
    expect_time("2026-01-05T13:45", 1767620700);
    expect_time("2026-01-05T15:45:12+02:00", 1767620712);
    expect_time("2026-01-05T15:45:12+0200", 1767620712);
    expect_time("2026-01-05T15:45:12+02", 1767620712);
    expect_time("2026-01-05T08:15:12-0530", 1767620712);
    expect_time("2026-01-05T08:15:12-05:30", 1767620712);
    expect_time("2026-01-05T13:45:12.25Z", 1767620712.25);
    expect_time("2026-01-05T13:45:12,5", 1767620712.5);
    expect_time("2026-01-05T13:45:12.123456789Z", 1767620712.123456789);
    expect_time("1969-12-31T23:59:59Z", -1);
    expect_bad_time("2023-02-29", "leap");
    expect_bad_time("1900-02-29", "leap");
    expect_bad_time("2024-13-01", "no such date");
    expect_bad_time("2024-00-10", "no such date");
    expect_bad_time("2024-04-31", "no such date");
    expect_bad_time("2024-01-00", "no such date");
    expect_bad_time("2024-01-01T24:00:00Z", "range");
    expect_bad_time("2024-01-01T10:60Z", "range");
    expect_bad_time("2024-01-01T10:00:00+25:00", "range");
    expect_bad_time("2024-01-01T10:00:00.Z", NULL);
    expect_bad_time("2024-01-01T10:00:00+", NULL);
    expect_bad_time("2024-01-01T10:00:00Zjunk", "unexpected text");
    expect_bad_time("2024-1-01", NULL);
    expect_bad_time("2024-01", NULL);
    expect_bad_time("20240101", NULL);
    expect_bad_time("1767620712", NULL);
    expect_bad_time("yesterday", NULL);
    expect_bad_time("", NULL);
    expect_bad_time("2024-01-01T", NULL);
}

// ---------------------------------------------------------------- hashes

static void test_hashes(void) {
    // SipHash paper (Aumasson, Bernstein 2012), appendix A: key 00..0f, message 00..0e.
    uint8_t key[16], msg[64];
    for (int i = 0; i < 16; i++) key[i] = (uint8_t)i;
    for (int i = 0; i < 64; i++) msg[i] = (uint8_t)i;
    uint64_t got = siphash24(key, msg, 15);
    CHECK(got == 0xa129ca6149be45e5ULL,
          "siphash24(paper vector) = %016llx, expected a129ca6149be45e5", (unsigned long long)got);
    // First entries of the reference implementation's vectors.h (messages 00..len-1).
    const uint64_t ref[] = {0x726fdb47dd0e0e31ULL, 0x74f839c593dc67fdULL, 0x0d6c8009d9a94f5aULL,
                            0x85676696d7fb7e2dULL};
    for (size_t len = 0; len < ARRAY_LEN(ref); len++) {
        got = siphash24(key, msg, len);
        CHECK(got == ref[len], "siphash24(len %zu) = %016llx, expected %016llx", len,
              (unsigned long long)got, (unsigned long long)ref[len]);
    }
    // Keyed: another key gives another value.
    uint8_t key2[16];
    memcpy(key2, key, 16);
    key2[15] ^= 1;
    CHECK(siphash24(key2, msg, 15) != 0xa129ca6149be45e5ULL, "siphash24 ignores the key");

    // hash_bytes == init/update/final for every way of cutting the input in up to 3 pieces.
    unsigned char data[70];
    for (int i = 0; i < 70; i++) data[i] = (unsigned char)(i * 37 + 11);
    int bad = 0;
    for (size_t len = 0; len <= 70; len++) {
        uint64_t want = hash_bytes(data, len, 42);
        for (size_t a = 0; a <= len; a++)
            for (size_t b = a; b <= len; b++) {
                Hasher h;
                hasher_init(&h, 42);
                hasher_update(&h, data, a);
                hasher_update(&h, data + a, b - a);
                hasher_update(&h, data + b, len - b);
                if (hasher_final(&h) != want) bad++;
            }
    }
    CHECK(bad == 0, "hash_bytes differs from the streaming Hasher for %d splits", bad);
    // Byte-at-a-time, and the seed, the length and every byte matter.
    Hasher h;
    hasher_init(&h, 7);
    for (int i = 0; i < 70; i++) hasher_update(&h, data + i, 1);
    CHECK(hasher_final(&h) == hash_bytes(data, 70, 7), "byte-at-a-time Hasher differs");
    CHECK(hash_bytes(data, 70, 7) != hash_bytes(data, 70, 8), "hash_bytes ignores the seed");
    CHECK(hash_bytes(data, 16, 7) != hash_bytes(data, 17, 7), "hash_bytes ignores the length");
    unsigned char zeros[32] = {0};
    CHECK(hash_bytes(zeros, 31, 0) != hash_bytes(zeros, 32, 0), "trailing zero bytes collide");
    int same = 0;
    for (int i = 0; i < 70; i++) {
        unsigned char flipped[70];
        memcpy(flipped, data, 70);
        flipped[i] ^= 0x10;
        same += hash_bytes(flipped, 70, 7) == hash_bytes(data, 70, 7);
    }
    CHECK(same == 0, "hash_bytes misses a flipped byte at %d positions", same);
}

// ---------------------------------------------------------------- vocabulary

static void test_vocab(void) {
    // Values in order of first sight, with training counts: ties are broken by byte order.
    const char *vals[] = {"view", "like", "buy", "zap", "abc", "test-only", "Like"};
    const int64_t counts[] = {5, 3, 3, 1, 3, 0, 3};
    // Expected ids: view 1; then count 3 in byte order: Like 2, abc 3, buy 4, like 5; zap 6.
    const int want[] = {1, 5, 4, 6, 3, 0, 2};
    for (int order = 0; order < 2; order++) {
        StrTable t;
        strtab_init(&t);
        int ids[7];
        for (int k = 0; k < 7; k++) {
            int i = order ? 6 - k : k; // the same values seen in another order
            ids[i] = strtab_intern(&t, vals[i], strlen(vals[i]));
            t.train_count[ids[i]] += counts[i];
        }
        CHECK(strtab_intern(&t, "view", 4) == ids[0], "interning twice gives another id");
        CHECK(strtab_intern(&t, "viewx", 4) == ids[0], "intern ignores the length");
        Vocab v;
        vocab_build(&t, &v);
        CHECK(v.size == 7, "vocab size %d, expected 7 (6 seen in training + <unk>)", v.size);
        CHECK(strcmp(v.names[0], "<unk>") == 0, "id 0 is \"%s\", expected <unk>", v.names[0]);
        for (int i = 0; i < 7; i++) {
            CHECK(v.remap[ids[i]] == want[i], "order %d: \"%s\" has id %d, expected %d", order,
                  vals[i], v.remap[ids[i]], want[i]);
            if (want[i] > 0)
                CHECK(strcmp(v.names[want[i]], vals[i]) == 0, "names[%d] = \"%s\", expected \"%s\"",
                      want[i], v.names[want[i]], vals[i]);
        }
        vocab_free(&v);
        strtab_free(&t);
    }
    // Many values: the table grows, every value keeps its id.
    StrTable t;
    strtab_init(&t);
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        char s[32];
        snprintf(s, sizeof s, "value-%d", i);
        if (strtab_intern(&t, s, strlen(s)) != i) bad++;
    }
    for (int i = 0; i < 5000; i++) {
        char s[32];
        snprintf(s, sizeof s, "value-%d", i);
        if (strtab_intern(&t, s, strlen(s)) != i || strcmp(strtab_str(&t, i), s) != 0) bad++;
    }
    CHECK(bad == 0 && t.n == 5000, "%d ids changed as the table grew (n=%d)", bad, t.n);
    strtab_free(&t);
}

// ---------------------------------------------------------------- config helpers

static void test_time_unit(void) {
    const struct {
        const char *unit;
        double seconds;
    } cases[] = {{"s", 1},    {"ms", 1e-3}, {"us", 1e-6}, {"min", 60},
                 {"h", 3600}, {"d", 86400}, {"none", 0}};
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "data.time_unit=%s", cases[i].unit);
        char *ov[] = {kv};
        Config cfg;
        if (config_load(&cfg, NULL, 1, ov) != 0) {
            CHECK(0, "config_load rejected %s", kv);
            continue;
        }
        double got = config_time_unit_seconds(&cfg);
        CHECK(got == cases[i].seconds, "time_unit %s: %g s, expected %g", cases[i].unit, got,
              cases[i].seconds);
    }
    // iso8601 with no unit is refused (the time features would divide by zero).
    char *ov[] = {"data.time_format=iso8601", "data.time_unit=none"};
    Config cfg;
    printf("  (an error about data.time_unit is expected next)\n");
    CHECK(config_load(&cfg, NULL, 2, ov) != 0, "iso8601 with time_unit=none was accepted");
}

static void test_batch_targets(void) {
    enum { T = 4, N = 4 };
    const double times[N] = {0, 10, 30, 31}, off = 0.5, mean = 1.25, sd = 2.0;
    uint8_t ev[N][16];
    memset(ev, 0, sizeof ev);
    for (int i = 0; i < N; i++) memcpy(ev[i], &times[i], 8), memcpy(ev[i] + 8, &(int32_t){i + 1}, 4);
    Shard sh;
    memset(&sh, 0, sizeof sh);
    sh.hdr.event_bytes = shard_event_bytes(0, 0), sh.hdr.n_users = 1, sh.hdr.n_events = N;
    ShardUser u = {.user_hash = 7, .first_event = 0, .n_events = N};
    sh.events = &ev[0][0], sh.users = &u;
    Dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.meta.engagement_index = -1, ds.meta.gap_offset = off;
    ds.meta.loggap_mean = mean, ds.meta.loggap_std = sd;
    ds.n_shards = 1, ds.shards[SPLIT_TRAIN] = &sh;
    BatchBuf bb;
    batchbuf_init(&bb, 1, T, 0, 2);
    UserWindow w = {.shard = 0, .user = 0, .start = 0, .lane_id = 1};
    batch_fill_windows(&bb, &ds, SPLIT_TRAIN, 1, &w);
    for (int t = 0; t + 1 < N; t++) {
        // The last event is no input (it has no target): compare with the next input before it.
        double want = log(times[t + 1] - times[t] + off);
        double next_in = t + 2 < N ? bb.dense[(t + 1) * 2] * sd + mean : want;
        CHECK(fabs(bb.tgt_loggap[t] - want) < 1e-5 && fabs(next_in - want) < 1e-5 &&
                  bb.tgt_action[t] == t + 2,
              "batch position %d: target log gap %g, next input's %g, want log(%g + %g) = %g; "
              "target action %d, want %d", t, (double)bb.tgt_loggap[t], next_in,
              times[t + 1] - times[t], off, want, bb.tgt_action[t], t + 2);
    }
    CHECK(bb.tgt_action[T - 1] == -1 && bb.keep[0] == 0 && bb.keep[1] == 1,
          "batch: the last event has a target (%d) or keep flags wrong", bb.tgt_action[T - 1]);
    batchbuf_free(&bb);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/test-units.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    printf("csv reader\n");
    test_csv();
    printf("iso-8601\n");
    test_iso8601();
    printf("hashes\n");
    test_hashes();
    printf("vocabulary\n");
    test_vocab();
    printf("time units\n");
    test_time_unit();
    printf("batch targets\n");
    test_batch_targets();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", g_dir);
    if (g_failures) {
        printf("%d check(s) failed\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
