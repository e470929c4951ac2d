// erasure_verify.c: see erasure_verify.h.
#include "erasure_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "dataset.h"
#include "erasure.h"
#include "hash.h"
#include "util.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int has(const uint64_t *v, size_t n, uint64_t x) {
    return bsearch(&x, v, n, sizeof x, cmp_u64) != NULL;
}

// The listed users as they appear in shards: the base keyed hash, or (given split files)
// that hash mixed with the split, as ingest names them; sorted, *n of them.
static uint64_t *candidate_hashes(const Config *cfg, const char *ids_path, Erasure *ids,
                                  size_t *n) {
    Config c2 = *cfg;
    snprintf(c2.data.exclude_users, sizeof c2.data.exclude_users, "%s", ids_path);
    UserKey key;
    userkey_load(cfg, &key);
    erasure_load(ids, &c2, &key);
    *n = ids->n * (1 + N_SPLITS);
    uint64_t *cand = xmalloc(sizeof(uint64_t) * (*n ? *n : 1));
    for (size_t i = 0; i < ids->n; i++) {
        cand[i * (1 + N_SPLITS)] = ids->hash[i];
        for (int s = 0; s < N_SPLITS; s++)
            cand[i * (1 + N_SPLITS) + 1 + s] = mix64(ids->hash[i] + (uint64_t)s * 0x9e3779b97f4a7c15ULL);
    }
    qsort(cand, *n, sizeof(uint64_t), cmp_u64);
    return cand;
}

// Users per split, and how many of them are listed; prints each listed training user.
static void count_listed(Dataset *ds, const uint64_t *cand, size_t n_cand, uint64_t *found,
                         uint64_t *users) {
    for (int s = 0; s < N_SPLITS; s++) {
        dataset_load_split(ds, s); // verifies every shard's checksum against dataset.meta
        for (int v = 0; v < ds->n_shards; v++) {
            const Shard *sh = &ds->shards[s][v];
            for (uint64_t u = 0; u < sh->hdr.n_users; u++) {
                users[s]++;
                if (!has(cand, n_cand, sh->users[u].user_hash)) continue;
                found[s]++;
                if (s == SPLIT_TRAIN)
                    printf("  trained on: user %016llx (virtual shard %d)\n",
                           (unsigned long long)sh->users[u].user_hash, v);
            }
        }
    }
}

int erasure_verify(const Config *cfg, const char *checkpoint, const char *ids_path) {
    char path[CFG_PATH_LEN + 64], err[1024];
    unsigned char *buf = NULL;
    size_t size = 0;
    if (checkpoint_resolve(checkpoint, path, sizeof path, &buf, &size, err, sizeof err) != 0)
        fatal("%s", err);
    LoadedCheckpoint ck;
    if (checkpoint_parse(buf, size, &ck, err, sizeof err) != 0) fatal("%s: %s", path, err);
    free(buf);
    char meta_path[CFG_PATH_LEN + 16];
    snprintf(meta_path, sizeof meta_path, "%s/dataset.meta", cfg->data.shard_dir);
    DataMeta meta;
    if (meta_read(meta_path, &meta, err, sizeof err) != 0) fatal("%s", err);
    Dataset ds;
    dataset_open_scoring(&ds, cfg, meta.fingerprint, 0, 1);
    meta_free(&meta);
    const uint64_t data_hash = dataset_content_hash(&ds.meta);
    if (data_hash != ck.d.data_hash) {
        printf("NOT VERIFIED: the shards in %s (data hash %016llx) are not the data %s was "
               "trained on (data hash %016llx)\n",
               cfg->data.shard_dir, (unsigned long long)data_hash, path,
               (unsigned long long)ck.d.data_hash);
        dataset_free(&ds), checkpoint_free(&ck);
        return 1;
    }
    Erasure ids;
    size_t n_cand;
    uint64_t *cand = candidate_hashes(cfg, ids_path, &ids, &n_cand);
    uint64_t found[N_SPLITS] = {0}, users[N_SPLITS] = {0};
    count_listed(&ds, cand, n_cand, found, users);
    const int same_list = ids.digest == ck.d.privacy.exclusion_digest;
    printf("%s: %d listed users (digest %016llx); checkpoint %s (data hash %016llx) %s\n",
           ids_path, ids.lines, (unsigned long long)ids.digest, path,
           (unsigned long long)ck.d.data_hash,
           ck.d.privacy.exclusion_digest == 0 ? "honoured no exclusion list"
           : same_list ? "honoured this very list"
                       : "honoured another exclusion list");
    printf("  shards verified: %llu training, %llu validation, %llu test users\n",
           (unsigned long long)users[SPLIT_TRAIN], (unsigned long long)users[SPLIT_VALID],
           (unsigned long long)users[SPLIT_TEST]);
    printf("  listed users found: %llu in training, %llu in validation, %llu in test\n",
           (unsigned long long)found[SPLIT_TRAIN], (unsigned long long)found[SPLIT_VALID],
           (unsigned long long)found[SPLIT_TEST]);
    int rc = found[SPLIT_TRAIN] ? 1 : 0;
    printf("%s\n", rc ? "NOT VERIFIED: listed users were trained on"
                      : "VERIFIED: none of the listed users was trained on");
    free(cand);
    erasure_free(&ids);
    dataset_free(&ds);
    checkpoint_free(&ck);
    return rc;
}
