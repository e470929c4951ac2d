// runstate.h: the run directory: its experiment, its overrides, refusing a foreign one.
//
// run.dir holds config.yaml (the resolved experiment), overrides.txt (every start's command
// line overrides, appended), log.jsonl, metrics.json and checkpoints/. A run refuses to start
// in a directory whose config.yaml is a different experiment unless told (--resume) to
// continue that directory with the new settings.
#pragma once
#include "config.h"

// Rank 0, before anything is written. fatal() with the differing keys on refusal.
void runstate_prepare(const Config *cfg, const char *exp_path, int n_overrides, char **overrides,
                      int allow_changed);
void runstate_checkpoint_dir(const Config *cfg, char *out, size_t cap);
