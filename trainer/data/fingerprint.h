// fingerprint.h: what an experiment's prepared data is made from, as text, and its hash.
//
// One line per thing that shapes the shards: "KEY: VALUE" for the data-shaping config keys
// (the generator's synth.* keys too when data.source=synth), "input KEY NAME: size N digest D
// mtime S.NS" per input file, "user key: F" and "erasure: D". Synthetic inputs are named
// relative to synth.out_dir, so a copied or moved run directory asks for the same data.
// The fingerprint is the hash of the text without the mtimes: the same settings and file
// contents give the same fingerprint wherever the files are and whatever their times. A
// file's digest (a hash of the digests of its 16 MiB blocks) is taken from `prev` (the text
// stored with the shards, data.shard_dir/fingerprint.txt) when its name, size and mtime are
// unchanged, so only changed, touched or copied files are read.
#pragma once
#include <stdint.h>

#include "config.h"
#include "userkey.h"
#include "util.h"

// The config keys that shape the prepared data (data.source=synth adds SYNTH_KEYS).
extern const char *const FINGERPRINT_KEYS[];
extern const int N_FINGERPRINT_KEYS;
extern const char *const SYNTH_KEYS[];
extern const int N_SYNTH_KEYS;

// fatal() naming the key if an input is missing.
void fingerprint_text(const Config *cfg, const UserKey *key, const char *prev, StrBuf *out);
uint64_t fingerprint_hash(const char *text);
// Collective (every rank calls it): the inputs' digests, the blocks read by all ranks (rank r
// reads blocks r, r + size, ... of all inputs' blocks in order), as the input lines of a
// fingerprint text: on rank 0 a malloc'd `prev` with which fingerprint_text reads nothing
// more (the caller frees it); NULL on the other ranks. The same digests as one process reads.
char *fingerprint_digests(const Config *cfg, int rank, int size);
// The lines of wanted that differ from stored: "NAME (OLD -> NEW)", ", "-separated into out
// ("" when they are the same but for mtimes).
void fingerprint_diff(const char *stored, const char *wanted, char *out, size_t cap);
