// runstate.c: see runstate.h.
#include "runstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

void runstate_checkpoint_dir(const Config *cfg, char *out, size_t cap) {
    snprintf(out, cap, "%s/checkpoints", cfg->run.dir);
}

void runstate_prepare(const Config *cfg, const char *exp_path, int n_overrides, char **overrides,
                      int allow_changed) {
    const char *dir = cfg->run.dir;
    if (mkdir_p(dir) != 0) fatal("run.dir: %s: cannot create (%s)", dir, strerror(errno));
    char path[CFG_PATH_LEN + 32], err[1024];
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    char *text = config_to_yaml(cfg, 0);
    char *old = read_file(path, NULL);
    if (old && strcmp(old, text) != 0) {
        Config prev;
        char diff[2048] = "";
        // The stored file is a resolved experiment; load it quietly to name what changed.
        if (config_load(&prev, path, 0, NULL) == 0) config_diff(&prev, cfg, diff, sizeof diff);
        if (!allow_changed) {
            free(old);
            free(text);
            fatal("run.dir %s holds a different experiment (changed: %s). Start a new run with "
                  "--set run.dir=OTHER, or pass --resume to continue this directory with the "
                  "new settings",
                  dir, diff[0] ? diff : "its config.yaml is unreadable");
        }
        printf("run: continuing %s with changed settings: %s\n", dir, diff);
        char prev_path[CFG_PATH_LEN + 64];
        snprintf(prev_path, sizeof prev_path, "%s/config.prev-%ld.yaml", dir, (long)time(NULL));
        if (write_file_atomic(prev_path, old, strlen(old), err, sizeof err) != 0) fatal("%s", err);
    }
    free(old);
    if (write_file_atomic(path, text, strlen(text), err, sizeof err) != 0) fatal("%s", err);
    free(text);
    // overrides.txt: one block per start, so a run's history of settings is kept.
    snprintf(path, sizeof path, "%s/overrides.txt", dir);
    FILE *f = xfopen(path, "a");
    time_t now = time(NULL);
    char stamp[64];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "# %s experiment %s\n", stamp, exp_path ? exp_path : "(defaults)");
    for (int i = 0; i < n_overrides; i++) fprintf(f, "--set %s\n", overrides[i]);
    xfclose(f, path);
}
