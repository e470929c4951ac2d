// erasure_verify.h: `trainer data verify-excluded EXP.yaml --checkpoint RUNDIR --ids FILE`.
//
// Proves from the prepared shards and the checkpoint that none of the users listed in FILE
// (raw ids or keyed hashes, as data.exclude_users) was trained on: the shards in
// data.shard_dir must be exactly the data the checkpoint was trained on (their content hash,
// which covers every shard's checksum, equals the checkpoint's data hash; every shard is
// loaded and verified), and no listed user is among their training users (nor, reported
// separately, their validation and test users). Prints counts and hashes only, never an id.
// Returns 0 (verified), 1 (a listed user is in the training data, or the data is not the
// checkpoint's).
#pragma once
#include "config.h"

int erasure_verify(const Config *cfg, const char *checkpoint, const char *ids_path);
