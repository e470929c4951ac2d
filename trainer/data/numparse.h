// numparse.h: decimal text to double, as strtod reads it, faster for the common short forms.
#pragma once

// strtod(s, end), bit for bit (value, *end, errno): an optional sign, at most 19 significant
// digits with an optional point, an optional exponent, when the digits as an integer are at
// most 2^53 and the power of ten is within 10^+-22 (Clinger's fast path: both are exact
// doubles, so one multiply or divide rounds correctly); anything else goes to strtod.
double parse_double(const char *s, char **end);
// The fast path alone: 0 with *out and *end set, or -1 (no change) where strtod must read it.
int parse_double_fast(const char *s, char **end, double *out);
