// fuzz_set.c: --set parsing (key=value, the value read as YAML) on arbitrary bytes, both
// through config_check_override (sweeps) and config_load (the CLI path).
// Property: no crash; the two agree on whether a lone override is acceptable to the schema
// (config_load may still refuse an accepted value through a cross-field rule, never accept
// one config_check_override refuses).
#include "fuzz_common.h"

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0; // like an argv string: the text ends at the first NUL
    static Config cfg;
    int checked = config_check_override(text, "--set");
    char *ov[1] = {text};
    int loaded = config_load(&cfg, NULL, 1, ov);
    if (checked != 0 && loaded == 0) {
        fprintf(stdout, "config_load accepted an override config_check_override refuses: %s\n",
                text);
        abort();
    }
    free(text);
    return 0;
}
