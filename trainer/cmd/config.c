// config.c: `trainer config show EXP.yaml [--docs]` and `trainer config schema`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_config(int argc, char **argv) {
    if (argc >= 1 && strcmp(argv[0], "schema") == 0) {
        config_print_schema(stdout);
        return EXIT_OK;
    }
    if (argc < 1 || strcmp(argv[0], "show") != 0) {
        fprintf(stderr, "usage: trainer config show EXP.yaml [--set key=value]... [--docs]\n"
                        "       trainer config schema\n");
        return EXIT_USAGE;
    }
    CliArgs args;
    cli_parse(argc - 1, argv + 1, "config show", "--set --docs", 1, &args);
    Config cfg;
    cli_load_config(&args, &cfg);
    char *text = config_to_yaml(&cfg, args.docs);
    fputs(text, stdout);
    printf("# config hash: %016llx\n", (unsigned long long)config_hash(&cfg));
    free(text);
    free(args.overrides);
    return EXIT_OK;
}
