// data.c: `trainer data synth|prepare|hash-ids EXP.yaml`.
//
// hash-ids reads raw user ids from stdin, one a line, and prints `id,user_hash` with the
// experiment's key: the data owner's way back from outputs keyed by user hash (segments,
// predictions, ...) to their own users. It is the only place a raw id and its hash appear
// together. With --split S the hash is that of S's users in the experiment's prepared shards
// (given split files mix the split into the hash, see userkey.h); without it, that of
// `--input` files and of one-file experiments.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "comm.h"
#include "dataset.h"
#include "erasure_verify.h"
#include "ingest.h"
#include "userkey.h"

// An id as one CSV field: quoted when it holds a comma, a quote or a CR.
static void put_csv_field(const char *s, size_t n) {
    if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\r', n)) {
        fwrite(s, 1, n, stdout);
        return;
    }
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"') putchar('"');
        putchar(s[i]);
    }
    putchar('"');
}

static int hash_ids(const Config *cfg, int split) {
    UserKey key;
    userkey_load(cfg, &key);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long n = 0, line_no = 0;
    printf("id,user_hash\n");
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        line_no++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (len > 0 && line[len - 1] == '\r') line[--len] = 0;
        if (len == 0 || memchr(line, 0, (size_t)len)) {
            fflush(stdout);
            fprintf(stderr, "error: stdin:%lld: %s (one raw user id a line)\n", line_no,
                    len == 0 ? "empty line" : "NUL byte in the id");
            free(line);
            return EXIT_USAGE;
        }
        uint64_t h = userkey_split_hash(userkey_hash_id(&key, line, (size_t)len), split);
        put_csv_field(line, (size_t)len);
        printf(",%016llx\n", (unsigned long long)h);
        n++;
    }
    free(line);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "error: stdout: write failed\n");
        return EXIT_FATAL;
    }
    fprintf(stderr, "hash-ids: %lld ids hashed with the key from %s\n", n, key.source);
    return EXIT_OK;
}

// `data prepare`: under mpirun or srun every rank takes part; run alone, no MPI at all.
static int prepare(const Config *cfg, int argc, char **argv) {
    if (strcmp(comm_launcher(), "singleton") == 0) {
        dataset_prepare(cfg, 0, 1);
        return EXIT_OK;
    }
    comm_init(&argc, &argv);
    const int rank = comm_rank(), size = comm_size();
    char why[256];
    if (ingest_ranks_error(cfg, size, why, sizeof why) != 0) { // every rank knows: exit 2, no abort
        if (rank == 0) fprintf(stderr, "error: %s\n", why);
        comm_finalize();
        return EXIT_USAGE;
    }
    comm_long_wait_begin(); // ranks wait on each other unevenly while preparing
    dataset_prepare(cfg, rank, size);
    comm_long_wait_end();
    comm_finalize();
    return EXIT_OK;
}

int cmd_data(int argc, char **argv) {
    const char *usage =
        "usage: trainer data synth EXP.yaml [--set key=value]...\n"
        "       trainer data prepare EXP.yaml [--set key=value]...\n"
        "       trainer data hash-ids EXP.yaml [--split S] < ids.txt\n"
        "       trainer data verify-excluded EXP.yaml --checkpoint FILE|RUNDIR --ids FILE\n";
    const int verify = argc >= 1 && strcmp(argv[0], "verify-excluded") == 0;
    const int hashing = argc >= 1 && strcmp(argv[0], "hash-ids") == 0;
    if (argc < 1 ||
        (strcmp(argv[0], "synth") != 0 && strcmp(argv[0], "prepare") != 0 && !verify && !hashing)) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    // --ids FILE (verify-excluded only) is taken out before the shared parser sees argv.
    const char *ids = NULL;
    char **rest = malloc(sizeof(char *) * (size_t)argc);
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        if (verify && strcmp(argv[i], "--ids") == 0 && i + 1 < argc)
            ids = argv[++i];
        else if (verify && strncmp(argv[i], "--ids=", 6) == 0)
            ids = argv[i] + 6;
        else
            rest[n_rest++] = argv[i];
    }
    CliArgs args;
    char what[32];
    snprintf(what, sizeof what, "data %s", argv[0]);
    cli_parse(n_rest, rest, what,
              verify ? "--set --checkpoint" : hashing ? "--set --split" : "--set", 1, &args);
    free(rest);
    if (verify && (!ids || !args.checkpoint)) {
        fprintf(stderr, "error: trainer data verify-excluded: --checkpoint and --ids are "
                        "required\n%s", usage);
        free(args.overrides);
        return EXIT_USAGE;
    }
    Config cfg;
    cli_load_config(&args, &cfg);
    free(args.overrides);
    if (verify) return erasure_verify(&cfg, args.checkpoint, ids);
    if (hashing)
        return hash_ids(&cfg,
                        args.split ? userkey_hash_split(&cfg, split_from_name(args.split)) : -1);
    if (strcmp(argv[0], "synth") == 0) {
        dataset_synth(&cfg);
        return EXIT_OK;
    }
    return prepare(&cfg, argc, argv);
}
