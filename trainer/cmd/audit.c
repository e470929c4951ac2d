// audit.c: `trainer audit privacy EXP.yaml --checkpoint FILE|RUNDIR [--reference FILE|RUNDIR]
// [--output F.json]`: membership-inference attacks on a trained model (run/audit.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "cli.h"

int cmd_audit(int argc, char **argv) {
    const char *usage = "usage: trainer audit privacy EXP.yaml --checkpoint FILE|RUNDIR "
                        "[--reference FILE|RUNDIR] [--output F.json] [--set key=value]...\n";
    if (argc < 1 || strcmp(argv[0], "privacy") != 0) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    // --reference is this command's own; the rest goes through the shared parser.
    const char *reference = NULL;
    char **rest = malloc(sizeof(char *) * (size_t)argc);
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reference") == 0 && i + 1 < argc)
            reference = argv[++i];
        else if (strncmp(argv[i], "--reference=", 12) == 0)
            reference = argv[i] + 12;
        else
            rest[n_rest++] = argv[i];
    }
    CliArgs args;
    cli_parse(n_rest, rest, "audit privacy", "--set --checkpoint --output", 1, &args);
    free(rest);
    if (!args.checkpoint) {
        fprintf(stderr, "error: trainer audit privacy: --checkpoint is required\n%s", usage);
        free(args.overrides);
        return EXIT_USAGE;
    }
    int rc = audit_privacy_main(args.exp_path, args.n_overrides, args.overrides, args.checkpoint,
                                reference, args.output, &argc, &argv);
    free(args.overrides);
    return rc;
}
