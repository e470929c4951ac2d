// train.c: `trainer train EXP.yaml [--resume] [--set key=value]...`.
#include <stdlib.h>

#include "cli.h"
#include "train.h"

int cmd_train(int argc, char **argv) {
    CliArgs args;
    cli_parse(argc, argv, "train", "--set --resume", 1, &args);
    TrainArgs ta = {args.exp_path, args.n_overrides, args.overrides, args.resume};
    int status = train_main(&ta, &argc, &argv);
    free(args.overrides);
    return status;
}
