// report.c: `trainer report RUNDIR|SWEEPDIR|OUTPUTDIR [--output FILE.html] [--no-validation]`:
// one self-contained HTML page about a training run (log.jsonl), a sweep (plan.txt) or
// another command's output directory (summary.json, *.csv); see report/report.h. Written
// atomically; default DIR/report.html.
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "util.h"

static int usage(const char *why) {
    fprintf(stderr,
            "error: trainer report: %s\nusage: trainer report RUNDIR|SWEEPDIR|OUTPUTDIR "
            "[--output FILE.html] [--no-validation]\n",
            why);
    return EXIT_USAGE;
}

int cmd_report(int argc, char **argv) {
    const char *dir = NULL, *output = NULL;
    int with_valid = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--output") == 0) {
            if (++i == argc) return usage("--output needs a file name");
            output = argv[i];
        } else if (strcmp(argv[i], "--no-validation") == 0) {
            with_valid = 0;
        } else if (argv[i][0] == '-') {
            char m[300];
            snprintf(m, sizeof m, "unknown option '%s'", argv[i]);
            return usage(m);
        } else if (dir) {
            return usage("one directory only");
        } else {
            dir = argv[i];
        }
    }
    if (!dir) return usage("which directory? (a run, a sweep or an output directory)");
    char probe[1200], out_path[1200], err[1400];
    double t0 = now_seconds();
    StrBuf page = {0};
    int rc;
    const char *kind;
    snprintf(probe, sizeof probe, "%s/log.jsonl", dir);
    if (path_exists(probe)) {
        kind = "training run";
        rc = report_run(&page, dir, with_valid, &argc, &argv, err, sizeof err);
    } else if (snprintf(probe, sizeof probe, "%s/plan.txt", dir), path_exists(probe)) {
        kind = "sweep";
        rc = report_sweep(&page, dir, err, sizeof err);
    } else if (!path_exists(dir)) {
        fprintf(stderr, "error: %s: no such directory\n", dir);
        return EXIT_FATAL;
    } else {
        kind = "output directory";
        rc = report_outputs(&page, dir, err, sizeof err);
    }
    if (rc != 0) {
        sb_free(&page);
        fprintf(stderr, "error: %s\n", err);
        return EXIT_FATAL;
    }
    snprintf(out_path, sizeof out_path, "%s", output ? output : "");
    if (!output) snprintf(out_path, sizeof out_path, "%s/report.html", dir);
    if (write_file_atomic(out_path, page.data, page.len, err, sizeof err) != 0) {
        sb_free(&page);
        fprintf(stderr, "error: %s\n", err);
        return EXIT_FATAL;
    }
    printf("report: %s %s -> %s (%zu bytes) in %.2f s\n", kind, dir, out_path, page.len,
           now_seconds() - t0);
    sb_free(&page);
    return EXIT_OK;
}
