// checkpoint.c: `trainer checkpoint inspect FILE|RUNDIR`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"

int cmd_checkpoint(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[0], "inspect") != 0) {
        fprintf(stderr, "usage: trainer checkpoint inspect FILE|RUNDIR\n");
        return EXIT_USAGE;
    }
    char path[CFG_PATH_LEN + 64], err[1024];
    unsigned char *bytes;
    size_t size;
    if (checkpoint_resolve(argv[1], path, sizeof path, &bytes, &size, err, sizeof err) != 0) {
        fprintf(stderr, "error: %s\n", err);
        return EXIT_FATAL;
    }
    LoadedCheckpoint c;
    int rc = checkpoint_parse(bytes, size, &c, err, sizeof err);
    free(bytes);
    if (rc != 0) {
        fprintf(stderr, "error: %s: %s\n", path, err);
        return EXIT_FATAL;
    }
    checkpoint_print(&c, path);
    checkpoint_free(&c);
    return EXIT_OK;
}
