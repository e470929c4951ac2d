// runlog.c: see runlog.h.
#include "runlog.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#ifndef TRAINER_GIT_COMMIT
#define TRAINER_GIT_COMMIT "unknown"
#endif

const char *runlog_git_commit(void) {
    return TRAINER_GIT_COMMIT;
}

void runlog_open(RunLog *log, const char *run_dir) {
    snprintf(log->path, sizeof log->path, "%s/log.jsonl", run_dir);
    log->f = xfopen(log->path, "a");
    char tb_dir[620];
    snprintf(tb_dir, sizeof tb_dir, "%s/tb", run_dir);
    log->tb = tb_open(tb_dir);
}

// "key":number members of our own flat JSON text, to TensorBoard as "<group>/key".
static void mirror_scalars(RunLog *log, const char *members, double t) {
    const char *group = strstr(members, "\"event\":\"step\"")    ? "train"
                        : strstr(members, "\"event\":\"valid\"") ? "valid"
                                                                 : NULL;
    const char *sp = strstr(members, "\"step\":");
    if (!group || !sp || !log->tb) return;
    const long long step = strtoll(sp + 7, NULL, 10);
    for (const char *p = strchr(members, '"'); p; p = strchr(p, '"')) {
        const char *key = p + 1, *end = strchr(key, '"');
        if (!end || end[1] != ':') break;
        const char *val = end + 2, *next = NULL;
        if (*val == '"') { // strings hold no quotes in our logs
            next = strchr(val + 1, '"');
        } else if (*val == '[') {
            next = strchr(val, ']');
        } else {
            char *num_end;
            double v = strtod(val, &num_end);
            next = num_end;
            const int klen = (int)(end - key);
            if (num_end != val && klen < 100 && !(klen == 4 && strncmp(key, "step", 4) == 0)) {
                char tag[128];
                snprintf(tag, sizeof tag, "%s/%.*s", group, klen, key);
                tb_scalar(log->tb, step, t, tag, (float)v);
            }
        }
        if (!next || !(p = strchr(next, ','))) break;
    }
    tb_flush(log->tb);
}

void runlog_write(RunLog *log, const char *members) {
    if (!log->f) return;
    double t = wall_seconds();
    if (fprintf(log->f, "{\"time\":%.3f,%s}\n", t, members) < 0 || fflush(log->f) != 0)
        warnf("%s: cannot append to the log; continuing without it", log->path);
    mirror_scalars(log, members, t);
}

void runlog_write_ranks(RunLog *log, const char *members, const double *secs, int ranks) {
    StrBuf sb = {0};
    sb_append(&sb, members, strlen(members));
    for (int k = 0; k < 2; k++) {
        sb_appendf(&sb, ",\"%s\":[", k == 0 ? "rank_step_s" : "rank_comm_s");
        for (int r = 0; r < ranks; r++) sb_appendf(&sb, "%s%.5f", r ? "," : "", secs[2 * r + k]);
        sb_append(&sb, "]", 1);
    }
    runlog_write(log, sb.data);
    sb_free(&sb);
}

void runlog_start(RunLog *log, int ranks, const char *launcher, uint64_t config_hash,
                  uint64_t data_hash, int64_t resumed_from) {
    char host[256] = "unknown", line[1024];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20) *c = '_';
    snprintf(line, sizeof line,
             "\"event\":\"start\",\"ranks\":%d,\"launcher\":\"%s\",\"host\":\"%s\","
             "\"git_commit\":\"%s\",\"config_hash\":\"%016llx\",\"data_hash\":\"%016llx\","
             "\"resumed_from\":%lld",
             ranks, launcher, host, runlog_git_commit(), (unsigned long long)config_hash,
             (unsigned long long)data_hash, (long long)resumed_from);
    runlog_write(log, line);
}

void runlog_close(RunLog *log) {
    if (log->f) xfclose(log->f, log->path);
    log->f = NULL;
    tb_close(log->tb);
    log->tb = NULL;
}
