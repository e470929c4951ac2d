// segment_model.c: see segment_model.h.
#include "segment_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "segments.pb-c.h"
#include "util.h"

static const char MAGIC[8] = {'L', 'S', 'T', 'M', 'S', 'E', 'G', 'S'};

uint64_t segment_params_hash(const float *params, size_t n) {
    return hash_bytes(params, n * sizeof(float), 0x5e65);
}

int segment_model_write(const char *path, const SegmentModel *m, char *err, size_t errlen) {
    LstmTrainer__CheckpointIdentity id = LSTM_TRAINER__CHECKPOINT_IDENTITY__INIT;
    id.path = (char *)m->ckpt_path, id.step = m->step;
    id.config_hash = m->config_hash, id.data_hash = m->data_hash, id.params_hash = m->params_hash;
    LstmTrainer__SegmentModel msg = LSTM_TRAINER__SEGMENT_MODEL__INIT;
    msg.format_version = SEGMENT_MODEL_VERSION;
    msg.checkpoint = &id;
    msg.features = (char *)m->features, msg.embedding = (char *)m->embedding;
    msg.split = (char *)m->split;
    msg.k = m->k, msg.dim = m->dim;
    char **names = xmalloc(sizeof(char *) * (size_t)(m->dim + 1));
    for (int j = 0; j < m->dim; j++) names[j] = m->names[j];
    msg.n_feature_names = (size_t)m->dim, msg.feature_names = names;
    msg.n_mean = msg.n_std = (size_t)m->dim;
    msg.mean = m->mean, msg.std = m->std;
    msg.n_centroids = (size_t)m->k * (size_t)m->dim, msg.centroids = m->centroids;
    msg.n_sizes = (size_t)m->k, msg.sizes = m->sizes;
    msg.inertia = m->inertia, msg.n_users = m->n_users, msg.seed = m->seed;
    size_t len = lstm_trainer__segment_model__get_packed_size(&msg);
    uint8_t *buf = xmalloc(16 + len);
    lstm_trainer__segment_model__pack(&msg, buf + 16);
    memcpy(buf, MAGIC, 8);
    uint64_t h = hash_bytes(buf + 16, len, 0);
    for (int i = 0; i < 8; i++) buf[8 + i] = (uint8_t)(h >> (8 * i));
    int rc = write_file_atomic(path, buf, 16 + len, err, errlen);
    free(buf);
    free(names);
    return rc;
}

static int fail(char *err, size_t errlen, const char *path, const char *why) {
    snprintf(err, errlen, "%s: %s", path, why);
    return -1;
}

// Copies a parsed message into m after checking every count against k and dim.
static int from_message(const LstmTrainer__SegmentModel *msg, SegmentModel *m, const char *path,
                        char *err, size_t errlen) {
    if (msg->format_version != SEGMENT_MODEL_VERSION)
        return fail(err, errlen, path, "unknown format version (not written by this trainer)");
    const int k = msg->k, dim = msg->dim;
    if (k < 2 || k > 4096 || dim < 1 || dim > 1 << 20 || !msg->checkpoint ||
        msg->n_feature_names != (size_t)dim || msg->n_mean != (size_t)dim ||
        msg->n_std != (size_t)dim || msg->n_centroids != (size_t)k * (size_t)dim ||
        msg->n_sizes != (size_t)k)
        return fail(err, errlen, path, "inconsistent sizes (k, dim and the arrays disagree)");
    if (strcmp(msg->features, "model") != 0 && strcmp(msg->features, "handmade") != 0)
        return fail(err, errlen, path, "unknown feature kind");
    m->k = k, m->dim = dim;
    snprintf(m->ckpt_path, sizeof m->ckpt_path, "%s", msg->checkpoint->path);
    m->step = msg->checkpoint->step;
    m->config_hash = msg->checkpoint->config_hash;
    m->data_hash = msg->checkpoint->data_hash;
    m->params_hash = msg->checkpoint->params_hash;
    snprintf(m->features, sizeof m->features, "%s", msg->features);
    snprintf(m->embedding, sizeof m->embedding, "%s", msg->embedding);
    snprintf(m->split, sizeof m->split, "%s", msg->split);
    m->names = xcalloc((size_t)dim, sizeof *m->names);
    for (int j = 0; j < dim; j++) snprintf(m->names[j], 64, "%s", msg->feature_names[j]);
    m->mean = xmalloc(sizeof(double) * (size_t)dim);
    m->std = xmalloc(sizeof(double) * (size_t)dim);
    m->centroids = xmalloc(sizeof(double) * (size_t)k * (size_t)dim);
    m->sizes = xmalloc(sizeof(int64_t) * (size_t)k);
    memcpy(m->mean, msg->mean, sizeof(double) * (size_t)dim);
    memcpy(m->std, msg->std, sizeof(double) * (size_t)dim);
    memcpy(m->centroids, msg->centroids, sizeof(double) * (size_t)k * (size_t)dim);
    memcpy(m->sizes, msg->sizes, sizeof(int64_t) * (size_t)k);
    m->inertia = msg->inertia, m->n_users = msg->n_users, m->seed = msg->seed;
    return 0;
}

int segment_model_read(const char *path, SegmentModel *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    size_t size;
    uint8_t *buf = (uint8_t *)read_file(path, &size);
    if (!buf) {
        snprintf(err, errlen, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    int rc = -1;
    uint64_t h = 0;
    for (int i = 0; size >= 16 && i < 8; i++) h |= (uint64_t)buf[8 + i] << (8 * i);
    if (size < 16 || memcmp(buf, MAGIC, 8) != 0)
        fail(err, errlen, path, "not a segmentation file (centroids.pb written by trainer segment)");
    else if (hash_bytes(buf + 16, size - 16, 0) != h)
        fail(err, errlen, path, "corrupt (checksum mismatch)");
    else {
        LstmTrainer__SegmentModel *msg =
            lstm_trainer__segment_model__unpack(NULL, size - 16, buf + 16);
        if (!msg)
            fail(err, errlen, path, "corrupt (message does not parse)");
        else {
            rc = from_message(msg, m, path, err, errlen);
            lstm_trainer__segment_model__free_unpacked(msg, NULL);
        }
    }
    free(buf);
    if (rc != 0) segment_model_free(m);
    return rc;
}

void segment_model_free(SegmentModel *m) {
    free(m->names), free(m->mean), free(m->std), free(m->centroids), free(m->sizes);
    memset(m, 0, sizeof *m);
}
