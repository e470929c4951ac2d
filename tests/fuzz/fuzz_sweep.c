// fuzz_sweep.c: the sweep spec loader on arbitrary bytes, then the trial count and every
// trial's overrides for the first trials. Property: no crash; an accepted spec has between
// 1 and max_trials trials, each with at most SWEEP_MAX_AXES overrides.
#include "fuzz_common.h"

#include "sweep_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static SweepSpec spec;
    const char *path = fuzz_file(data, size);
    if (sweep_spec_load(path, &spec) != 0) return 0;
    int64_t n = sweep_trial_count(&spec);
    if (n < 1 || n > spec.max_trials) {
        fprintf(stdout, "accepted spec with %lld trials (max_trials %lld)\n", (long long)n,
                (long long)spec.max_trials);
        abort();
    }
    static char out[SWEEP_MAX_AXES][256];
    for (int64_t t = 0; t < n && t < 8; t++) {
        int k = sweep_trial_overrides(&spec, t, out, SWEEP_MAX_AXES);
        if (k < 0 || k > SWEEP_MAX_AXES) abort();
    }
    return 0;
}
