// ingest_store.c: this rank's buckets while pass 1 fills them (ingest_int.h). Records stay in
// memory, in fixed-size chunks per bucket, while all of them fit in half of
// data.prepare_mem_mb (the other half is for the exchange buffers, qsort's scratch and the
// user table); the record that would go beyond it spills every bucket to its file, and from
// then on this rank's buckets are files, sorted on disk as before. In memory, a bucket is
// never written, sorted into a .sorted file or read back: pass 2a sorts it in place and the
// write pass takes it from there. Chunks are mapped, not malloc'd, so that a chunk freed
// while pass 2a gathers its bucket goes back to the system at once (malloc would keep freed
// heap chunks, and the peak would be twice the records).
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ingest_int.h"
#include "util.h"

void store_open(Ingest *g) {
    g->bucket = xcalloc((size_t)g->n_buckets, sizeof(FILE *));
    g->mem = xcalloc((size_t)g->n_buckets, sizeof(BucketMem));
    g->sorted = xcalloc((size_t)g->n_buckets, sizeof(unsigned char *));
    g->n_sorted = xcalloc((size_t)g->n_buckets, sizeof(size_t));
    g->mem_budget = g->mem_bytes / 2;
    // Chunks of a 16th of a bucket's share: little waste in each bucket's last one, and at
    // most 16 per bucket (16K mappings) at full budget.
    const int mine = (g->n_buckets - g->rank + g->size - 1) / g->size;
    size_t chunk = g->mem_budget / (size_t)(mine > 0 ? mine : 1) / 16;
    chunk = chunk < (64 << 10) ? (64 << 10) : chunk;
    g->chunk_bytes = chunk / g->rec_bytes * g->rec_bytes;
}

static unsigned char *chunk_alloc(const Ingest *g) {
    void *p = mmap(NULL, g->chunk_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        fatal("data prepare: cannot map %zu bytes for a bucket (%s)", g->chunk_bytes, strerror(errno));
    return p;
}

static void chunk_free(const Ingest *g, unsigned char *chunk) {
    munmap(chunk, g->chunk_bytes);
}

static void bucket_write(const Ingest *g, int b, const void *data, size_t bytes) {
    if (bytes && fwrite(data, bytes, 1, g->bucket[b]) != 1) {
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        fatal("%s: write failed (%s)", path, strerror(errno));
    }
}

// Beyond the budget: every bucket of this rank to its file, the memory freed.
static void spill(Ingest *g) {
    for (int b = g->rank; b < g->n_buckets; b += g->size) {
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        g->bucket[b] = xfopen(path, "wb");
        setvbuf(g->bucket[b], NULL, _IOFBF, 1 << 16);
        BucketMem *m = &g->mem[b];
        for (size_t k = 0; k < m->n_chunks; k++) {
            size_t left = m->n * g->rec_bytes - k * g->chunk_bytes;
            bucket_write(g, b, m->chunk[k], left < g->chunk_bytes ? left : g->chunk_bytes);
            chunk_free(g, m->chunk[k]);
        }
        free(m->chunk);
        memset(m, 0, sizeof *m);
    }
    g->mem_used = 0;
    g->spilled = 1;
}

void store_put(Ingest *g, const unsigned char *rec) {
    const int b = bucket_of(g, REC_USER(rec));
    if (!g->spilled) {
        BucketMem *m = &g->mem[b];
        const size_t per = g->chunk_bytes / g->rec_bytes;
        if (m->n == m->n_chunks * per) { // the last chunk is full (or there is none)
            if (g->mem_used + g->chunk_bytes > g->mem_budget) {
                spill(g);
                bucket_write(g, b, rec, g->rec_bytes);
                return;
            }
            if (m->n_chunks == m->cap_chunks) {
                m->cap_chunks = m->cap_chunks ? 2 * m->cap_chunks : 16;
                m->chunk = xrealloc(m->chunk, sizeof(unsigned char *) * m->cap_chunks);
            }
            m->chunk[m->n_chunks++] = chunk_alloc(g);
            g->mem_used += g->chunk_bytes;
        }
        memcpy(m->chunk[m->n_chunks - 1] + m->n % per * g->rec_bytes, rec, g->rec_bytes);
        m->n++;
        return;
    }
    bucket_write(g, b, rec, g->rec_bytes);
}

void store_close(Ingest *g) {
    if (!g->spilled) return;
    for (int b = g->rank; b < g->n_buckets; b += g->size) {
        char path[CFG_PATH_LEN + 96];
        bucket_path(g, b, "", path, sizeof path);
        xfclose(g->bucket[b], path);
        g->bucket[b] = NULL;
    }
}

unsigned char *store_take(Ingest *g, int b, size_t *n) {
    if (g->spilled) return NULL;
    BucketMem *m = &g->mem[b];
    const size_t bytes = m->n * g->rec_bytes;
    unsigned char *recs = xmalloc(bytes ? bytes : 1);
    for (size_t k = 0; k < m->n_chunks; k++) {
        size_t left = bytes - k * g->chunk_bytes;
        memcpy(recs + k * g->chunk_bytes, m->chunk[k], left < g->chunk_bytes ? left : g->chunk_bytes);
        chunk_free(g, m->chunk[k]);
        g->mem_used -= g->chunk_bytes;
    }
    *n = m->n;
    free(m->chunk);
    memset(m, 0, sizeof *m);
    return recs;
}

void store_free(Ingest *g) {
    for (int b = 0; b < g->n_buckets; b++) {
        for (size_t k = 0; k < g->mem[b].n_chunks; k++) chunk_free(g, g->mem[b].chunk[k]);
        free(g->mem[b].chunk);
        free(g->sorted[b]);
    }
    free(g->mem), free(g->sorted), free(g->n_sorted), free(g->bucket);
    g->mem = NULL, g->sorted = NULL, g->n_sorted = NULL, g->bucket = NULL;
}
