// segment_model.h: centroids.pb, a fitted segmentation that can be applied to any user:
// the feature kind, the standardisation, the k centroids, and the identity of the
// checkpoint whose model produced the features (format: proto/segments.proto). Written
// atomically; read back with every length and count checked. Next to checkpoint.c, this is
// the other protobuf-c user (run/ is the one layer that links it).
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SEGMENT_MODEL_VERSION 1

typedef struct {
    char ckpt_path[1100];
    int64_t step;
    uint64_t config_hash, data_hash, params_hash;
    char features[16], embedding[16], split[16];
    int k, dim;
    char (*names)[64]; // (dim)
    double *mean, *std; // (dim)
    double *centroids;  // (k, dim), standardised space
    int64_t *sizes;     // (k)
    double inertia;
    int64_t n_users;
    uint64_t seed;
} SegmentModel;

// The identity hash of a model's parameters (float32, as held in memory).
uint64_t segment_params_hash(const float *params, size_t n);
int segment_model_write(const char *path, const SegmentModel *m, char *err, size_t errlen);
// 0, or -1 with "path: reason" in err. The caller frees m with segment_model_free.
int segment_model_read(const char *path, SegmentModel *m, char *err, size_t errlen);
void segment_model_free(SegmentModel *m);
