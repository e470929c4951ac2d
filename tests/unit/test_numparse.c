// test_numparse.c: parse_double (trainer/data/numparse.h) against strtod, bit for bit: the
// value's bits, where the number ends and errno, on hand-picked edge cases (1e22 and 1e23,
// 2^53 and 2^53 + 1, ".5", "5.", "-0", 19 and 20 digits, hexadecimal, inf and nan, a bare
// exponent, spaces) and on 2 million generated strings: signs, leading zeros, up to 24
// digits before and after the point, exponents of up to 4 digits, junk after the number.
// Also that the fast path takes most of them (else this would only test strtod).
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"

#include "check.h"

static long g_fast, g_total;

static void same_as_strtod(const char *s) {
    char *end_ref, *end_got;
    errno = 0;
    double ref = strtod(s, &end_ref);
    int errno_ref = errno;
    double got, fast;
    char *end_fast;
    g_fast += parse_double_fast(s, &end_fast, &fast) == 0;
    g_total++;
    errno = 0;
    got = parse_double(s, &end_got);
    CHECK(memcmp(&ref, &got, sizeof ref) == 0 && end_ref == end_got && errno == errno_ref,
          "\"%s\": strtod %.17g (end +%d, errno %d), parse_double %.17g (end +%d, errno %d)", s,
          ref, (int)(end_ref - s), errno_ref, got, (int)(end_got - s), errno);
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static unsigned rnd(unsigned n) { // xorshift64*, uniform enough for picking forms
    g_rng ^= g_rng >> 12, g_rng ^= g_rng << 25, g_rng ^= g_rng >> 27;
    return (unsigned)((g_rng * 0x2545f4914f6cdd1dULL) >> 33) % n;
}

static void digits(char **p, unsigned n) {
    for (unsigned i = 0; i < n; i++) *(*p)++ = (char)('0' + rnd(10));
}

static void generated(char *buf) {
    char *p = buf;
    unsigned sign = rnd(4);
    if (sign == 1) *p++ = '-';
    if (sign == 2) *p++ = '+';
    if (rnd(4) == 0)
        for (unsigned z = rnd(4); z > 0; z--) *p++ = '0';
    digits(&p, rnd(3) ? rnd(10) : rnd(25));
    if (rnd(2)) {
        *p++ = '.';
        digits(&p, rnd(3) ? rnd(8) : rnd(25));
    }
    if (rnd(3) == 0) {
        *p++ = rnd(2) ? 'e' : 'E';
        unsigned es = rnd(3);
        if (es == 1) *p++ = '-';
        if (es == 2) *p++ = '+';
        digits(&p, rnd(8) ? 1 + rnd(2) : rnd(5));
    }
    const char *tails[] = {"", "", "", "", " ", "x", "e", "e+", ".", ",1"};
    strcpy(p, tails[rnd(10)]);
}

int main(void) {
    const char *edge[] = {
        "0", "-0", "+0", "0.0", "-0.0", "00", "0e0", "-0e-5", "1", "-1", ".5", "5.", "-.5",
        "+5.", ".", "-", "+", "", "e5", ".e5", "1e22", "1e23", "-1e22", "1e-22", "1e-23",
        "9007199254740992", "9007199254740993", "9007199254740994", "-9007199254740993",
        "900719925474099.3", "1234567890123456789", "12345678901234567890",
        "0.1234567890123456789", "0.12345678901234567890", "123456789012345678e4",
        "4.9e-324", "1.7976931348623157e308", "1e309", "1e-400", "2.2250738585072014e-308",
        "0x10", "-0x1p3", "0X1P-2", "inf", "-inf", "nan", "infinity", " 5", "\t5", "5 ",
        "5e", "5e+", "5e-", "5E3", "5e+03", "5e00022", "1.5e-7", "3.14159", "1768146243.806",
        "19.263", "0.000000000000000000000001", "1000000000000000000000000", "1e0000",
        "0.1", "0.2", "0.3", "2.5", "1e5x", "1.0.0", "--1", "+-1", "1_000",
    };
    for (size_t i = 0; i < sizeof edge / sizeof *edge; i++) same_as_strtod(edge[i]);
    char buf[128];
    for (int i = 0; i < 2000000; i++) {
        generated(buf);
        same_as_strtod(buf);
    }
    printf("numparse: %ld strings, %ld (%.0f%%) by the fast path, %d differ from strtod\n",
           g_total, g_fast, 100.0 * (double)g_fast / (double)g_total, g_failures);
    CHECK(g_fast > g_total / 2, "the fast path read only %ld of %ld", g_fast, g_total);
    return g_failures ? 1 : 0;
}
