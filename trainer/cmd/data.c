// data.c: `trainer data synth|prepare EXP.yaml`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"

int cmd_data(int argc, char **argv) {
    const char *usage = "usage: trainer data synth EXP.yaml [--set key=value]...\n"
                        "       trainer data prepare EXP.yaml [--set key=value]...\n";
    if (argc < 1 || (strcmp(argv[0], "synth") != 0 && strcmp(argv[0], "prepare") != 0)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    CliArgs args;
    char what[32];
    snprintf(what, sizeof what, "data %s", argv[0]);
    cli_parse(argc - 1, argv + 1, what, "--set", 1, &args);
    Config cfg;
    cli_load_config(&args, &cfg);
    free(args.overrides);
    if (strcmp(argv[0], "synth") == 0)
        dataset_synth(&cfg);
    else
        dataset_prepare(&cfg);
    return EXIT_OK;
}
