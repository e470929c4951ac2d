// checkpoint.c: see checkpoint.h. The only file that touches protobuf-c.
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.pb-c.h"
#include "hash.h"
#include "atomic_file.h"
#include "util.h"

#define CKPT_MAGIC  "LSTMCKPT"
#define CHUNK_BYTES ((size_t)32 << 20) // no message comes near protobuf's 2 GiB limit
#define MAX_RECORD  ((size_t)64 << 20)

// ---------------------------------------------------------------- writing

typedef struct {
    AtomicFile af;
    Hasher records;
    uint64_t n_records;
} Out;

// Fault injection for the tests: TRAINER_FAULT_CKPT=mode:after_bytes:step with mode eio (a
// failed write), enospc (disk full) or kill (SIGKILL in the middle of writing).
static void setup_fault(AtomicFile *af, int64_t step) {
    const char *f = getenv("TRAINER_FAULT_CKPT");
    if (!f) return;
    char mode[16] = "";
    unsigned long long after = 0;
    long long at_step = -1;
    if (sscanf(f, "%15[a-z]:%llu:%lld", mode, &after, &at_step) < 2) return;
    if (at_step >= 0 && at_step != step) return;
    af->fault_mode = strcmp(mode, "eio") == 0      ? AF_FAULT_EIO
                     : strcmp(mode, "enospc") == 0 ? AF_FAULT_ENOSPC
                     : strcmp(mode, "kill") == 0   ? AF_FAULT_KILL
                                                   : AF_FAULT_NONE;
    af->fault_after = (size_t)after;
}

static int write_record(Out *o, const ProtobufCMessage *msg) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > MAX_RECORD) {
        snprintf(o->af.err, sizeof o->af.err, "internal: checkpoint record of %zu bytes", len);
        af_abort(&o->af);
        return -1;
    }
    uint8_t *buf = xmalloc(len + 12);
    protobuf_c_message_pack(msg, buf + 12);
    uint32_t l32 = (uint32_t)len;
    uint64_t h = hash_bytes(buf + 12, len, 0);
    memcpy(buf, &l32, 4);
    memcpy(buf + 4, &h, 8);
    int rc = af_write(&o->af, buf, len + 12);
    free(buf);
    hasher_update(&o->records, &h, sizeof h);
    o->n_records++;
    return rc;
}

typedef struct {
    char name[64];
    const float *data;
    size_t count;
    int64_t shape[3];
    int ndim;
} TensorRef;

static int list_tensors(const CheckpointData *d, TensorRef *out) {
    TensorInfo ti[MODEL_MAX_TENSORS];
    int nt = model_tensors(&d->shape, ti), n = 0;
    const char *kinds[3] = {"param", "adam_m", "adam_v"};
    const float *bufs[3] = {d->params, d->adam_m, d->adam_v};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < nt; i++) {
            TensorRef *t = &out[n++];
            snprintf(t->name, sizeof t->name, "%s/%s", kinds[k], ti[i].name);
            t->data = bufs[k] + ti[i].offset;
            t->count = ti[i].count;
            t->ndim = ti[i].cols == 1 ? 1 : 2;
            t->shape[0] = ti[i].rows, t->shape[1] = ti[i].cols;
        }
    const char *lane_names[2] = {"lane_h", "lane_c"};
    const float *lane_bufs[2] = {d->lane_h, d->lane_c};
    for (int k = 0; k < 2; k++) {
        TensorRef *t = &out[n++];
        snprintf(t->name, sizeof t->name, "%s", lane_names[k]);
        t->data = lane_bufs[k];
        t->count = (size_t)d->shape.layers * (size_t)d->n_lanes * (size_t)d->shape.hidden;
        t->ndim = 3;
        t->shape[0] = d->shape.layers, t->shape[1] = d->n_lanes, t->shape[2] = d->shape.hidden;
    }
    return n;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

// The vocabularies and statistics of m as a DataStats message (pointers into m and *store).
typedef struct {
    LstmTrainer__DataStats msg;
    LstmTrainer__Vocabulary vocab[1 + CFG_LIST_MAX], *vocab_ptrs[1 + CFG_LIST_MAX];
    char *num_cols[CFG_LIST_MAX];
} StatsOut;

static void stats_out(const DataMeta *m, StatsOut *o) {
    lstm_trainer__data_stats__init(&o->msg);
    const int nv = 1 + (int)m->n_cat;
    for (int v = 0; v < nv; v++) {
        lstm_trainer__vocabulary__init(&o->vocab[v]);
        o->vocab[v].column = (char *)m->column[v];
        o->vocab[v].n_values = (size_t)m->vocab_size[v];
        o->vocab[v].values = m->vocab[v];
        o->vocab_ptrs[v] = &o->vocab[v];
    }
    for (uint32_t k = 0; k < m->n_num; k++) o->num_cols[k] = (char *)m->column[1 + m->n_cat + k];
    o->msg.n_vocab = (size_t)nv, o->msg.vocab = o->vocab_ptrs;
    o->msg.loggap_mean = m->loggap_mean, o->msg.loggap_std = m->loggap_std;
    o->msg.n_num_column = o->msg.n_num_mean = o->msg.n_num_std = m->n_num;
    o->msg.num_column = o->num_cols;
    o->msg.num_mean = (double *)m->num_mean, o->msg.num_std = (double *)m->num_std;
    o->msg.gap_offset = m->gap_offset, o->msg.numeric_log1p = m->numeric_log1p;
    o->msg.engagement_index = m->engagement_index;
}

// DataStats into out->meta (bounded by the DataMeta arrays; a message beyond them is corrupt).
static int stats_in(const LstmTrainer__DataStats *st, LoadedCheckpoint *out) {
    DataMeta *m = &out->meta;
    if (st->n_vocab < 1 || st->n_vocab > 1 + CFG_LIST_MAX || st->n_num_column > CFG_LIST_MAX ||
        st->n_num_mean != st->n_num_column || st->n_num_std != st->n_num_column)
        return -1;
    m->n_cat = (uint32_t)st->n_vocab - 1, m->n_num = (uint32_t)st->n_num_column;
    for (size_t v = 0; v < st->n_vocab; v++) {
        const LstmTrainer__Vocabulary *vb = st->vocab[v];
        if (vb->n_values > (size_t)1 << 28) return -1;
        snprintf(m->column[v], sizeof m->column[v], "%s", vb->column ? vb->column : "");
        m->vocab_size[v] = (int32_t)vb->n_values;
        m->vocab[v] = xcalloc(vb->n_values + 1, sizeof(char *));
        for (size_t i = 0; i < vb->n_values; i++) m->vocab[v][i] = str_dup(vb->values[i]);
    }
    for (uint32_t k = 0; k < m->n_num; k++) {
        snprintf(m->column[1 + m->n_cat + k], CFG_NAME_LEN, "%s", st->num_column[k]);
        m->num_mean[k] = st->num_mean[k], m->num_std[k] = st->num_std[k];
    }
    m->loggap_mean = st->loggap_mean, m->loggap_std = st->loggap_std;
    m->gap_offset = st->gap_offset, m->numeric_log1p = st->numeric_log1p;
    m->engagement_index = st->engagement_index;
    out->has_meta = 1;
    return 0;
}

// The header's sub-messages and the arrays they point into, built from d and freed together.
typedef struct {
    LstmTrainer__CheckpointHeader hdr;
    LstmTrainer__ModelShape shape;
    LstmTrainer__RngState rng;
    LstmTrainer__DataCursor cur;
    LstmTrainer__Metrics met;
    LstmTrainer__Privacy priv;
    LstmTrainer__BestRecord best;
    LstmTrainer__TensorMeta *metas, **meta_ptrs;
    int64_t *epochs, *nexts;
    int32_t *lane_user, *lane_pos;
    StatsOut *stats;
} Header;

static void header_shape(Header *h, const ModelShape *s) {
    LstmTrainer__ModelShape shape = LSTM_TRAINER__MODEL_SHAPE__INIT;
    shape.n_actions = s->n_actions, shape.action_embed = s->action_embed;
    shape.n_cat = s->n_cat, shape.n_cat_vocab = (size_t)s->n_cat;
    shape.cat_vocab = (int32_t *)s->cat_vocab;
    shape.cat_embed = s->cat_embed, shape.n_dense = s->n_dense;
    shape.hidden = s->hidden, shape.layers = s->layers;
    shape.engagement = s->engagement, shape.window = s->window;
    shape.time_mix = s->time_mix > 1 ? s->time_mix : 0; // 1 is written as before
    h->shape = shape;
}

// Where every virtual shard and lane stands, and the random state: what resume needs.
static void header_cursor(Header *h, const CheckpointData *d) {
    h->epochs = xmalloc(sizeof(int64_t) * (size_t)d->n_vshards);
    h->nexts = xmalloc(sizeof(int64_t) * (size_t)d->n_vshards);
    h->lane_user = xmalloc(sizeof(int32_t) * (size_t)d->n_lanes);
    h->lane_pos = xmalloc(sizeof(int32_t) * (size_t)d->n_lanes);
    for (int v = 0; v < d->n_vshards; v++)
        h->epochs[v] = d->shards[v].epoch, h->nexts[v] = d->shards[v].next;
    for (int l = 0; l < d->n_lanes; l++)
        h->lane_user[l] = d->lanes[l].user, h->lane_pos[l] = d->lanes[l].pos;
    LstmTrainer__RngState rng = LSTM_TRAINER__RNG_STATE__INIT;
    rng.seed = d->seed, rng.dropout_step = d->step;
    rng.n_shard_epoch = (size_t)d->n_vshards, rng.shard_epoch = h->epochs;
    rng.generator = "counter-based splitmix64 (hash.h): draw = f(seed, stream, counter)";
    h->rng = rng;
    LstmTrainer__DataCursor cur = LSTM_TRAINER__DATA_CURSOR__INIT;
    cur.n_vshards = d->n_vshards, cur.n_lanes = d->n_lanes,
    cur.lanes_per_shard = d->lanes_per_shard;
    cur.n_shard_epoch = cur.n_shard_next = (size_t)d->n_vshards;
    cur.shard_epoch = h->epochs, cur.shard_next = h->nexts;
    cur.n_lane_user = cur.n_lane_pos = (size_t)d->n_lanes;
    cur.lane_user = h->lane_user, cur.lane_pos = h->lane_pos;
    h->cur = cur;
}

static void header_tensors(Header *h, TensorRef *tens, int nt) {
    h->metas = xcalloc((size_t)nt, sizeof *h->metas);
    h->meta_ptrs = xcalloc((size_t)nt, sizeof *h->meta_ptrs);
    for (int i = 0; i < nt; i++) {
        LstmTrainer__TensorMeta *m = &h->metas[i];
        lstm_trainer__tensor_meta__init(m);
        m->name = tens[i].name;
        m->n_shape = (size_t)tens[i].ndim;
        m->shape = tens[i].shape;
        m->count = tens[i].count;
        m->checksum = hash_bytes(tens[i].data, tens[i].count * sizeof(float), 0);
        m->n_chunks = (uint32_t)((tens[i].count * sizeof(float) + CHUNK_BYTES - 1) / CHUNK_BYTES);
        h->meta_ptrs[i] = m;
    }
}

// The last validation, the privacy record and the best record (each only when there is one).
static void header_records(Header *h, const CheckpointData *d) {
    LstmTrainer__Metrics met = LSTM_TRAINER__METRICS__INIT;
    const Metrics *m = &d->last_valid;
    met.n_targets = m->n_targets, met.loss = m->loss, met.action_nll = m->action_nll;
    met.top1 = m->top1, met.topk = m->topk, met.time_nll = m->time_nll;
    met.gap_mae = m->gap_mae, met.gap_rmse = m->gap_rmse, met.eng_mse = m->eng_mse;
    h->met = met;
    h->hdr.has_metrics = d->has_metrics, h->hdr.last_valid = &h->met;
    LstmTrainer__Privacy priv = LSTM_TRAINER__PRIVACY__INIT;
    const CkptPrivacy *pv = &d->privacy;
    if (pv->dp || pv->exclusion_digest) {
        priv.dp = pv->dp, priv.epsilon = pv->epsilon, priv.delta = pv->delta;
        priv.noise_multiplier = pv->sigma, priv.sample_rate = pv->q, priv.clip = pv->clip;
        priv.accountant = (char *)pv->accountant;
        priv.exclusion_digest = pv->exclusion_digest, priv.excluded_users = pv->excluded_users;
        h->priv = priv;
        h->hdr.privacy = &h->priv;
    }
    LstmTrainer__BestRecord best = LSTM_TRAINER__BEST_RECORD__INIT;
    const CkptBest *bs = &d->best;
    if (bs->has_best) {
        best.has_best = 1, best.best_step = bs->best_step, best.best_value = bs->best_value;
        best.metric = (char *)bs->metric, best.evals_since_best = bs->evals_since_best;
        best.is_best = bs->is_best;
        h->best = best;
        h->hdr.best = &h->best;
    }
}

// Header *h must stay where it is while h->hdr is written (it points into h).
static void header_build(Header *h, const CheckpointData *d, TensorRef *tens, int nt) {
    memset(h, 0, sizeof *h);
    LstmTrainer__CheckpointHeader hdr = LSTM_TRAINER__CHECKPOINT_HEADER__INIT;
    h->hdr = hdr;
    header_shape(h, &d->shape);
    header_cursor(h, d);
    header_tensors(h, tens, nt);
    LstmTrainer__CheckpointHeader *p = &h->hdr;
    p->format_version = CKPT_FORMAT_VERSION;
    p->step = d->step, p->skipped_steps = d->skipped_steps;
    p->events_seen = d->events_seen, p->epoch = d->epoch;
    p->config_text = (char *)d->config_text, p->config_hash = d->config_hash;
    p->data_hash = d->data_hash, p->world_size = d->world_size;
    p->shape = &h->shape, p->rng = &h->rng, p->cursor = &h->cur;
    p->n_tensors = (size_t)nt, p->tensors = h->meta_ptrs;
    p->created_unix = wall_seconds();
    header_records(h, d);
    p->n_boost_spans = 2 * d->n_boost, p->boost_spans = (uint64_t *)d->boost_spans;
    p->lr_boost = d->n_boost ? d->lr_boost : 0;
    h->stats = xcalloc(1, sizeof *h->stats);
    if (d->meta) {
        stats_out(d->meta, h->stats);
        p->data = &h->stats->msg;
    }
}

static void header_free(Header *h) {
    free(h->epochs), free(h->nexts), free(h->lane_user), free(h->lane_pos);
    free(h->metas), free(h->meta_ptrs), free(h->stats);
}

// Every tensor as chunks of at most CHUNK_BYTES (an empty tensor: one empty chunk).
static int write_tensors(Out *o, const TensorRef *tens, int nt) {
    const size_t per = CHUNK_BYTES / sizeof(float);
    for (int i = 0; i < nt; i++) {
        for (size_t off = 0; off < tens[i].count || (off == 0 && tens[i].count == 0); off += per) {
            size_t n = tens[i].count - off < per ? tens[i].count - off : per;
            LstmTrainer__TensorChunk ch = LSTM_TRAINER__TENSOR_CHUNK__INIT;
            ch.tensor = (uint32_t)i, ch.offset = off;
            ch.data.len = n * sizeof(float);
            ch.data.data = (uint8_t *)(tens[i].data + off);
            if (write_record(o, &ch.base) != 0) return -1;
            if (tens[i].count == 0) break;
        }
    }
    return 0;
}

int checkpoint_write_file(const char *path, const CheckpointData *d, char *err, size_t errlen) {
    if (!all_finite(d->params, d->n_params) || !all_finite(d->adam_m, d->n_params) ||
        !all_finite(d->adam_v, d->n_params)) {
        snprintf(err, errlen, "%s: refusing to write a model with non-finite values", path);
        return -1;
    }
    TensorRef *tens = xcalloc(3 * MODEL_MAX_TENSORS + 2, sizeof(TensorRef));
    int nt = list_tensors(d, tens);
    Header *h = xmalloc(sizeof *h);
    header_build(h, d, tens, nt);
    Out o;
    memset(&o, 0, sizeof o);
    hasher_init(&o.records, 0);
    int rc = -1;
    if (af_open(&o.af, path, 0, 0) != 0) goto done;
    setup_fault(&o.af, d->step);
    if (af_write(&o.af, CKPT_MAGIC, 8) != 0 || write_record(&o, &h->hdr.base) != 0) goto done;
    if (write_tensors(&o, tens, nt) != 0) goto done;
    LstmTrainer__CheckpointFooter foot = LSTM_TRAINER__CHECKPOINT_FOOTER__INIT;
    foot.n_records = o.n_records;
    foot.records_hash = hasher_final(&o.records);
    if (write_record(&o, &foot.base) != 0) goto done;
    rc = af_commit(&o.af); // a failed directory fsync leaves the whole file, in doubt
done:
    if (rc != 0) snprintf(err, errlen, "%s", o.af.err);
    header_free(h);
    free(h), free(tens);
    return rc;
}

// ---------------------------------------------------------------- retention

static int parse_step_name(const char *name, long long *step) {
    int n = 0;
    if (sscanf(name, "step-%lld.ckpt%n", step, &n) == 1 && name[n] == 0) return 0;
    return -1;
}

static int cmp_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

// Steps of the checkpoints in dir, newest first. Returns the count (caller frees *steps).
static int list_steps(const char *dir, long long **steps) {
    DIR *d = opendir(dir);
    *steps = NULL;
    if (!d) return 0;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long s;
        if (parse_step_name(e->d_name, &s) != 0) continue;
        if (n == cap)
            *steps = xrealloc(*steps, sizeof(long long) * (size_t)(cap = cap ? cap * 2 : 16));
        (*steps)[n++] = s;
    }
    closedir(d);
    if (n) qsort(*steps, (size_t)n, sizeof(long long), cmp_desc);
    return n;
}

static void step_path(char *out, size_t cap, const char *dir, long long step) {
    snprintf(out, cap, "%s/step-%08lld.ckpt", dir, step);
}

int checkpoint_newest_step(const char *dir, long long *step) {
    long long *steps;
    int n = list_steps(dir, &steps);
    if (n > 0) *step = steps[0];
    free(steps);
    return n > 0 ? 0 : -1;
}

// "the previous checkpoint (step-N.ckpt) is intact" or that there is none, for messages.
static void previous_text(const char *dir, char *out, size_t cap) {
    long long step;
    if (checkpoint_newest_step(dir, &step) == 0)
        snprintf(out, cap, "the previous checkpoint (step-%08lld.ckpt) is intact", step);
    else
        snprintf(out, cap, "no earlier checkpoint exists in %s", dir);
}

// Deletes checkpoints beyond the newest `keep`; never the one just written, nor the best
// (protect >= 0), which does not count against keep.
static void apply_retention(const char *dir, int keep, long long just_written, long long protect) {
    long long *steps;
    int n = list_steps(dir, &steps);
    int kept = 0;
    for (int i = 0; i < n; i++) {
        if (steps[i] == protect && steps[i] != just_written) continue;
        if (steps[i] == just_written || kept < keep) {
            kept++;
            continue;
        }
        char p[CFG_PATH_LEN + 64];
        step_path(p, sizeof p, dir, steps[i]);
        unlink(p);
    }
    free(steps);
}

// ---------------------------------------------------------------- the writer

struct CkptWriter {
    char dir[CFG_PATH_LEN + 32];
    int keep, async, keep_best;
    long long best_step; // the checkpoint kept apart (-1: none)
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int busy, quit, failed, has_thread;
    CheckpointData snap;
    float *params, *m, *v, *lane_h, *lane_c;
    ShardCursor *shards;
    LaneCursor *lanes;
    char *config_text;
    size_t cap_params, cap_lane, cap_shards, cap_lanes, cap_boost;
    uint64_t *boost_spans;
    double last_write_s;
    char last_path[CFG_PATH_LEN + 64];
};

static int write_best_json(CkptWriter *w, const CkptBest *b) {
    char path[CFG_PATH_LEN + 48], text[512], err[512];
    snprintf(path, sizeof path, "%s/best.json", w->dir);
    snprintf(text, sizeof text,
             "{\"step\":%lld,\"metric\":\"%s\",\"value\":%.9g,\"file\":\"step-%08lld.ckpt\"}\n",
             (long long)b->best_step, b->metric, b->best_value, (long long)b->best_step);
    if (write_file_atomic(path, text, strlen(text), err, sizeof err) == 0) return 0;
    fprintf(stderr, "%swarning: %s (the best checkpoint is still step-%08lld.ckpt)\n",
            log_prefix(), err, w->best_step);
    return -1;
}

int checkpoint_read_best(const char *dir, long long *step, double *value, char *metric,
                         size_t metric_cap) {
    char path[CFG_PATH_LEN + 48];
    snprintf(path, sizeof path, "%s/best.json", dir);
    size_t n;
    char *text = read_file(path, &n);
    if (!text) return -1;
    const char *ps = strstr(text, "\"step\":"), *pv = strstr(text, "\"value\":"),
               *pm = strstr(text, "\"metric\":\"");
    int ok = ps && sscanf(ps + 7, "%lld", step) == 1;
    double v = 0;
    if (ok && pv) ok = sscanf(pv + 8, "%lf", &v) == 1;
    if (value) *value = v;
    if (metric && metric_cap) {
        metric[0] = 0;
        if (pm) sscanf(pm + 10, "%15[a-z0-9_]", metric);
    }
    free(text);
    return ok ? 0 : -1;
}

void ckpt_writer_set_best(CkptWriter *w, const CkptBest *best) {
    if (!w->keep_best || !best->has_best) return;
    ckpt_writer_wait(w);
    w->best_step = (long long)best->best_step;
    long long named = -1;
    if (checkpoint_read_best(w->dir, &named, NULL, NULL, 0) == 0 && named == w->best_step) return;
    char p[CFG_PATH_LEN + 64];
    step_path(p, sizeof p, w->dir, w->best_step);
    if (path_exists(p)) write_best_json(w, best); // killed between the checkpoint and best.json
}

static void do_write(CkptWriter *w) {
    char path[CFG_PATH_LEN + 64], err[1024];
    step_path(path, sizeof path, w->dir, (long long)w->snap.step);
    double t0 = now_seconds();
    if (checkpoint_write_file(path, &w->snap, err, sizeof err) != 0) {
        char prev[CFG_PATH_LEN + 96];
        previous_text(w->dir, prev, sizeof prev);
        fprintf(stderr, "%serror: checkpoint at step %lld not written: %s; %s\n", log_prefix(),
                (long long)w->snap.step, err, prev);
        w->failed = 1;
        return;
    }
    w->failed = 0; // a later good checkpoint supersedes a failed one
    w->last_write_s = now_seconds() - t0;
    snprintf(w->last_path, sizeof w->last_path, "%s", path);
    // best.json only after its file is whole; the previous best is deleted (by retention)
    // only after best.json names the new one.
    const CkptBest *b = &w->snap.best;
    if (w->keep_best && b->has_best && b->best_step == w->snap.step && write_best_json(w, b) == 0)
        w->best_step = (long long)w->snap.step;
    apply_retention(w->dir, w->keep, (long long)w->snap.step, w->keep_best ? w->best_step : -1);
}

static void *writer_main(void *arg) {
    CkptWriter *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->busy && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (w->busy) {
            pthread_mutex_unlock(&w->mu);
            do_write(w);
            pthread_mutex_lock(&w->mu);
            w->busy = 0;
            pthread_cond_broadcast(&w->cv);
            continue;
        }
        if (w->quit) break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

CkptWriter *ckpt_writer_create(const char *dir, int keep, int async, int keep_best) {
    if (mkdir_p(dir) != 0)
        fatal("%s: cannot create the checkpoint directory (%s)", dir, strerror(errno));
    CkptWriter *w = xcalloc(1, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->keep = keep, w->async = async, w->keep_best = keep_best, w->best_step = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    // Temp files of writes that were killed part-way are garbage.
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".ckpt.tmp")) {
            char p[CFG_PATH_LEN + 300];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    if (d) closedir(d);
    if (async) {
        if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
            fatal("cannot start the checkpoint writer thread");
        w->has_thread = 1;
    }
    return w;
}

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    free(p);
    *cap = need;
    return xmalloc(need ? need : 1);
}

double ckpt_writer_submit(CkptWriter *w, const CheckpointData *d) {
    double t0 = now_seconds();
    pthread_mutex_lock(&w->mu);
    while (w->busy) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    // Copy everything the write needs: training goes on changing the originals.
    const size_t np = d->n_params * sizeof(float);
    const size_t nl =
        (size_t)d->shape.layers * (size_t)d->n_lanes * (size_t)d->shape.hidden * sizeof(float);
    size_t cp = w->cap_params, cm = w->cap_params, cv = w->cap_params, ch = w->cap_lane,
           cc = w->cap_lane;
    w->params = grow(w->params, &cp, np), w->m = grow(w->m, &cm, np), w->v = grow(w->v, &cv, np);
    w->cap_params = cp;
    w->lane_h = grow(w->lane_h, &ch, nl), w->lane_c = grow(w->lane_c, &cc, nl);
    w->cap_lane = ch;
    w->shards = grow(w->shards, &w->cap_shards, sizeof(ShardCursor) * (size_t)d->n_vshards);
    w->lanes = grow(w->lanes, &w->cap_lanes, sizeof(LaneCursor) * (size_t)d->n_lanes);
    const size_t nb = sizeof(uint64_t) * 2 * d->n_boost;
    w->boost_spans = grow(w->boost_spans, &w->cap_boost, nb);
    if (nb) memcpy(w->boost_spans, d->boost_spans, nb);
    memcpy(w->params, d->params, np), memcpy(w->m, d->adam_m, np), memcpy(w->v, d->adam_v, np);
    memcpy(w->lane_h, d->lane_h, nl), memcpy(w->lane_c, d->lane_c, nl);
    memcpy(w->shards, d->shards, sizeof(ShardCursor) * (size_t)d->n_vshards);
    memcpy(w->lanes, d->lanes, sizeof(LaneCursor) * (size_t)d->n_lanes);
    free(w->config_text);
    w->config_text = str_dup(d->config_text);
    w->snap = *d;
    w->snap.params = w->params, w->snap.adam_m = w->m, w->snap.adam_v = w->v;
    w->snap.lane_h = w->lane_h, w->snap.lane_c = w->lane_c;
    w->snap.shards = w->shards, w->snap.lanes = w->lanes, w->snap.config_text = w->config_text;
    w->snap.boost_spans = w->boost_spans;
    if (!w->async) {
        do_write(w);
        return now_seconds() - t0;
    }
    pthread_mutex_lock(&w->mu);
    w->busy = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return now_seconds() - t0;
}

int ckpt_writer_wait(CkptWriter *w) {
    pthread_mutex_lock(&w->mu);
    while (w->busy) pthread_cond_wait(&w->cv, &w->mu);
    int failed = w->failed;
    w->failed = 0;
    pthread_mutex_unlock(&w->mu);
    return failed ? -1 : 0;
}

void ckpt_writer_free(CkptWriter *w) {
    if (!w) return;
    ckpt_writer_wait(w);
    if (w->has_thread) {
        pthread_mutex_lock(&w->mu);
        w->quit = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->params), free(w->m), free(w->v), free(w->lane_h), free(w->lane_c);
    free(w->shards), free(w->lanes), free(w->config_text), free(w->boost_spans);
    free(w);
}

double ckpt_writer_last_write_seconds(const CkptWriter *w) {
    return w->last_write_s;
}
const char *ckpt_writer_last_path(const CkptWriter *w) {
    return w->last_path[0] ? w->last_path : "(none)";
}

// ---------------------------------------------------------------- reading

static int shape_plausible(const LstmTrainer__ModelShape *s, char *err, size_t errlen) {
    // Upper bounds keep the model's int arithmetic (widths, output count) from overflowing.
    if (!s || s->layers < 1 || s->layers > MODEL_MAX_LAYERS || s->n_cat < 0 ||
        s->n_cat > MODEL_MAX_CAT || s->n_cat_vocab != (size_t)s->n_cat || s->hidden < 1 ||
        s->hidden > 1 << 16 || s->n_actions < 1 || s->n_actions > 1 << 28 || s->action_embed < 1 ||
        s->action_embed > 1 << 16 || s->n_dense < 0 || s->n_dense > 1 << 16 || s->cat_embed < 0 ||
        s->cat_embed > 1 << 16 || s->engagement < 0 || s->engagement > 1) {
        snprintf(err, errlen, "implausible model shape in the header");
        return -1;
    }
    for (int c = 0; c < s->n_cat; c++)
        if (s->cat_vocab[c] < 1 || s->cat_vocab[c] > 1 << 28) {
            snprintf(err, errlen, "implausible vocabulary size in the header");
            return -1;
        }
    return 0;
}

void checkpoint_free(LoadedCheckpoint *c) {
    free(c->config_text), free(c->params), free(c->adam_m), free(c->adam_v);
    free(c->lane_h), free(c->lane_c), free(c->shards), free(c->lanes), free(c->boost_spans);
    if (c->has_meta) meta_free(&c->meta);
    memset(c, 0, sizeof *c);
}

// A checkpoint being parsed: the records read so far.
typedef struct {
    const unsigned char *buf;
    size_t size, pos;
    LstmTrainer__CheckpointHeader *hdr;
    float **tbuf;     // (n_tensors) each tensor's elements as they arrive
    uint64_t *filled; // (n_tensors) elements received so far
    uint64_t expect_chunks, seen_chunks, n_records, total_count;
    Hasher rh; // of the record hashes before the footer
    int got_footer;
    char *err;
    size_t errlen;
} Reader;

static int bad(Reader *r, const char *msg) {
    snprintf(r->err, r->errlen, "%s", msg);
    return -1;
}

// The header: version, shape and cursor checks, then a buffer per tensor, every size bounded
// by what is left of the file (a crafted header can never make us allocate more).
static int read_header(Reader *r, const uint8_t *msg, uint32_t len) {
    LstmTrainer__CheckpointHeader *hdr = lstm_trainer__checkpoint_header__unpack(NULL, len, msg);
    if (!hdr) return bad(r, "corrupt (the header record does not decode)");
    r->hdr = hdr;
    if (hdr->format_version != CKPT_FORMAT_VERSION) {
        snprintf(r->err, r->errlen, "format version %u; this program reads version %d",
                 hdr->format_version, CKPT_FORMAT_VERSION);
        return -1;
    }
    if (shape_plausible(hdr->shape, r->err, r->errlen) != 0) return -1;
    const LstmTrainer__DataCursor *c = hdr->cursor;
    if (!c || c->n_vshards < 1 || c->n_lanes < 1 || c->n_shard_epoch != (size_t)c->n_vshards ||
        c->n_shard_next != (size_t)c->n_vshards || c->n_lane_user != (size_t)c->n_lanes ||
        c->n_lane_pos != (size_t)c->n_lanes || !hdr->rng || hdr->n_tensors == 0 ||
        hdr->n_tensors > 3 * MODEL_MAX_TENSORS + 2)
        return bad(r, "corrupt (inconsistent data cursor or tensor list)");
    if (hdr->n_boost_spans % 2 != 0 || (hdr->n_boost_spans && !(hdr->lr_boost > 0)))
        return bad(r, "corrupt (the boosted spans are not (offset, count) pairs with a rate)");
    r->tbuf = xcalloc(hdr->n_tensors, sizeof(float *));
    r->filled = xcalloc(hdr->n_tensors, sizeof(uint64_t));
    const size_t left = r->size - r->pos;
    for (size_t i = 0; i < hdr->n_tensors; i++) {
        r->total_count += hdr->tensors[i]->count;
        if (hdr->tensors[i]->count > left / 4 || r->total_count > left / 4) {
            snprintf(r->err, r->errlen,
                     "truncated (its tensors need more than the %zu bytes after the header)", left);
            return -1;
        }
        r->tbuf[i] = xmalloc(sizeof(float) * (hdr->tensors[i]->count + 1));
        r->expect_chunks += hdr->tensors[i]->n_chunks ? hdr->tensors[i]->n_chunks : 1;
    }
    return 0;
}

// A chunk of one tensor, in order.
static int read_chunk(Reader *r, const uint8_t *msg, uint32_t len) {
    LstmTrainer__TensorChunk *ch = lstm_trainer__tensor_chunk__unpack(NULL, len, msg);
    const LstmTrainer__CheckpointHeader *hdr = r->hdr;
    if (!ch || ch->tensor >= hdr->n_tensors || ch->data.len % 4 != 0 ||
        ch->offset != r->filled[ch->tensor] ||
        ch->offset + ch->data.len / 4 > hdr->tensors[ch->tensor]->count) {
        if (ch) lstm_trainer__tensor_chunk__free_unpacked(ch, NULL);
        return bad(r, "corrupt (a tensor chunk is malformed or out of order)");
    }
    if (ch->data.len) memcpy(r->tbuf[ch->tensor] + ch->offset, ch->data.data, ch->data.len);
    r->filled[ch->tensor] += ch->data.len / 4;
    lstm_trainer__tensor_chunk__free_unpacked(ch, NULL);
    r->seen_chunks++;
    return 0;
}

// The footer: the record count and the hash of every record before it; nothing after it.
static int read_footer(Reader *r, const uint8_t *msg, uint32_t len) {
    LstmTrainer__CheckpointFooter *f = lstm_trainer__checkpoint_footer__unpack(NULL, len, msg);
    int ok = f && f->n_records == r->n_records && f->records_hash == hasher_final(&r->rh);
    if (f) lstm_trainer__checkpoint_footer__free_unpacked(f, NULL);
    if (!ok) return bad(r, "corrupt (the footer does not match the records)");
    r->got_footer = 1;
    if (r->pos != r->size) {
        snprintf(r->err, r->errlen, "corrupt (%zu bytes after the footer)", r->size - r->pos);
        return -1;
    }
    return 0;
}

// Every framed record (u32 length | u64 hash | message) in turn, then the tensor checksums.
static int read_records(Reader *r) {
    while (r->pos < r->size && !r->got_footer) {
        if (r->size - r->pos < 12) {
            snprintf(r->err, r->errlen, "truncated (a record header is cut off at byte %zu)",
                     r->pos);
            return -1;
        }
        uint32_t len;
        uint64_t h;
        memcpy(&len, r->buf + r->pos, 4);
        memcpy(&h, r->buf + r->pos + 4, 8);
        if (len > MAX_RECORD || r->size - r->pos - 12 < len) {
            snprintf(r->err, r->errlen, "truncated (a %u-byte record at byte %zu runs past the end)",
                     len, r->pos);
            return -1;
        }
        const uint8_t *msg = r->buf + r->pos + 12;
        if (hash_bytes(msg, len, 0) != h) {
            snprintf(r->err, r->errlen, "corrupt (record at byte %zu fails its checksum)", r->pos);
            return -1;
        }
        r->pos += 12 + (size_t)len;
        int rc = !r->hdr                             ? read_header(r, msg, len)
                 : r->seen_chunks < r->expect_chunks ? read_chunk(r, msg, len)
                                                     : read_footer(r, msg, len);
        if (rc != 0) return -1;
        if (r->got_footer) break;
        hasher_update(&r->rh, &h, sizeof h);
        r->n_records++;
    }
    if (!r->hdr || !r->got_footer) {
        snprintf(r->err, r->errlen, "truncated (%s)",
                 !r->hdr ? "no header" : "the footer is missing");
        return -1;
    }
    for (size_t i = 0; i < r->hdr->n_tensors; i++) {
        const LstmTrainer__TensorMeta *tm = r->hdr->tensors[i];
        if (r->filled[i] != tm->count ||
            hash_bytes(r->tbuf[i], tm->count * sizeof(float), 0) != tm->checksum) {
            snprintf(r->err, r->errlen, "corrupt (tensor %s fails its checksum)", tm->name);
            return -1;
        }
    }
    return 0;
}

// The header's scalars, cursor and metrics into out (tensors are mapped by map_tensors).
static void header_to_data(const LstmTrainer__CheckpointHeader *hdr, LoadedCheckpoint *out) {
    CheckpointData *d = &out->d;
    out->shards = xmalloc(sizeof(ShardCursor) * (size_t)d->n_vshards);
    out->lanes = xmalloc(sizeof(LaneCursor) * (size_t)d->n_lanes);
    for (int v = 0; v < d->n_vshards; v++)
        out->shards[v] = (ShardCursor){hdr->cursor->shard_epoch[v], hdr->cursor->shard_next[v]};
    for (int l = 0; l < d->n_lanes; l++)
        out->lanes[l] = (LaneCursor){hdr->cursor->lane_user[l], hdr->cursor->lane_pos[l]};
    out->config_text = str_dup(hdr->config_text);
    d->step = hdr->step, d->skipped_steps = hdr->skipped_steps;
    d->events_seen = hdr->events_seen, d->epoch = hdr->epoch, d->seed = hdr->rng->seed;
    d->config_text = out->config_text, d->config_hash = hdr->config_hash;
    d->data_hash = hdr->data_hash, d->world_size = hdr->world_size;
    d->params = out->params, d->adam_m = out->adam_m, d->adam_v = out->adam_v;
    d->shards = out->shards, d->lanes = out->lanes, d->lane_h = out->lane_h,
    d->lane_c = out->lane_c;
    d->has_metrics = hdr->has_metrics;
    d->n_boost = hdr->n_boost_spans / 2, d->lr_boost = hdr->lr_boost;
    out->boost_spans = d->n_boost ? xmalloc(sizeof(uint64_t) * hdr->n_boost_spans) : NULL;
    if (d->n_boost) memcpy(out->boost_spans, hdr->boost_spans, sizeof(uint64_t) * 2 * d->n_boost);
    d->boost_spans = out->boost_spans;
    if (hdr->privacy) {
        const LstmTrainer__Privacy *pv = hdr->privacy;
        d->privacy = (CkptPrivacy){.dp = pv->dp, .epsilon = pv->epsilon, .delta = pv->delta,
                                   .sigma = pv->noise_multiplier, .q = pv->sample_rate,
                                   .clip = pv->clip, .exclusion_digest = pv->exclusion_digest,
                                   .excluded_users = pv->excluded_users};
        snprintf(d->privacy.accountant, sizeof d->privacy.accountant, "%s",
                 pv->accountant ? pv->accountant : "");
    }
    if (hdr->best && hdr->best->has_best) {
        const LstmTrainer__BestRecord *b = hdr->best;
        d->best = (CkptBest){.has_best = 1, .best_step = b->best_step, .best_value = b->best_value,
                             .evals_since_best = b->evals_since_best, .is_best = b->is_best};
        snprintf(d->best.metric, sizeof d->best.metric, "%s", b->metric ? b->metric : "");
    }
    if (hdr->last_valid) {
        const LstmTrainer__Metrics *m = hdr->last_valid;
        d->last_valid = (Metrics){m->n_targets, m->action_nll, m->time_nll, m->eng_mse, m->top1,
                                  m->topk,      m->gap_mae,    m->gap_rmse, m->loss};
    }
}

// The named tensors onto the flat layouts of the shape in the header.
static int map_tensors(Reader *r, LoadedCheckpoint *out) {
    const LstmTrainer__CheckpointHeader *hdr = r->hdr;
    CheckpointData *d = &out->d;
    const LstmTrainer__ModelShape *s = hdr->shape;
    d->shape.n_actions = s->n_actions, d->shape.action_embed = s->action_embed;
    d->shape.n_cat = s->n_cat;
    for (int c = 0; c < s->n_cat; c++) d->shape.cat_vocab[c] = s->cat_vocab[c];
    d->shape.cat_embed = s->cat_embed, d->shape.n_dense = s->n_dense, d->shape.hidden = s->hidden;
    d->shape.layers = s->layers, d->shape.engagement = s->engagement, d->shape.window = s->window;
    d->shape.time_mix = s->time_mix;
    d->n_params = model_param_count(&d->shape);
    d->n_vshards = hdr->cursor->n_vshards, d->n_lanes = hdr->cursor->n_lanes;
    d->lanes_per_shard = hdr->cursor->lanes_per_shard;
    const size_t nl = (size_t)s->layers * (size_t)d->n_lanes * (size_t)s->hidden;
    if (d->n_params > r->total_count || nl > r->total_count) // before allocating by the shape
        return bad(r, "corrupt (the model shape in the header does not match its tensors)");
    out->params = xmalloc(sizeof(float) * d->n_params);
    out->adam_m = xmalloc(sizeof(float) * d->n_params);
    out->adam_v = xmalloc(sizeof(float) * d->n_params);
    out->lane_h = xmalloc(sizeof(float) * (nl + 1));
    out->lane_c = xmalloc(sizeof(float) * (nl + 1));
    TensorRef want[3 * MODEL_MAX_TENSORS + 2];
    CheckpointData shapes = *d;
    shapes.params = out->params, shapes.adam_m = out->adam_m, shapes.adam_v = out->adam_v;
    shapes.lane_h = out->lane_h, shapes.lane_c = out->lane_c;
    int nw = list_tensors(&shapes, want);
    for (int k = 0; k < nw; k++) {
        size_t i = 0;
        while (i < hdr->n_tensors && strcmp(hdr->tensors[i]->name, want[k].name) != 0) i++;
        if (i == hdr->n_tensors || hdr->tensors[i]->count != want[k].count) {
            snprintf(r->err, r->errlen, "tensor %s is %s", want[k].name,
                     i == hdr->n_tensors ? "missing" : "of the wrong size");
            return -1;
        }
        memcpy((float *)want[k].data, r->tbuf[i], sizeof(float) * want[k].count);
    }
    return 0;
}

int checkpoint_parse(const unsigned char *buf, size_t size, LoadedCheckpoint *out, char *err,
                     size_t errlen) {
    memset(out, 0, sizeof *out);
    if (size < 8 || memcmp(buf, CKPT_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a checkpoint file (no LSTMCKPT magic)");
        return -1;
    }
    Reader r = {.buf = buf, .size = size, .pos = 8, .err = err, .errlen = errlen};
    hasher_init(&r.rh, 0);
    int rc = read_records(&r);
    if (rc == 0) rc = map_tensors(&r, out);
    if (rc == 0) header_to_data(r.hdr, out);
    if (rc == 0 && r.hdr->data && stats_in(r.hdr->data, out) != 0) {
        meta_free(&out->meta); // what stats_in allocated before it found the message bad
        out->has_meta = 0;
        rc = bad(&r, "corrupt (the vocabularies in the header are inconsistent)");
    }
    if (rc != 0) checkpoint_free(out);
    if (r.tbuf)
        for (size_t i = 0; r.hdr && i < r.hdr->n_tensors; i++) free(r.tbuf[i]);
    free(r.tbuf);
    free(r.filled);
    if (r.hdr) lstm_trainer__checkpoint_header__free_unpacked(r.hdr, NULL);
    return rc;
}

int checkpoint_read_file(const char *path, LoadedCheckpoint *out, char *err, size_t errlen) {
    size_t size;
    unsigned char *buf = (unsigned char *)read_file(path, &size);
    if (!buf) {
        snprintf(err, errlen, "cannot read (%s)", strerror(errno));
        memset(out, 0, sizeof *out);
        return -1;
    }
    int rc = checkpoint_parse(buf, size, out, err, errlen);
    free(buf);
    return rc;
}

int checkpoint_find_latest(const char *dir, char *path, size_t cap, int *none_found,
                           unsigned char **bytes, size_t *size) {
    long long *steps;
    int n = list_steps(dir, &steps);
    *none_found = n == 0;
    for (int i = 0; i < n; i++) {
        char p[CFG_PATH_LEN + 64], err[512];
        step_path(p, sizeof p, dir, steps[i]);
        unsigned char *buf = (unsigned char *)read_file(p, size);
        LoadedCheckpoint c;
        if (!buf)
            snprintf(err, sizeof err, "cannot read (%s)", strerror(errno));
        else if (checkpoint_parse(buf, *size, &c, err, sizeof err) == 0) {
            checkpoint_free(&c);
            snprintf(path, cap, "%s", p);
            *bytes = buf;
            free(steps);
            return 0;
        }
        free(buf);
        fprintf(stderr, "%swarning: %s: %s; trying an older checkpoint\n", log_prefix(), p, err);
    }
    free(steps);
    return -1;
}

// dir's best checkpoint (best.json) when it verifies: 0 with its path and bytes, else -1.
static int resolve_best(const char *dir, char *path, size_t cap, unsigned char **bytes,
                        size_t *size, char *what, size_t what_cap) {
    long long step;
    double value;
    char metric[16];
    if (checkpoint_read_best(dir, &step, &value, metric, sizeof metric) != 0) return -1;
    char p[CFG_PATH_LEN + 64], err[512];
    step_path(p, sizeof p, dir, step);
    unsigned char *buf = (unsigned char *)read_file(p, size);
    LoadedCheckpoint c;
    if (!buf || checkpoint_parse(buf, *size, &c, err, sizeof err) != 0) {
        fprintf(stderr, "%swarning: %s (named by best.json): %s; using the newest checkpoint\n",
                log_prefix(), p, buf ? err : strerror(errno));
        free(buf);
        return -1;
    }
    checkpoint_free(&c);
    snprintf(path, cap, "%s", p);
    snprintf(what, what_cap, "the best: %s %.6g at step %lld", metric, value, step);
    *bytes = buf;
    return 0;
}

int checkpoint_resolve(const char *arg_in, char *path, size_t cap, unsigned char **bytes,
                       size_t *size, char *err, size_t errlen) {
    char arg[CFG_PATH_LEN + 32];
    snprintf(arg, sizeof arg, "%s", arg_in);
    size_t n = strlen(arg);
    const int latest = n > 7 && strcmp(arg + n - 7, ":latest") == 0;
    if (latest) arg[n - 7] = 0;
    struct stat st;
    if (stat(arg, &st) != 0) {
        snprintf(err, errlen, "--checkpoint %s: no such file or directory", arg);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (latest) {
            snprintf(err, errlen, "--checkpoint %s: :latest needs a run directory", arg_in);
            return -1;
        }
        snprintf(path, cap, "%s", arg);
        *bytes = (unsigned char *)read_file(arg, size);
        if (!*bytes) {
            snprintf(err, errlen, "%s: cannot read (%s)", arg, strerror(errno));
            return -1;
        }
        return 0;
    }
    // A run directory (holding checkpoints/) or a checkpoint directory.
    char dir[CFG_PATH_LEN + 64], what[160] = "the newest";
    snprintf(dir, sizeof dir, "%s/checkpoints", arg);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(dir, sizeof dir, "%s", arg);
    int none;
    if (latest || resolve_best(dir, path, cap, bytes, size, what, sizeof what) != 0) {
        if (checkpoint_find_latest(dir, path, cap, &none, bytes, size) != 0) {
            snprintf(err, errlen, "--checkpoint %s: %s", arg,
                     none ? "holds no checkpoints (step-*.ckpt)" : "none of its checkpoints is valid");
            return -1;
        }
        if (!latest) snprintf(what, sizeof what, "the newest: no best.json");
    }
    fprintf(stderr, "%scheckpoint: %s reads %s (%s%s)\n", log_prefix(), arg_in, path, what,
            latest ? "" : "; RUNDIR:latest for the newest");
    return 0;
}

void checkpoint_print(const LoadedCheckpoint *c, const char *path) {
    const CheckpointData *d = &c->d;
    printf("checkpoint %s\n", path);
    printf("  format version %d, step %lld (%lld skipped), epoch %.3f, %.0f events seen\n",
           CKPT_FORMAT_VERSION, (long long)d->step, (long long)d->skipped_steps, d->epoch,
           d->events_seen);
    printf("  written by %d rank%s; config hash %016llx; data hash %016llx; seed %llu\n",
           d->world_size, d->world_size == 1 ? "" : "s", (unsigned long long)d->config_hash,
           (unsigned long long)d->data_hash, (unsigned long long)d->seed);
    printf("  model: K=%d actions, action_embed %d, %d categorical, dense %d, H=%d, L=%d, "
           "engagement head %d, window %d; %zu parameters\n",
           d->shape.n_actions, d->shape.action_embed, d->shape.n_cat, d->shape.n_dense,
           d->shape.hidden, d->shape.layers, d->shape.engagement, d->shape.window, d->n_params);
    printf("  data cursor: %d virtual shards, %d lanes (%d per shard)\n", d->n_vshards, d->n_lanes,
           d->lanes_per_shard);
    if (d->has_metrics)
        printf("  last validation: action_nll %.4f top1 %.4f time_nll %.4f gap_mae %.4g (%.0f "
               "targets)\n",
               d->last_valid.action_nll, d->last_valid.top1, d->last_valid.time_nll,
               d->last_valid.gap_mae, d->last_valid.n_targets);
    if (c->has_meta) {
        const DataMeta *m = &c->meta;
        printf("  data: %d %s values", m->vocab_size[0] - 1, m->column[0]);
        for (uint32_t v = 1; v <= m->n_cat; v++)
            printf(", %d %s values", m->vocab_size[v] - 1, m->column[v]);
        printf(" (+ <unk>); log(gap + %g) mean %.4f std %.4f", m->gap_offset, m->loggap_mean,
               m->loggap_std);
        for (uint32_t k = 0; k < m->n_num; k++)
            printf("; %s mean %.4g std %.4g", m->column[1 + m->n_cat + k], m->num_mean[k],
                   m->num_std[k]);
        printf("\n");
    }
    if (d->best.has_best)
        printf("  best so far: %s %.6g at step %lld%s; %lld validations since\n", d->best.metric,
               d->best.best_value, (long long)d->best.best_step,
               d->best.is_best ? " (this checkpoint)" : "", (long long)d->best.evals_since_best);
    const CkptPrivacy *pv = &d->privacy;
    if (pv->dp)
        printf("  privacy: user-level DP-SGD, epsilon %.4g at delta %.3g (%s accountant) after %lld "
               "steps; noise multiplier %.4g, sample rate %.4g, clip %.4g\n",
               pv->epsilon, pv->delta, pv->accountant, (long long)d->step, pv->sigma, pv->q,
               pv->clip);
    else
        printf("  privacy: not differentially private (epsilon unbounded)\n");
    if (pv->exclusion_digest)
        printf("  erasure: honoured an exclusion list of %llu users, digest %016llx\n",
               (unsigned long long)pv->excluded_users, (unsigned long long)pv->exclusion_digest);
    printf("  %-24s %12s %12s %12s %12s %s\n", "tensor", "min", "max", "mean", "rms", "shape");
    TensorRef refs[3 * MODEL_MAX_TENSORS + 2];
    int n = list_tensors(d, refs);
    for (int k = 0; k < n; k++) {
        double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
        size_t bad = 0;
        for (size_t i = 0; i < refs[k].count; i++) {
            double x = refs[k].data[i];
            if (!isfinite(x)) {
                bad++;
                continue;
            }
            mn = x < mn ? x : mn, mx = x > mx ? x : mx, sum += x, sq += x * x;
        }
        double cnt = refs[k].count ? (double)refs[k].count : 1;
        char shape[64];
        if (refs[k].ndim == 1)
            snprintf(shape, sizeof shape, "(%lld)", (long long)refs[k].shape[0]);
        else if (refs[k].ndim == 2)
            snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)refs[k].shape[0],
                     (long long)refs[k].shape[1]);
        else
            snprintf(shape, sizeof shape, "(%lld, %lld, %lld)", (long long)refs[k].shape[0],
                     (long long)refs[k].shape[1], (long long)refs[k].shape[2]);
        printf("  %-24s %12.5g %12.5g %12.5g %12.5g %s%s\n", refs[k].name, mn, mx, sum / cnt,
               sqrt(sq / cnt), shape, bad ? "  NON-FINITE VALUES" : "");
    }
}
