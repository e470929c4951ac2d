// dataset.h: making sure an experiment's data is prepared, and loading a rank's share.
//
// dataset_ensure_prepared() runs on one process (rank 0; dataset_ensure_prepared_all on every
// rank, which then all prepare together): it regenerates synthetic CSVs
// whose generator settings changed, and re-prepares shards that are missing or whose
// fingerprint differs from the experiment's, under an exclusive lock of the shard directory
// (so concurrent sweep trials sharing data.shard_dir prepare it once). Every rank then opens
// the meta file and loads only the virtual shards it holds.
#pragma once
#include <stdint.h>

#include "config.h"
#include "shards.h"

typedef struct {
    DataMeta meta;
    char dir[CFG_PATH_LEN];
    uint64_t fingerprint;
    int rank, size;
    int first_shard, n_shards; // this rank's virtual shards: [first, first + n)
    Shard *shards[N_SPLITS];   // n_shards each, NULL until loaded
} Dataset;

// Returns the fingerprint of the prepared data (prints what it did). The fingerprint's text
// (fingerprint.h) is kept as data.shard_dir/fingerprint.txt, so "stale" names what differs.
uint64_t dataset_ensure_prepared(const Config *cfg);
// The same, collective over `size` ranks (comm.h): rank 0 decides and holds the lock; if the
// data must be prepared, every rank takes part (ingest.h). Every rank gets the fingerprint.
uint64_t dataset_ensure_prepared_all(const Config *cfg, int rank, int size);

// What data.shard_dir holds compared with what cfg asks for, reading only: DATA_FRESH,
// DATA_STALE (why: the differing keys and input files, or the damage) or DATA_MISSING.
enum { DATA_FRESH, DATA_STALE, DATA_MISSING };
int dataset_state(const Config *cfg, uint64_t *fingerprint, char *why, size_t cap);

// For commands that read a run (eval, predict, score, segment, explain): never rebuilds
// data.shard_dir. Fresh shards are used as they are; missing ones are prepared in place
// (nothing there to harm); stale or damaged ones are left alone and the data is prepared in
// a scratch directory next to them, DIR.scratch-PID (synth.out_dir's too when the generator's
// settings changed), removed at exit: cfg is pointed there. why: what was stale ("" if not).
uint64_t dataset_prepare_for_reading(Config *cfg, char *why, size_t cap);
// Opens dataset.meta (fatal if missing, corrupt, or of other data); checks that size
// divides the number of virtual shards.
void dataset_open(Dataset *d, const Config *cfg, uint64_t fingerprint, int rank, int size);
// As dataset_open for scoring (eval, predict), where any number of ranks will do: rank r
// holds virtual shards [r*V/size, (r+1)*V/size), none when size > V.
void dataset_open_scoring(Dataset *d, const Config *cfg, uint64_t fingerprint, int rank, int size);
void dataset_load_split(Dataset *d, int split); // loads and verifies this rank's shards
void dataset_free(Dataset *d);
// A hash of what the prepared data holds (statistics, vocabularies, shard checksums), not of
// where it came from: re-preparing identical input gives the same value. Checkpoints record
// it, so a model is never resumed or scored against data it was not trained with.
uint64_t dataset_content_hash(const DataMeta *m);
// `trainer data synth`: writes the generator's CSVs and the hash of its settings.
void dataset_synth(const Config *cfg);
// `trainer data prepare`: (re)builds the shards unconditionally, under the directory lock
// (rank 0 holds it); collective over `size` ranks (1: this process alone).
void dataset_prepare(const Config *cfg, int rank, int size);
// Event counts this rank and all ranks hold in a split (for the balance report).
uint64_t dataset_rank_events(const Dataset *d, int split, int rank);
