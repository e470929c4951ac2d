// runlog.h: the run directory's log.jsonl, one JSON object per line (rank 0 only).
#pragma once
#include <stdio.h>

typedef struct {
    FILE *f;
    char path[600];
} RunLog;

void runlog_open(RunLog *log, const char *run_dir); // appends
// Writes {"time": <unix seconds>, <members>} and flushes; members is JSON text without braces.
void runlog_write(RunLog *log, const char *members);
void runlog_close(RunLog *log);
