// shards.h: the on-disk format of prepared data. This comment is its one specification.
//
// `trainer data prepare` writes into data.shard_dir:
//
//   dataset.meta                 vocabularies, train-set statistics, counts, fingerprint
//   <split>-<vshard>.shard       one file per split (train, valid, test) and virtual shard
//                                (vshard printed as 4 digits): the users of that unit
//
// All integers and floats are little-endian; hashes are hash_bytes() of hash.h.
//
// Shard file, version 1:
//   header   128 bytes, ShardHeader below; header_checksum = hash of its first 120 bytes,
//            payload_checksum = hash of everything after the header.
//   events   n_events records of event_bytes each, users one after another, each user's
//            events in time order (equal times keep file order):
//              f64 time          in data.time_unit (ISO-8601 input: seconds / unit)
//              i32 action        vocabulary id, 0 = unseen in training
//              i32 cat[n_cat]    vocabulary ids of the further categorical columns
//              f32 num[n_num]    raw numeric values (transform and normalisation happen when
//                                batches are built, with the statistics of dataset.meta)
//            then zero padding to a multiple of 8 bytes.
//   users    n_users ShardUser records: keyed hash of the user id (never the raw id), index
//            of the user's first event in this file, event count.
//
// dataset.meta, version 1: "LSTMMETA", then a sequence of fields written by meta_write() in
// a fixed order (see shards.c), then a u64 checksum of everything before it. It holds the
// data fingerprint (config keys that shape the data, the input files' sizes and mtimes,
// and the user-id key's fingerprint), per split and virtual shard the user/event counts
// and payload checksums, the statistics, and the vocabularies (id 0 is "<unk>").
//
// Virtual shards: users of each split are placed in V units balanced by event count
// (largest first into the least loaded unit). Rank r of P holds units [r V/P, (r+1) V/P).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define SHARD_VERSION 1
#define META_VERSION  1
enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, N_SPLITS };
extern const char *const SPLIT_NAMES[N_SPLITS];
int split_from_name(const char *name); // -1 if unknown

typedef struct {
    char magic[8]; // "LSTMSHRD"
    uint32_t version, split, vshard, n_vshards;
    uint32_t n_cat, n_num, event_bytes, reserved;
    uint64_t n_users, n_events;
    uint64_t data_fingerprint;
    uint64_t payload_checksum;
    uint8_t pad[48];
    uint64_t header_checksum;
} ShardHeader;
_Static_assert(sizeof(ShardHeader) == 128, "shard header is 128 bytes");

typedef struct {
    uint64_t user_hash;
    uint64_t first_event;
    uint32_t n_events;
    uint32_t reserved;
} ShardUser;

static inline uint32_t shard_event_bytes(int n_cat, int n_num) {
    return (uint32_t)((12 + 4 * n_cat + 4 * n_num + 7) / 8 * 8);
}
// Event field accessors (e points at one record).
static inline double ev_time(const uint8_t *e) {
    return *(const double *)e;
}
static inline int32_t ev_action(const uint8_t *e) {
    return *(const int32_t *)(e + 8);
}
static inline int32_t ev_cat(const uint8_t *e, int c) {
    return ((const int32_t *)(e + 12))[c];
}
static inline float ev_num(const uint8_t *e, int n_cat, int k) {
    return ((const float *)(e + 12 + 4 * n_cat))[k];
}

typedef struct {
    ShardHeader hdr;
    uint8_t *events;  // n_events * event_bytes
    ShardUser *users; // n_users
} Shard;

void shard_file_name(char *out, size_t cap, const char *dir, int split, int vshard);
// Loads and verifies one shard (magic, version, checksums, fingerprint, sizes).
// Returns 0, or -1 with the reason in err.
int shard_load(const char *path, uint64_t fingerprint, Shard *out, char *err, size_t errlen);
void shard_free(Shard *s);

typedef struct {
    uint64_t users, events, targets, dropped_users;
    uint64_t *shard_users, *shard_events, *shard_checksum; // n_vshards each
} SplitCounts;

typedef struct {
    uint32_t n_vshards, n_cat, n_num;
    int32_t engagement_index; // into num[], -1: none
    uint64_t fingerprint;
    double time_unit_seconds; // 0: no calendar features
    double gap_offset;
    int32_t numeric_log1p;
    double loggap_mean, loggap_std;
    double num_mean[CFG_LIST_MAX], num_std[CFG_LIST_MAX];
    int32_t vocab_size[1 + CFG_LIST_MAX]; // [0] actions, [1 + c] categorical column c
    char **vocab[1 + CFG_LIST_MAX];
    char column[2 + 2 * CFG_LIST_MAX][CFG_NAME_LEN]; // action, cats..., nums... (for reports)
    SplitCounts split[N_SPLITS];
    uint64_t rows_read, bad_rows;
    int32_t gap_input; // model.gap_input, set by dataset_open (not in the meta file)
} DataMeta;

int meta_write(const char *path, const DataMeta *m, char *err, size_t errlen);
int meta_read(const char *path, DataMeta *m, char *err, size_t errlen);
void meta_free(DataMeta *m);
void meta_alloc_counts(DataMeta *m); // allocates the per-shard arrays for n_vshards
