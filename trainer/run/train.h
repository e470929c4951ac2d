// train.h: `trainer train`: the training loop, where config, data, model, optimizer,
// communication and checkpoints meet.
#pragma once

typedef struct {
    const char *exp_path;
    int n_overrides;
    char **overrides; // "key=value" (--set)
    int resume;       // continue this run dir even though the experiment changed
} TrainArgs;

// Brings comm up (argc/argv for MPI), trains, and returns the exit status.
int train_main(const TrainArgs *args, int *argc, char ***argv);
