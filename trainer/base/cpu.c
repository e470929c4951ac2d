// cpu.c: see cpu.h.
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const NAMES[] = {"generic", "avx2", "avx512"};

const char *cpu_isa_name(Isa isa) {
    return NAMES[isa];
}

Isa cpu_isa_detected(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
#endif
    return ISA_GENERIC;
}

Isa cpu_isa(void) {
    static int isa = -1;
    if (isa >= 0) return (Isa)isa;
    Isa have = cpu_isa_detected(), want = have;
    const char *env = getenv("LSTM_TRAINER_ISA");
    if (env && *env) {
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(env, NAMES[i]) == 0) k = i;
        if (k < 0) {
            fprintf(stderr, "error: LSTM_TRAINER_ISA=%s: expected generic, avx2 or avx512\n", env);
            exit(EXIT_USAGE);
        }
        if (k > (int)have) {
            fprintf(stderr, "error: LSTM_TRAINER_ISA=%s: this CPU supports only %s\n", env,
                    NAMES[have]);
            exit(EXIT_USAGE);
        }
        want = (Isa)k;
    }
    isa = (int)want;
    return want;
}
