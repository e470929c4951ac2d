// vocab.h: string interning for categorical values (actions and further columns).
//
// During ingest every distinct value of a column gets a table id in order of first sight;
// the final vocabulary is built from the TRAINING split's counts: id 0 is "<unk>" (values
// unseen in training), then values by descending count, ties by byte order, so the same
// input always gives the same ids.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *arena;
    size_t arena_len, arena_cap;
    size_t *offsets; // per id, into arena
    uint32_t *lens;
    int64_t *train_count;
    int n, cap;
    int32_t *slots; // open addressing, -1 empty
    size_t n_slots;
} StrTable;

void strtab_init(StrTable *t);
void strtab_free(StrTable *t);
int strtab_intern(StrTable *t, const char *s, size_t len); // id >= 0
static inline const char *strtab_str(const StrTable *t, int id) {
    return t->arena + t->offsets[id];
}

// Vocabulary: remap[table id] = vocab id (0 = unknown); names[vocab id] for the meta file.
typedef struct {
    int size;       // including <unk>
    int32_t *remap; // n table ids
    char **names;   // size strings
} Vocab;

void vocab_build(const StrTable *t, Vocab *v);
void vocab_free(Vocab *v);
