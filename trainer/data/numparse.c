// numparse.c: see numparse.h. Assumes double arithmetic in double precision
// (FLT_EVAL_METHOD 0: SSE2 on x86-64, AArch64), checked at build time.
#include "numparse.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "numparse.c: the fast path needs double arithmetic in double precision"
#endif

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

// Digits from *p into *w (leading zeros not counted in *n_sig); returns how many were read,
// or -1 beyond 19 significant digits.
static int read_digits(const char **p, uint64_t *w, int *n_sig) {
    int n = 0;
    for (; is_digit(**p); (*p)++, n++)
        if (*w || **p != '0') {
            if (++*n_sig > 19) return -1;
            *w = *w * 10 + (uint64_t)(**p - '0');
        }
    return n;
}

int parse_double_fast(const char *s, char **end, double *out) {
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) return -1; // hexadecimal
    uint64_t w = 0;
    int n_sig = 0, n_int = read_digits(&p, &w, &n_sig), n_frac = 0;
    if (n_int < 0) return -1;
    if (*p == '.') {
        p++;
        n_frac = read_digits(&p, &w, &n_sig);
        if (n_frac < 0) return -1;
    }
    if (n_int + n_frac == 0) return -1; // no digits: inf, nan, space, junk
    int e10 = -n_frac;
    if (*p == 'e' || *p == 'E') {
        const char *q = p + 1;
        int eneg = 0, x = 0, nx = 0;
        if (*q == '-' || *q == '+') eneg = *q++ == '-';
        for (; is_digit(*q); q++)
            if (++nx > 4) return -1;
            else x = x * 10 + (*q - '0');
        if (!nx) return -1; // "5e": strtod stops before the e
        e10 += eneg ? -x : x;
        p = q;
    }
    if (w > (1ULL << 53) || e10 < -22 || e10 > 22) return -1;
    double v = (double)w;
    v = e10 < 0 ? v / POW10[-e10] : v * POW10[e10];
    *end = (char *)p;
    *out = neg ? -v : v;
    return 0;
}

double parse_double(const char *s, char **end) {
    double v;
    return parse_double_fast(s, end, &v) == 0 ? v : strtod(s, end);
}
