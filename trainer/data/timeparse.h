// timeparse.h: ISO-8601 timestamps to seconds since the Unix epoch (UTC).
#pragma once

// Accepts YYYY-MM-DD, YYYY-MM-DDThh:mm, YYYY-MM-DDThh:mm:ss[.fff...] with 'T' or ' ', and an
// optional zone: Z, +hh, +hh:mm, +hhmm (or -). No zone means UTC. Returns 0 and sets *out,
// or -1 with a short reason in why.
int parse_iso8601(const char *s, double *out, const char **why);
// Days since 1970-01-01 of a proleptic Gregorian date.
long long days_from_civil(long long y, unsigned m, unsigned d);
