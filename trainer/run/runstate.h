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
#include "config.h"

// Rank 0: takes the run lock (idempotent); fatal_status(EXIT_USAGE) naming the holder.
void runstate_lock(const Config *cfg);

// Rank 0, before anything is written. fatal() with the differing keys on refusal.
void runstate_prepare(const Config *cfg, const char *exp_path, int n_overrides, char **overrides,
                      int allow_changed);
void runstate_checkpoint_dir(const Config *cfg, char *out, size_t cap);
