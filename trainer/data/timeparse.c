// timeparse.c: see timeparse.h.
#include "timeparse.h"

#include <math.h>
#include <stdio.h>

#include <ctype.h>
#include <stdlib.h>

long long days_from_civil(long long y, unsigned m, unsigned d) {
    // Howard Hinnant's algorithm.
    y -= m <= 2;
    const long long era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int parse_iso8601(const char *s, double *out, const char **why) {
    int form;
    return parse_iso8601_form(s, out, why, &form);
}

void format_iso8601(double seconds, char *out, size_t cap) {
    const double whole = floor(seconds);
    long long ms = llround((seconds - whole) * 1000);
    long long t = (long long)whole + (ms == 1000);
    ms %= 1000;
    // Civil from days (Howard Hinnant's algorithm), so any year prints without gmtime's range.
    long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400), sod = t - days * 86400;
    days += 719468;
    const long long era = (days >= 0 ? days : days - 146096) / 146097;
    const unsigned doe = (unsigned)(days - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    const long long y = (long long)yoe + era * 400 + (m <= 2);
    int n = snprintf(out, cap, "%04lld-%02u-%02uT%02lld:%02lld:%02lld", y, m, d, sod / 3600,
                     sod / 60 % 60, sod % 60);
    if (ms && n > 0 && (size_t)n < cap) n += snprintf(out + n, cap - (size_t)n, ".%03lld", ms);
    if (n > 0 && (size_t)n < cap) snprintf(out + n, cap - (size_t)n, "Z");
}

int parse_iso8601_form(const char *s, double *out, const char **why, int *form) {
    const char *p = s;
    *form = ISO_NO_ZONE | ISO_DATE_ONLY;
    int Y, M, D, h = 0, mi = 0, sec = 0;
    double frac = 0;
    *why = "expected YYYY-MM-DD[Thh:mm[:ss[.fff]]][Z|+hh:mm]";
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' || digits(&p, 2, &D))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1]) return *why = "no such date", -1;
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M == 2 && D == 29 && !leap) return *why = "no such date (not a leap year)", -1;
    if (*p == 'T' || *p == ' ') {
        *form = (*form & ~ISO_DATE_ONLY) | (*p == ' ' ? ISO_SPACE : 0);
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec)) return -1;
            if (*p == '.' || *p == ',') {
                p++;
                double scale = 0.1;
                if (!isdigit((unsigned char)*p)) return -1;
                while (isdigit((unsigned char)*p)) frac += (*p++ - '0') * scale, scale /= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 60) return *why = "time of day out of range", -1;
    }
    long offset = 0;
    if (*p == 'Z' || *p == '+' || *p == '-') *form &= ~ISO_NO_ZONE;
    if (*p == 'Z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, 2, &oh)) return -1;
        if (*p == ':') p++;
        if (isdigit((unsigned char)*p) && digits(&p, 2, &om)) return -1;
        if (oh > 23 || om > 59) return *why = "zone offset out of range", -1;
        offset = sign * (oh * 3600L + om * 60L);
    }
    if (*p) return *why = "unexpected text after the timestamp", -1;
    long long days = days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out = (double)(days * 86400LL + h * 3600LL + mi * 60LL + sec - offset) + frac;
    return 0;
}
