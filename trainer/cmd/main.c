// main.c: the `trainer` command line: one table of commands, usage from it, dispatch by it.
//
// Errors on the command line exit with status 2 and one line naming the bad argument.
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "util.h"

// Each usage line: "FORM\tWHAT IT DOES" (a form may take two lines with "\n" + indent).
static const Command commands[] = {
    {"train", cmd_train,
     "train EXP.yaml [--resume]\ttrain (run under mpirun/srun for P ranks)\n"},
    {"eval", cmd_eval,
     "eval EXP.yaml --checkpoint FILE|RUNDIR [--split train|valid|test] [--input F.csv] "
     "[--output F.json]\n\tscore a split (default: test) or any CSV in the experiment's format\n"},
    {"predict", cmd_predict,
     "predict EXP.yaml --checkpoint FILE|RUNDIR --input F.csv [--output F.csv] [--top N]\n"
     "  [--explain [--target T] [--steps M]]\tnext action (top N, default 3), time and\n"
     "\tengagement per user (default output ./predictions.csv); --explain: why\n"
     "predict ... --segments DIR\talso each user's segment (of `trainer segment`)\n"},
    {"explain", cmd_explain,
     "explain EXP.yaml --checkpoint FILE|RUNDIR (--split S | --input F.csv) --output DIR\n"
     "  [--users N] [--per-user N] [--target predicted|action:NAME|gap] [--steps M]\n"
     "  [--max-steps M] [--window N] [--sanity]\twhy: attributions per past event and "
     "feature group;\n"
     "  --target change [--flag-rate R]: the change-point evidence of the users score flags "
     "for it\n"},
    {"drift", cmd_drift,
     "drift EXP.yaml --checkpoint FILE|RUNDIR --input NEW.csv [--output F.json]\n"
     "\thave new events drifted from the training data? per-feature shift, the model's NLL,\n"
     "\tnew and vanished values, a verdict (default output run.dir/drift.json)\n"},
    {"segment", cmd_segment,
     "segment EXP.yaml --checkpoint FILE|RUNDIR --output DIR [--split S | --input F.csv]\n"
     "        [--k K|auto] [--features model|handmade] [--embedding mean|last|last+mean]\n"
     "        [--restarts N] [--force]\tuser segments from the trained model (k-means)\n"},
    {"score", cmd_score,
     "score EXP.yaml --checkpoint FILE|RUNDIR [--split S | --input F.csv] --output DIR\n"
     "      [--events] [--flag-rate R] [--truth truth.csv]\tirregular users: scores, flags, "
     "reasons\n"},
    {"serve", cmd_serve,
     "serve EXP.yaml --checkpoint FILE|RUNDIR [--state FILE] [--max-batch N] [--max-delay-ms D]\n"
     "      [--snapshot-every N] [--input FIFO] < events.csv > scores.jsonl\tlive scores, one "
     "JSON line per event\n"},
    {"data", cmd_data,
     "data synth EXP.yaml\twrite the synthetic users' CSVs (and best losses)\n"
     "data prepare EXP.yaml\t(re)build the experiment's shards\n"
     "data hash-ids EXP.yaml < ids.txt\tprint id,user_hash per raw id (the way back to your users)\n"
     "data verify-excluded EXP.yaml --checkpoint RUNDIR --ids FILE\tprove no listed user "
     "was trained on\n"},
    {"audit", cmd_audit,
     "audit privacy EXP.yaml --checkpoint RUNDIR [--reference RUNDIR] [--output F.json]\n"
     "\tmembership-inference attacks: AUC, TPR at 0.1% FPR, with epsilon\n"},
    {"checkpoint", cmd_checkpoint,
     "checkpoint inspect FILE|RUNDIR\tmetadata and per-tensor statistics\n"},
    {"sweep", cmd_sweep,
     "sweep plan SWEEP.yaml DIR\tone directory per trial, with its resolved config\n"
     "sweep run DIR [--trial i] [--launcher CMD]\trun trials (skips DONE ones, retries the "
     "rest)\n"
     "sweep summary DIR\ttrials sorted by the sweep's metric; best config\n"},
    {"config", cmd_config,
     "config show EXP.yaml [--docs]\tprint the fully resolved experiment\n"
     "config schema\tevery key: type, default, range, doc\n"},
    {"report", cmd_report,
     "report RUNDIR|SWEEPDIR|OUTPUTDIR [--output FILE.html] [--no-validation]\n"
     "\tone self-contained HTML page of charts (DIR/report.html)\n"},
    {"bench", cmd_bench,
     "bench [--hidden H --layers L ... --json]\ttraining speed vs the PyTorch reference and "
     "sgemm peak\n"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

// Prints "  FORM<pad>WHAT" per line of a usage string; a form too long for the column puts
// its description on the next line.
static void print_usage_lines(FILE *out, const char *u) {
    const int col = 46;
    while (*u) {
        const char *eol = strchr(u, '\n'), *tab = memchr(u, '\t', (size_t)(eol - u));
        int form_len = (int)((tab ? tab : eol) - u);
        if (form_len > 0) fprintf(out, "  %.*s", form_len, u);
        if (tab) {
            int used = form_len > 0 ? 2 + form_len : 0;
            if (used >= col) fprintf(out, "\n"), used = 0;
            fprintf(out, "%*s%.*s", col - used, "", (int)(eol - tab - 1), tab + 1);
        }
        fprintf(out, "\n");
        u = eol + 1;
    }
}

static void usage(FILE *out) {
    fprintf(out, "usage: trainer COMMAND [ARGS]\n\ncommands:\n");
    for (int i = 0; i < N_COMMANDS; i++) print_usage_lines(out, commands[i].usage);
    fprintf(out,
            "\n"
            "Commands that read an experiment accept --set key=value (repeatable).\n"
            "Exit status: 0 ok, 1 error, 2 bad usage or config, 3 non-finite training stopped,\n"
            "75 stopped by SIGTERM/SIGUSR1 after a checkpoint (requeue to resume).\n");
}

int main(int argc, char **argv) {
    // Line-buffered even into a pipe or a Slurm output file: the start-up lines (run, data,
    // model) arrive when they happen, not when the buffer fills.
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "error: unknown command '%s' (run 'trainer --help')\n", argv[1]);
    return EXIT_USAGE;
}
