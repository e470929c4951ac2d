// userkey.h: the secret key of the keyed hash that replaces raw user ids.
//
// The key never comes from the experiment: it is taken from $TRAINER_USER_KEY (32 hex
// digits) or read from a key file: data.key_file, else $TRAINER_KEY_FILE, else
// ~/.config/lstm-trainer/user-id.key. A missing key file is created with 16 random bytes and
// mode 0600. The key's fingerprint (a hash of the key, not the key) goes into the data
// fingerprint so shards made under another key are rebuilt.
#pragma once
#include <stdint.h>

#include "config.h"

typedef struct {
    uint8_t key[16];
    char source[CFG_PATH_LEN + 32]; // "env TRAINER_USER_KEY" or the file path
    uint64_t fingerprint;
} UserKey;

void userkey_load(const Config *cfg, UserKey *out); // fatal() on any problem
uint64_t userkey_hash_id(const UserKey *k, const char *raw_id, size_t len);
// The user hash prepared shards (and every output keyed by them) carry: with given split
// files (synthetic data, data.train_path/valid_path/test_path) a user is (file, id), so the
// id's hash is mixed with the split; with one file split by user (data.path) and for
// `--input` files it is the id's hash itself (split = -1).
uint64_t userkey_split_hash(uint64_t id_hash, int split);
// The split argument of userkey_split_hash for users of `split` in this experiment's shards.
int userkey_hash_split(const Config *cfg, int split);
