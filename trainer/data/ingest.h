// ingest.h: event CSV files -> shards (`trainer data prepare`). Format: shards.h.
//
// Streaming in two passes: rows are parsed, validated and spread over temporary bucket
// files by user hash; then each bucket is sorted per user and time, users are balanced into
// virtual shards, and shards are written. Memory holds one bucket (a bounded slice of the
// input), the vocabularies and one small record per user, never the whole input.
#pragma once
#include <stdint.h>

#include "config.h"
#include "userkey.h"

typedef struct {
    double seconds;
    uint64_t rows, bad_rows, events, users, dropped_users;
    uint64_t excluded_users, consent_rows; // removed by data.exclude_users, data.consent_col
    size_t peak_rss;
} IngestReport;

// The fingerprint of the data an experiment asks for: data-shaping config keys, the input
// files' sizes and mtimes, the key's fingerprint. fatal() naming the key if an input is missing.
uint64_t data_fingerprint(const Config *cfg, const UserKey *key);
// Writes data.shard_dir (dataset.meta last, so a crash leaves no valid-looking half).
// The split of a user of a single input file (data.path): by an unkeyed hash of its raw id.
int user_split(const Config *cfg, const char *raw_id);
void data_prepare(const Config *cfg, const UserKey *key, uint64_t fingerprint,
                  IngestReport *report);
