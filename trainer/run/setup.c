// setup.c: see setup.h.
#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "fingerprint.h"

ModelShape model_shape_from(const Config *c, const DataMeta *m, int max_lanes) {
    ModelShape s;
    memset(&s, 0, sizeof s);
    s.n_actions = m->vocab_size[0];
    s.action_embed = (int)c->model.action_embed;
    s.n_cat = (int)m->n_cat;
    for (int k = 0; k < s.n_cat; k++) s.cat_vocab[k] = m->vocab_size[1 + k];
    s.cat_embed = (int)c->model.cat_embed;
    s.n_dense = feature_spec(m).n_dense;
    s.hidden = (int)c->model.hidden;
    s.layers = (int)c->model.layers;
    s.engagement = c->model.engagement_head && m->engagement_index >= 0;
    s.time_mix = (int)c->model.time_mixture;
    s.max_lanes = max_lanes;
    s.window = (int)c->train.window;
    return s;
}

int model_shape_check(const ModelShape *have, const ModelShape *want, char *err, size_t errlen) {
    TensorInfo a[MODEL_MAX_TENSORS], b[MODEL_MAX_TENSORS];
    int na = model_tensors(have, a), nb = model_tensors(want, b);
    for (int k = 0; k < (na > nb ? na : nb); k++) {
        if (k < na && k < nb && strcmp(a[k].name, b[k].name) == 0 && a[k].rows == b[k].rows &&
            a[k].cols == b[k].cols)
            continue;
        snprintf(err, errlen,
                 "its model does not match the experiment: %s is %dx%d there, %s is %dx%d here "
                 "(H=%d L=%d K=%d there, H=%d L=%d K=%d here)",
                 k < na ? a[k].name : "(none)", k < na ? a[k].rows : 0, k < na ? a[k].cols : 0,
                 k < nb ? b[k].name : "(none)", k < nb ? b[k].rows : 0, k < nb ? b[k].cols : 0,
                 have->hidden, have->layers, have->n_actions, want->hidden, want->layers,
                 want->n_actions);
        return -1;
    }
    return 0;
}

LossConfig loss_config_from(const Config *c, const DataMeta *m) {
    LossConfig lc = {.w_action = c->loss.action,
                     .w_time = c->loss.time,
                     .w_eng = c->loss.engagement,
                     .loggap_mean = m->loggap_mean,
                     .loggap_std = m->loggap_std,
                     .gap_offset = m->gap_offset,
                     .top_k = (int)c->eval.top_k,
                     .time_point = strcmp(c->eval.time_point, "mean") == 0 ? TIME_POINT_MEAN
                                                                          : TIME_POINT_MEDIAN};
    return lc;
}

OptimConfig optim_config_from(const Config *cfg) {
    OptimConfig oc;
    memset(&oc, 0, sizeof oc);
    const char *o = cfg->train.optimizer, *s = cfg->train.schedule;
    oc.kind = strcmp(o, "sgd") == 0 ? OPT_SGD : strcmp(o, "adam") == 0 ? OPT_ADAM : OPT_ADAMW;
    oc.schedule = strcmp(s, "constant") == 0 ? SCHED_CONSTANT
                  : strcmp(s, "cosine") == 0 ? SCHED_COSINE
                                             : SCHED_LINEAR;
    oc.lr = cfg->train.lr;
    oc.momentum = cfg->train.momentum;
    oc.beta1 = cfg->train.beta1;
    oc.beta2 = cfg->train.beta2;
    oc.eps = cfg->train.eps;
    oc.weight_decay = cfg->train.weight_decay;
    oc.clip_norm = cfg->train.clip_norm;
    oc.min_lr_frac = cfg->train.min_lr_frac;
    oc.warmup_steps = cfg->train.warmup_steps;
    oc.total_steps = cfg->train.steps;
    return oc;
}

// The checkpoint's experiment, loaded quietly from its text through a temporary file.
static int config_from_text(const char *text, Config *out) {
    const char *tmp = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/trainer-ckpt-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    const size_t n = strlen(text);
    int bad = write(fd, text, n) != (ssize_t)n;
    close(fd);
    config_quiet(1);
    bad = bad || config_load(out, path, 0, NULL) != 0;
    config_quiet(0);
    unlink(path);
    return bad ? -1 : 0;
}

void checkpoint_data_diff(const char *ckpt_config_text, const Config *cfg, char *out, size_t cap) {
    out[0] = 0;
    Config *there = xmalloc(sizeof *there);
    if (!ckpt_config_text || config_from_text(ckpt_config_text, there) != 0) {
        free(there);
        return;
    }
    size_t used = 0;
    const int synth = strcmp(cfg->data.source, "synth") == 0;
    for (int i = 0; i < N_FINGERPRINT_KEYS + (synth ? N_SYNTH_KEYS : 0); i++) {
        const char *k =
            i < N_FINGERPRINT_KEYS ? FINGERPRINT_KEYS[i] : SYNTH_KEYS[i - N_FINGERPRINT_KEYS];
        if (strcmp(k, "data.on_error") == 0) continue;
        StrBuf a = {0}, b = {0};
        config_key_text(there, k, &a);
        config_key_text(cfg, k, &b);
        if (strcmp(a.data, b.data) != 0) {
            int n = snprintf(out + used, cap - used, "%s%s (%s -> %s)", used ? ", " : "", k, a.data,
                             b.data);
            if (n > 0 && used + (size_t)n < cap) used += (size_t)n;
        }
        sb_free(&a), sb_free(&b);
    }
    free(there);
}
