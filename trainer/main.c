// main.c: the `trainer` command line: parses the subcommand and hands over to its module.
//
// Subcommands are listed in usage() only once they work. Errors on the command line exit
// with status 2 and one line naming the bad argument.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "config.h"
#include "dataset.h"
#include "predict.h"
#include "sweep.h"
#include "train.h"
#include "util.h"

static void usage(FILE *out) {
    fprintf(
        out,
        "usage: trainer COMMAND [ARGS]\n"
        "\n"
        "commands:\n"
        "  train EXP.yaml [--resume]                   train (run under mpirun/srun for P ranks)\n"
        "  eval EXP.yaml --checkpoint FILE|RUNDIR [--split valid|test] [--input F.csv] [--output "
        "F.json]\n"
        "                                              score a split or any CSV in the "
        "experiment's format\n"
        "  predict EXP.yaml --checkpoint FILE|RUNDIR --input F.csv [--output F.csv] [--top N]\n"
        "                                              next action, time and engagement per user\n"
        "  data synth EXP.yaml                         write the synthetic users' CSVs (and best "
        "losses)\n"
        "  data prepare EXP.yaml                       (re)build the experiment's shards\n"
        "  checkpoint inspect FILE|RUNDIR              metadata and per-tensor statistics\n"
        "  sweep plan SWEEP.yaml DIR                   one directory per trial, with its resolved "
        "config\n"
        "  sweep run DIR [--trial i] [--launcher CMD]  run trials (skips DONE ones, retries the "
        "rest)\n"
        "  sweep summary DIR                           trials sorted by the sweep's metric; best "
        "config\n"
        "  config show EXP.yaml [--docs]               print the fully resolved experiment\n"
        "  config schema                               every key: type, default, range, doc\n"
        "  bench [--hidden H --layers L ... --json]    training speed vs the PyTorch reference and "
        "sgemm peak\n"
        "\n"
        "Commands that read an experiment accept --set key=value (repeatable).\n"
        "Exit status: 0 ok, 1 error, 2 bad usage or config, 3 non-finite training stopped,\n"
        "75 stopped by SIGTERM/SIGUSR1 after a checkpoint (requeue to resume).\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0) return cmd_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "predict") == 0) return cmd_predict(argc - 2, argv + 2);
    if (strcmp(cmd, "data") == 0) return cmd_data(argc - 2, argv + 2);
    if (strcmp(cmd, "checkpoint") == 0) return cmd_checkpoint(argc - 2, argv + 2);
    if (strcmp(cmd, "config") == 0) return cmd_config(argc - 2, argv + 2);
    if (strcmp(cmd, "sweep") == 0) return cmd_sweep(argc - 2, argv + 2);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    fprintf(stderr, "error: unknown command '%s' (run 'trainer --help')\n", cmd);
    return EXIT_USAGE;
}
