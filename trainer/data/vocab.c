// vocab.c: see vocab.h.
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

void strtab_init(StrTable *t) {
    memset(t, 0, sizeof *t);
    t->n_slots = 1024;
    t->slots = xmalloc(sizeof(int32_t) * t->n_slots);
    memset(t->slots, 0xff, sizeof(int32_t) * t->n_slots);
}

void strtab_free(StrTable *t) {
    free(t->arena), free(t->offsets), free(t->lens), free(t->train_count), free(t->slots);
    memset(t, 0, sizeof *t);
}

static void grow_slots(StrTable *t) {
    size_t n = t->n_slots * 2;
    int32_t *slots = xmalloc(sizeof(int32_t) * n);
    memset(slots, 0xff, sizeof(int32_t) * n);
    for (int id = 0; id < t->n; id++) {
        uint64_t h = hash_bytes(t->arena + t->offsets[id], t->lens[id], 0);
        size_t i = h & (n - 1);
        while (slots[i] >= 0) i = (i + 1) & (n - 1);
        slots[i] = id;
    }
    free(t->slots);
    t->slots = slots;
    t->n_slots = n;
}

int strtab_intern(StrTable *t, const char *s, size_t len) {
    uint64_t h = hash_bytes(s, len, 0);
    size_t i = h & (t->n_slots - 1);
    while (t->slots[i] >= 0) {
        int id = t->slots[i];
        if (t->lens[id] == len && memcmp(t->arena + t->offsets[id], s, len) == 0) return id;
        i = (i + 1) & (t->n_slots - 1);
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->offsets = xrealloc(t->offsets, sizeof(size_t) * (size_t)t->cap);
        t->lens = xrealloc(t->lens, sizeof(uint32_t) * (size_t)t->cap);
        t->train_count = xrealloc(t->train_count, sizeof(int64_t) * (size_t)t->cap);
    }
    if (t->arena_len + len + 1 > t->arena_cap) {
        t->arena_cap = t->arena_cap ? t->arena_cap * 2 : 4096;
        while (t->arena_cap < t->arena_len + len + 1) t->arena_cap *= 2;
        t->arena = xrealloc(t->arena, t->arena_cap);
    }
    int id = t->n++;
    memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = 0;
    t->offsets[id] = t->arena_len;
    t->lens[id] = (uint32_t)len;
    t->train_count[id] = 0;
    t->arena_len += len + 1;
    t->slots[i] = id;
    if ((size_t)t->n * 2 > t->n_slots) grow_slots(t);
    return id;
}

static const StrTable *g_sort_table; // qsort has no context argument

static int by_count_then_bytes(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    const StrTable *t = g_sort_table;
    if (t->train_count[x] != t->train_count[y])
        return t->train_count[x] > t->train_count[y] ? -1 : 1;
    return strcmp(strtab_str(t, x), strtab_str(t, y));
}

void vocab_build(const StrTable *t, Vocab *v) {
    int *ids = xmalloc(sizeof(int) * (size_t)(t->n + 1));
    int n = 0;
    for (int id = 0; id < t->n; id++)
        if (t->train_count[id] > 0) ids[n++] = id;
    g_sort_table = t;
    qsort(ids, (size_t)n, sizeof(int), by_count_then_bytes);
    v->size = n + 1;
    v->remap = xmalloc(sizeof(int32_t) * (size_t)(t->n + 1));
    for (int id = 0; id < t->n; id++) v->remap[id] = 0;
    v->names = xmalloc(sizeof(char *) * (size_t)v->size);
    v->names[0] = str_dup("<unk>");
    for (int k = 0; k < n; k++) {
        v->remap[ids[k]] = k + 1;
        v->names[k + 1] = str_dup(strtab_str(t, ids[k]));
    }
    free(ids);
}

void vocab_free(Vocab *v) {
    for (int i = 0; v->names && i < v->size; i++) free(v->names[i]);
    free(v->names);
    free(v->remap);
    memset(v, 0, sizeof *v);
}
