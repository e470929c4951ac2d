// ingest.h: event CSV files -> shards (`trainer data prepare`). Format: shards.h.
//
// Streaming in two passes: rows are parsed, validated and spread over temporary bucket
// files by user hash; then each bucket is sorted per user and time, users are balanced into
// virtual shards, and shards are written. Memory holds one bucket (a bounded slice of the
// input; beyond data.prepare_mem_mb it is sorted in runs on disk), the vocabularies and one
// small record per user, never the whole input. Under mpirun every rank takes part
// (ingest_int.h says how), with the same shards as one process.
#pragma once
#include <stdint.h>

#include "config.h"
#include "shards.h"
#include "userkey.h"

typedef struct {
    double seconds;
    uint64_t rows, bad_rows, events, users, dropped_users;
    uint64_t excluded_users, consent_rows; // removed by data.exclude_users, data.consent_col
    size_t peak_rss;
} IngestReport;

// One input file: a setting's file, or one part file of a directory or glob (partfiles.h).
typedef struct {
    char path[CFG_PATH_LEN];
    const char *key; // config key naming it, for messages
    int split;       // SPLIT_* or -1: split by user
    int n_parts;     // files of its setting: an empty part of several is allowed
} Input;
// Every input file in reading order: a malloc'd array of *n (the caller frees it).
Input *list_inputs(const Config *cfg, int *n);
// Writes data.shard_dir (dataset.meta last, so a crash leaves no valid-looking half).
// The split of a user of a single input file (data.path): by an unkeyed hash of its raw id.
int user_split(const Config *cfg, const char *raw_id);
// Collective over `size` ranks (comm.h; size 1: this process alone), which must divide
// data.virtual_shards; the shards are the same bytes for any such size.
void data_prepare(const Config *cfg, const UserKey *key, uint64_t fingerprint,
                  IngestReport *report, int rank, int size);
// Exit 2 naming the problem when `size` ranks cannot prepare (size does not divide V).
// 0 when `size` ranks can prepare cfg's data, else -1 with the reason in msg (the rank count
// must divide data.virtual_shards, at most 65535 ranks).
int ingest_ranks_error(const Config *cfg, int size, char *msg, size_t cap);
// The same, ending the program with exit 2 (usage) and the reason.
void ingest_check_ranks(const Config *cfg, int size);
