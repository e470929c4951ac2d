// runlog.c: see runlog.h.
#include "runlog.h"

#include <string.h>

#include "util.h"

void runlog_open(RunLog *log, const char *run_dir) {
    snprintf(log->path, sizeof log->path, "%s/log.jsonl", run_dir);
    log->f = xfopen(log->path, "a");
}

void runlog_write(RunLog *log, const char *members) {
    if (!log->f) return;
    if (fprintf(log->f, "{\"time\":%.3f,%s}\n", wall_seconds(), members) < 0 || fflush(log->f) != 0)
        warnf("%s: cannot append to the log; continuing without it", log->path);
}

void runlog_close(RunLog *log) {
    if (log->f) xfclose(log->f, log->path);
    log->f = NULL;
}
