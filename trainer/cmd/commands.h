// commands.h: every `trainer` command, one handler each (in cmd/NAME.c), listed once in
// main.c's commands[] table, which gives usage, help and dispatch.
#pragma once

typedef struct {
    const char *name;                     // first word on the command line
    int (*run)(int argc, char **argv);    // gets the words after the name
    const char *usage;                    // lines for `trainer --help`, one per form
} Command;

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_drift(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_segment(int argc, char **argv);
int cmd_explain(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);
