// runstate.h: the run directory: its experiment, its overrides, refusing a foreign one.
//
// run.dir holds config.yaml (the resolved experiment), overrides.txt (every start's command
// line overrides, appended), log.jsonl, metrics.json and checkpoints/. A run refuses to start
// in a directory whose config.yaml is a different experiment unless told (--resume) to
// continue that directory with the new settings.
//
// A training run holds run.dir/lock (flock, exclusive) from runstate_prepare until its process
// ends; a second trainer on the same directory exits 2 naming the holder's host and pid. A
// dead holder's lock is released by the kernel (no stale locks). Readers (eval, predict,
// checkpoint inspect) take no lock.
#pragma once
#include <stdint.h>

#include "config.h"
#include "util.h"

// Rank 0: takes the run lock (idempotent); fatal_status(EXIT_USAGE) naming the holder.
void runstate_lock(const Config *cfg);

// Rank 0, before anything is written: takes the lock and refuses (exit 2, naming the
// differing keys) a directory holding another experiment unless allow_changed. Writes nothing.
void runstate_check(const Config *cfg, int allow_changed);
// Rank 0, once the start is accepted (data and checkpoint checked): writes config.yaml (the
// replaced one kept as config.prev-TIME.yaml) and appends this start to overrides.txt. A
// refused start never gets here, so it changes nothing on disk.
void runstate_commit(const Config *cfg, const char *exp_path, int n_overrides, char **overrides);
void runstate_checkpoint_dir(const Config *cfg, char *out, size_t cap);

// Every start of `train` that ends through the training loop (status 0, 3 or 75) appends a
// segment event to log.jsonl: {"event":"segment","from_step","to_step","train_seconds",
// "exit"}. This reads them back: a JSON array into out, and their total seconds.
void runstate_segments(const char *run_dir, StrBuf *out, double *total_seconds);

// With $TRAINER_EXIT_FILE set (cluster/train.sbatch sets it), rank 0 writes its exit status
// there ("status N\nstep S\ncheckpoint PATH\n"): launchers do not always pass it on (mpirun
// exits 1 when it is itself sent SIGTERM, as scancel does, while the ranks exit 75).
void runstate_record_exit(int status, int64_t step, const char *checkpoint_path);
