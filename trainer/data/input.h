// input.h: any CSV in an experiment's format read into one in-memory shard, for scoring
// (`eval --input`, `predict --input`, ...): same columns and bad-row policy as ingest, values
// mapped with the training vocabularies (unseen ones to <unk> = 0), user ids hashed with the
// experiment's key, events sorted by (user, time). Users of data.exclude_users and rows
// without consent (data.consent_col) are dropped, as at prepare.
#pragma once
#include "config.h"
#include "shards.h"

// Keeps users with at least min_events events whose index (in hash order) % size == rank.
// Counts of the whole file (the same on every rank): rows, bad rows skipped, and per
// vocabulary (0: actions, 1 + c: categorical column c) the rows whose value the training
// data never had (scored as <unk>).
void input_csv_to_shard(const Config *cfg, const DataMeta *meta, const char *path, int min_events,
                        int rank, int size, Shard *out, long long *n_rows, long long *n_bad,
                        long long *n_unseen);
