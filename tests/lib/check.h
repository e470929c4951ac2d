// check.h: the CHECK macro of the C tests: prints file:line and the message of each failed
// condition and counts it in g_failures (the test exits non-zero when it is not 0).
#pragma once
#include <stdio.h>

static int g_failures = 0;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            g_failures++;                                                                          \
        }                                                                                          \
    } while (0)
