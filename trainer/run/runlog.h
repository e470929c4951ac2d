// runlog.h: the run directory's log.jsonl, one JSON object per line (rank 0 only), and its
// TensorBoard mirror: every numeric member of a "step" or "valid" line is also written to
// RUNDIR/tb/ as the scalar "train/KEY" or "valid/KEY" at that line's step (tbevents.h).
//
// Events a run writes (`trainer report` reads them): "start" (identity: ranks, host, git
// commit, launcher, config and data hashes, resumed_from), "step" (every log.every steps:
// losses, lr, events/s, per-rank step and comm-wait seconds), "valid", "skip",
// "checkpoint" (step, stall_s).
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "tbevents.h"

typedef struct {
    FILE *f;
    char path[600];
    TbWriter *tb;
} RunLog;

void runlog_open(RunLog *log, const char *run_dir); // appends; opens a new TensorBoard file
// Writes {"time": <unix seconds>, <members>} and flushes; members is JSON text without braces.
void runlog_write(RunLog *log, const char *members);
// members plus "rank_step_s":[..],"rank_comm_s":[..] from secs (ranks, 2): per rank, the
// seconds of the interval's steps and of those spent blocked in communication.
void runlog_write_ranks(RunLog *log, const char *members, const double *secs, int ranks);
// The "start" line: who ran what, where (rank 0, after the data is known).
void runlog_start(RunLog *log, int ranks, const char *launcher, uint64_t config_hash,
                  uint64_t data_hash, int64_t resumed_from);
void runlog_close(RunLog *log);
// The commit the program was built from ("unknown" outside a git checkout).
const char *runlog_git_commit(void);
