// timeparse.h: ISO-8601 timestamps to seconds since the Unix epoch (UTC).
#pragma once
#include <stddef.h>

// Accepts YYYY-MM-DD, YYYY-MM-DDThh:mm, YYYY-MM-DDThh:mm:ss[.fff...] with 'T' or ' ', and an
// optional zone: Z, +hh, +hh:mm, +hhmm (or -). No zone means UTC. Returns 0 and sets *out,
// or -1 with a short reason in why.
int parse_iso8601(const char *s, double *out, const char **why);
// The same, with how the text was written: ISO_* bits (0: date, 'T', time and zone).
enum { ISO_NO_ZONE = 1, ISO_DATE_ONLY = 2, ISO_SPACE = 4 };
int parse_iso8601_form(const char *s, double *out, const char **why, int *form);
// Seconds since the epoch as UTC ISO-8601: 2026-01-05T13:45:12Z, with .fff when the time is
// not a whole second.
void format_iso8601(double seconds, char *out, size_t cap);
// Days since 1970-01-01 of a proleptic Gregorian date.
long long days_from_civil(long long y, unsigned m, unsigned d);
