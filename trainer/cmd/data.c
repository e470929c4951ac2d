// data.c: `trainer data synth|prepare EXP.yaml`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "erasure_verify.h"

int cmd_data(int argc, char **argv) {
    const char *usage =
        "usage: trainer data synth EXP.yaml [--set key=value]...\n"
        "       trainer data prepare EXP.yaml [--set key=value]...\n"
        "       trainer data verify-excluded EXP.yaml --checkpoint FILE|RUNDIR --ids FILE\n";
    const int verify = argc >= 1 && strcmp(argv[0], "verify-excluded") == 0;
    if (argc < 1 || (strcmp(argv[0], "synth") != 0 && strcmp(argv[0], "prepare") != 0 && !verify)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    // --ids FILE (verify-excluded only) is taken out before the shared parser sees argv.
    const char *ids = NULL;
    char **rest = malloc(sizeof(char *) * (size_t)argc);
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        if (verify && strcmp(argv[i], "--ids") == 0 && i + 1 < argc)
            ids = argv[++i];
        else if (verify && strncmp(argv[i], "--ids=", 6) == 0)
            ids = argv[i] + 6;
        else
            rest[n_rest++] = argv[i];
    }
    CliArgs args;
    char what[32];
    snprintf(what, sizeof what, "data %s", argv[0]);
    cli_parse(n_rest, rest, what, verify ? "--set --checkpoint" : "--set", 1, &args);
    free(rest);
    if (verify && (!ids || !args.checkpoint)) {
        fprintf(stderr, "error: trainer data verify-excluded: --checkpoint and --ids are "
                        "required\n%s", usage);
        free(args.overrides);
        return EXIT_USAGE;
    }
    Config cfg;
    cli_load_config(&args, &cfg);
    free(args.overrides);
    if (verify) return erasure_verify(&cfg, args.checkpoint, ids);
    if (strcmp(argv[0], "synth") == 0)
        dataset_synth(&cfg);
    else
        dataset_prepare(&cfg);
    return EXIT_OK;
}
