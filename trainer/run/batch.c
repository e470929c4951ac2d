// batch.c: see batch.h.
#include "batch.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

FeatureSpec feature_spec(const DataMeta *m) {
    FeatureSpec fs;
    memset(&fs, 0, sizeof fs);
    fs.n_num = (int)m->n_num;
    fs.n_cat = (int)m->n_cat;
    fs.calendar = m->time_unit_seconds > 0;
    fs.engagement_index = m->engagement_index;
    fs.unit_seconds = m->time_unit_seconds;
    fs.gap_offset = m->gap_offset;
    fs.loggap_mean = m->loggap_mean;
    fs.loggap_std = m->loggap_std;
    fs.log1p = m->numeric_log1p;
    for (int k = 0; k < fs.n_num; k++)
        fs.num_mean[k] = m->num_mean[k], fs.num_std[k] = m->num_std[k];
    fs.gap_input = m->gap_input;
    fs.gap_scale = exp(m->loggap_mean);
    fs.n_dense = fs.n_num + 2 + (fs.calendar ? 4 : 0) + (fs.gap_input ? 1 : 0);
    return fs;
}

static inline double norm_num(const FeatureSpec *fs, int k, double x) {
    return ((fs->log1p ? log1p(x) : x) - fs->num_mean[k]) / fs->num_std[k];
}

double feature_norm_num(const FeatureSpec *fs, int k, double x) {
    return norm_num(fs, k, x);
}

void batchbuf_init(BatchBuf *bb, int max_lanes, int window, int n_cat, int n_dense) {
    memset(bb, 0, sizeof *bb);
    size_t TB = (size_t)max_lanes * (size_t)window;
    bb->max_lanes = max_lanes, bb->window = window, bb->n_cat = n_cat, bb->n_dense = n_dense;
    bb->action = xcalloc(TB, sizeof(int32_t));
    bb->cat = xcalloc(TB * (size_t)(n_cat ? n_cat : 1), sizeof(int32_t));
    bb->tgt_action = xcalloc(TB, sizeof(int32_t));
    bb->dense = xcalloc(TB * (size_t)(n_dense ? n_dense : 1), sizeof(real));
    bb->tgt_loggap = xcalloc(TB, sizeof(real));
    bb->tgt_eng = xcalloc(TB, sizeof(real));
    bb->keep = xcalloc(TB, 1);
    bb->lane_id = xcalloc((size_t)max_lanes, sizeof(uint64_t));
    bb->slot_user = xcalloc(TB, sizeof(int32_t));
    bb->slot_pos = xcalloc(TB, sizeof(int32_t));
}

void batchbuf_free(BatchBuf *bb) {
    free(bb->action), free(bb->cat), free(bb->tgt_action), free(bb->dense);
    free(bb->tgt_loggap), free(bb->tgt_eng), free(bb->keep), free(bb->lane_id);
    free(bb->slot_user), free(bb->slot_pos);
    memset(bb, 0, sizeof *bb);
}

static void begin_batch(BatchBuf *bb, int lanes) {
    bb->view = (Batch){.lanes = lanes,
                       .window = bb->window,
                       .action = bb->action,
                       .cat = bb->cat,
                       .dense = bb->dense,
                       .keep = bb->keep,
                       .tgt_action = bb->tgt_action,
                       .tgt_loggap = bb->tgt_loggap,
                       .tgt_eng = bb->tgt_eng,
                       .lane_id = bb->lane_id};
    bb->n_targets = 0;
}

void feature_time_inputs(const FeatureSpec *fs, real *d, double t_e, double prev_time) {
    if (!isnan(prev_time)) { // the user has a previous event
        double gap = t_e - prev_time;
        d[0] = (real)((log(gap + fs->gap_offset) - fs->loggap_mean) / fs->loggap_std);
        d[1] = 0;
    } else {
        d[0] = 0, d[1] = 1;
    }
    if (fs->calendar) {
        double secs = t_e * fs->unit_seconds, day = floor(secs / 86400.0);
        double tod = (secs - day * 86400.0) / 86400.0;
        double dow = fmod(day + 3.0, 7.0); // 1970-01-01 was a Thursday: Monday = 0
        if (dow < 0) dow += 7.0;
        d[2] = (real)sin(6.283185307179586 * tod), d[3] = (real)cos(6.283185307179586 * tod);
        d[4] = (real)sin(6.283185307179586 * dow / 7.0),
        d[5] = (real)cos(6.283185307179586 * dow / 7.0);
    }
    // The previous gap on a linear-ish scale (d[0] is its log): short gaps ~ gap / scale,
    // long ones ~ log; 0 for a user's first event.
    if (fs->gap_input)
        d[2 + (fs->calendar ? 4 : 0)] =
            isnan(prev_time) ? 0 : (real)log1p((t_e - prev_time) / fs->gap_scale);
}

void batch_fill_input(BatchBuf *bb, const FeatureSpec *fs, const uint8_t *e, double prev_time,
                      size_t r) {
    bb->action[r] = ev_action(e);
    for (int c = 0; c < fs->n_cat; c++) bb->cat[r * fs->n_cat + c] = ev_cat(e, c);
    real *d = bb->dense + r * (size_t)bb->n_dense;
    for (int k = 0; k < fs->n_num; k++) d[k] = (real)norm_num(fs, k, ev_num(e, fs->n_cat, k));
    feature_time_inputs(fs, d + fs->n_num, ev_time(e), prev_time);
    bb->keep[r] = !isnan(prev_time);
}

// Position (t, lane) of the batch gets input event `pos` of user u and its target pos + 1
// (none if pos is the user's last event).
static void fill_position(BatchBuf *bb, const FeatureSpec *fs, const Shard *sh, const ShardUser *u,
                          int pos, int t, int lane, int lanes) {
    const size_t r = (size_t)t * lanes + lane, eb = sh->hdr.event_bytes;
    const uint8_t *e = sh->events + (u->first_event + (uint64_t)pos) * eb, *nx = e + eb;
    batch_fill_input(bb, fs, e, pos > 0 ? ev_time(e - eb) : NAN, r);
    const double t_e = ev_time(e);
    if (pos + 1 >= (int)u->n_events) {
        bb->tgt_action[r] = -1, bb->tgt_loggap[r] = 0, bb->tgt_eng[r] = 0;
        return;
    }
    bb->tgt_action[r] = ev_action(nx);
    bb->tgt_loggap[r] = (real)log(ev_time(nx) - t_e + fs->gap_offset);
    bb->tgt_eng[r] =
        fs->engagement_index >= 0
            ? (real)norm_num(fs, fs->engagement_index, ev_num(nx, fs->n_cat, fs->engagement_index))
            : 0;
    bb->n_targets++;
}

static void pad_position(BatchBuf *bb, int t, int lane, int lanes) {
    const size_t r = (size_t)t * lanes + lane;
    bb->action[r] = 0;
    for (int c = 0; c < bb->n_cat; c++) bb->cat[r * bb->n_cat + c] = 0;
    memset(bb->dense + r * (size_t)bb->n_dense, 0, sizeof(real) * (size_t)bb->n_dense);
    bb->keep[r] = 0;
    bb->tgt_action[r] = -1;
    bb->tgt_loggap[r] = 0;
    bb->tgt_eng[r] = 0;
}

void batch_fill_windows(BatchBuf *bb, const Dataset *ds, int split, int n, const UserWindow *w) {
    if (n > bb->max_lanes || n < 1)
        fatal("internal: %d lanes for a batch buffer of %d", n, bb->max_lanes);
    const FeatureSpec fs = feature_spec(&ds->meta);
    begin_batch(bb, n);
    for (int k = 0; k < n; k++) {
        const Shard *sh = &ds->shards[split][w[k].shard];
        const ShardUser *u = &sh->users[w[k].user];
        const int last = (int)u->n_events - 1; // positions start .. last - 1 have targets
        bb->lane_id[k] = w[k].lane_id;
        for (int t = 0; t < bb->window; t++) {
            const int pos = w[k].start + t;
            if (pos < last)
                fill_position(bb, &fs, sh, u, pos, t, k, n);
            else
                pad_position(bb, t, k, n);
        }
    }
}

// ---------------------------------------------------------------- training stream

void train_stream_init(TrainStream *ts, const Dataset *ds, int lanes_per_shard, uint64_t seed) {
    memset(ts, 0, sizeof *ts);
    ts->ds = ds;
    ts->fs = feature_spec(&ds->meta);
    ts->seed = seed;
    ts->lanes_per_shard = lanes_per_shard;
    ts->n_lanes = ds->n_shards * lanes_per_shard;
    ts->first_lane = ds->first_shard * lanes_per_shard;
    ts->shard = xcalloc((size_t)ds->n_shards, sizeof(ShardCursor));
    ts->lane = xcalloc((size_t)ts->n_lanes, sizeof(LaneCursor));
    for (int l = 0; l < ts->n_lanes; l++) ts->lane[l].user = -1;
    ts->perm = xcalloc((size_t)ds->n_shards, sizeof(uint32_t *));
    ts->perm_epoch = xcalloc((size_t)ds->n_shards, sizeof(int64_t));
    for (int s = 0; s < ds->n_shards; s++) {
        uint64_t n = ds->shards[SPLIT_TRAIN][s].hdr.n_users;
        if (n == 0)
            fatal("virtual shard %d has no training users: use fewer data.virtual_shards (%u) "
                  "for this little data",
                  ds->first_shard + s, ds->meta.n_vshards);
        ts->perm[s] = xmalloc(sizeof(uint32_t) * n);
        ts->perm_epoch[s] = -1;
    }
}

void train_stream_free(TrainStream *ts) {
    for (int s = 0; s < ts->ds->n_shards; s++) free(ts->perm[s]);
    free(ts->perm), free(ts->perm_epoch), free(ts->shard), free(ts->lane);
    memset(ts, 0, sizeof *ts);
}

// The order of a shard's users in one epoch: Fisher-Yates from (seed, shard, epoch).
static const uint32_t *epoch_perm(TrainStream *ts, int s, int64_t epoch) {
    if (ts->perm_epoch[s] == epoch) return ts->perm[s];
    uint32_t n = (uint32_t)ts->ds->shards[SPLIT_TRAIN][s].hdr.n_users;
    uint32_t *p = ts->perm[s];
    for (uint32_t i = 0; i < n; i++) p[i] = i;
    uint64_t global_shard = (uint64_t)(ts->ds->first_shard + s);
    Rng r = rng_make(ts->seed, mix64(global_shard * 0x100000001ULL + (uint64_t)epoch) ^ 0x5a);
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = (uint32_t)rng_below(&r, (uint64_t)i + 1);
        uint32_t tmp = p[i];
        p[i] = p[j], p[j] = tmp;
    }
    ts->perm_epoch[s] = epoch;
    return p;
}

static int32_t next_train_user(TrainStream *ts, int s) {
    ShardCursor *c = &ts->shard[s];
    int64_t n = (int64_t)ts->ds->shards[SPLIT_TRAIN][s].hdr.n_users;
    if (c->next >= n) c->epoch++, c->next = 0;
    return (int32_t)epoch_perm(ts, s, c->epoch)[c->next++];
}

void train_stream_next(TrainStream *ts, int first, int n, BatchBuf *bb) {
    if (n > bb->max_lanes)
        fatal("internal: %d lanes exceed the batch buffer (%d)", n, bb->max_lanes);
    begin_batch(bb, n);
    // Lane by lane, in a fixed order, so lanes of one shard take users in the same order
    // whatever the number of ranks.
    for (int k = 0; k < n; k++) {
        int l = first + k, s = l / ts->lanes_per_shard;
        const Shard *sh = &ts->ds->shards[SPLIT_TRAIN][s];
        LaneCursor *lc = &ts->lane[l];
        bb->lane_id[k] = (uint64_t)(ts->first_lane + l);
        for (int t = 0; t < bb->window; t++) {
            if (lc->user < 0 || lc->pos >= (int32_t)sh->users[lc->user].n_events - 1) {
                lc->user = next_train_user(ts, s);
                lc->pos = 0;
            }
            fill_position(bb, &ts->fs, sh, &sh->users[lc->user], lc->pos, t, k, n);
            lc->pos++;
        }
    }
}

double train_stream_epoch(const TrainStream *ts) {
    // Mean over this rank's shards of (completed epochs + position / users).
    double e = 0;
    for (int s = 0; s < ts->ds->n_shards; s++) {
        double n = (double)ts->ds->shards[SPLIT_TRAIN][s].hdr.n_users;
        e += (double)ts->shard[s].epoch + (double)ts->shard[s].next / n;
    }
    return e / ts->ds->n_shards;
}

// ---------------------------------------------------------------- evaluation stream

void eval_stream_init(EvalStream *es, const Dataset *ds, int split, int n_lanes, int include_last) {
    memset(es, 0, sizeof *es);
    es->include_last = include_last;
    es->ds = ds;
    es->fs = feature_spec(&ds->meta);
    es->split = split;
    es->n_lanes = n_lanes;
    for (int s = 0; s < ds->n_shards; s++) es->n_users += (int64_t)ds->shards[split][s].hdr.n_users;
    es->user_shard = xmalloc(sizeof(int32_t) * (size_t)(es->n_users + 1));
    es->user_index = xmalloc(sizeof(int32_t) * (size_t)(es->n_users + 1));
    int64_t k = 0;
    for (int s = 0; s < ds->n_shards; s++)
        for (uint64_t u = 0; u < ds->shards[split][s].hdr.n_users; u++)
            es->user_shard[k] = s, es->user_index[k++] = (int32_t)u;
    es->lane = xmalloc(sizeof(LaneCursor) * (size_t)n_lanes);
    for (int l = 0; l < n_lanes; l++) es->lane[l] = (LaneCursor){-1, 0};
}

void eval_stream_free(EvalStream *es) {
    free(es->user_shard), free(es->user_index), free(es->lane);
    memset(es, 0, sizeof *es);
}

const ShardUser *eval_stream_user(const EvalStream *es, int32_t user, const Shard **shard) {
    *shard = &es->ds->shards[es->split][es->user_shard[user]];
    return &(*shard)->users[es->user_index[user]];
}

// Events a lane feeds from user u: all but the last (whose next event is unknown), or all.
static int32_t inputs_of(const EvalStream *es, const ShardUser *u) {
    return (int32_t)u->n_events - (es->include_last ? 0 : 1);
}

int eval_stream_next(EvalStream *es, BatchBuf *bb) {
    int any = 0;
    for (int l = 0; l < es->n_lanes; l++)
        if (es->lane[l].user >= 0) any = 1;
    if (!any && es->next_user >= es->n_users) return 0;
    begin_batch(bb, es->n_lanes);
    for (int l = 0; l < es->n_lanes; l++) {
        LaneCursor *lc = &es->lane[l];
        bb->lane_id[l] = (uint64_t)l;
        for (int t = 0; t < bb->window; t++) {
            const Shard *sh =
                lc->user >= 0 ? &es->ds->shards[es->split][es->user_shard[lc->user]] : NULL;
            if (lc->user >= 0 && lc->pos >= inputs_of(es, &sh->users[es->user_index[lc->user]]))
                lc->user = -1;
            if (lc->user < 0 && es->next_user < es->n_users) {
                lc->user = (int32_t)es->next_user++;
                lc->pos = 0;
                sh = &es->ds->shards[es->split][es->user_shard[lc->user]];
            }
            const size_t r = (size_t)t * es->n_lanes + l;
            if (lc->user < 0) {
                pad_position(bb, t, l, es->n_lanes);
                bb->slot_user[r] = -1, bb->slot_pos[r] = -1;
                continue;
            }
            fill_position(bb, &es->fs, sh, &sh->users[es->user_index[lc->user]], lc->pos, t, l,
                          es->n_lanes);
            bb->slot_user[r] = lc->user, bb->slot_pos[r] = lc->pos;
            lc->pos++;
        }
    }
    // A lane whose user just ended is free for the next window.
    for (int l = 0; l < es->n_lanes; l++) {
        LaneCursor *lc = &es->lane[l];
        if (lc->user < 0) continue;
        const Shard *sh = &es->ds->shards[es->split][es->user_shard[lc->user]];
        if (lc->pos >= inputs_of(es, &sh->users[es->user_index[lc->user]])) lc->user = -1;
    }
    return 1;
}
