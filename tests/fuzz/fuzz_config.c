// fuzz_config.c: the experiment loader (YAML -> validated Config) on arbitrary bytes.
// Property: it returns 0 or -1, never crashes; an accepted experiment's canonical YAML
// (what run directories store) loads again to the same canonical YAML.
#include "fuzz_common.h"

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static Config cfg, again;
    const char *path = fuzz_file(data, size);
    if (config_load(&cfg, path, 0, NULL) != 0) return 0;
    char *text = config_to_yaml(&cfg, 0);
    path = fuzz_file((const uint8_t *)text, strlen(text));
    if (config_load(&again, path, 0, NULL) != 0) {
        fprintf(stdout, "canonical YAML of an accepted experiment does not load:\n%s\n", text);
        abort();
    }
    char *text2 = config_to_yaml(&again, 0);
    if (strcmp(text, text2) != 0) {
        fprintf(stdout, "canonical YAML changed on reload:\n%s\n---\n%s\n", text, text2);
        abort();
    }
    free(text2);
    free(text);
    return 0;
}
