// live.c: see live.h.
#include "live.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hash.h"
#include "util.h"

#define SNAP_MAGIC   "LSTMSRVS"
#define SNAP_VERSION 4

struct LiveScorer {
    Model *model; // the checkpoint's parameters, activations for (max_batch lanes, T = 1)
    LossConfig lc;
    ScoreSpec spec;
    SurpriseParams sp;
    FeatureSpec fs;
    int max_batch, L, H, O;
    size_t rec_bytes, ring_off, h_off, c_off, y_off; // record layout, bytes
    size_t f_off, slot_bytes; // the change point's fresh states: CP_SLOTS of (h, c, y)
    int change;               // zwindow: fresh rows run beside the carried ones
    uint64_t model_id;
    uint8_t *arena; // n_users records
    long long n_users, cap_users, n_events;
    int32_t *table; // open addressing: record index, -1 empty
    size_t n_slots; // power of two
    // the batch
    int n_pend;
    int32_t *pend_user;
    uint8_t *pend_event; // (max_batch, event_bytes)
    double *pend_arrival;
    int32_t *row_pend, *row_slot; // (max_batch * CP_SLOTS): a fresh row's event and slot
    // events waiting for a later batch, in arrival order
    int n_wait, cap_wait;
    int32_t *wait_user;
    uint8_t *wait_event;
    double *wait_arrival;
    size_t event_bytes;
    LaneState st;
    BatchBuf bb;
};

static LiveUser *rec_at(const LiveScorer *ls, long long i) {
    return (LiveUser *)(ls->arena + (size_t)i * ls->rec_bytes);
}
static RingEntry *rec_ring(const LiveScorer *ls, LiveUser *u) {
    return (RingEntry *)((uint8_t *)u + ls->ring_off);
}
static real *rec_real(LiveUser *u, size_t off) {
    return (real *)((uint8_t *)u + off);
}
// Change-point slot k's h (L*H), then c (L*H) and y (O).
static real *rec_fresh(const LiveScorer *ls, LiveUser *u, int k) {
    return rec_real(u, ls->f_off + (size_t)k * ls->slot_bytes);
}

LiveScorer *live_open(Scorer *sc, const ScoreSpec *spec, const SurpriseParams *sp, int max_batch) {
    LiveScorer *ls = xcalloc(1, sizeof *ls);
    ModelShape shape = sc->model->shape;
    // Rows of a batch: its events' carried states, then (zwindow) up to CP_SLOTS fresh ones each.
    ls->change = spec->statistic == STAT_ZWINDOW;
    const int rows = max_batch * (1 + (ls->change ? CP_SLOTS : 0));
    shape.max_lanes = rows, shape.window = 1;
    ls->model = model_create(&shape);
    memcpy(ls->model->params, sc->model->params, sizeof(real) * ls->model->n_params);
    ls->lc = sc->lc, ls->spec = *spec, ls->sp = *sp;
    ls->fs = feature_spec(&sc->ds.meta);
    ls->max_batch = max_batch, ls->L = shape.layers, ls->H = shape.hidden;
    ls->O = model_outputs(&shape);
    ls->ring_off = (sizeof(LiveUser) + 15) / 16 * 16;
    ls->h_off = ls->ring_off + sizeof(RingEntry) * (size_t)score_ring_len(spec);
    ls->c_off = ls->h_off + sizeof(real) * (size_t)(ls->L * ls->H);
    ls->y_off = ls->c_off + sizeof(real) * (size_t)(ls->L * ls->H);
    ls->f_off = ls->y_off + sizeof(real) * (size_t)ls->O;
    ls->slot_bytes = ls->change ? sizeof(real) * (size_t)(2 * ls->L * ls->H + ls->O) : 0;
    ls->rec_bytes = (ls->f_off + CP_SLOTS * ls->slot_bytes + 15) / 16 * 16;
    uint64_t settings[4] = {(uint64_t)spec->statistic, (uint64_t)spec->window, ls->rec_bytes,
                            (uint64_t)(sp->eng_sigma * 1e12)};
    ls->model_id = hash_bytes(settings, sizeof settings,
                              hash_bytes(ls->model->params, sizeof(real) * ls->model->n_params, 5));
    ls->n_slots = 1024;
    ls->table = xmalloc(sizeof(int32_t) * ls->n_slots);
    memset(ls->table, 0xff, sizeof(int32_t) * ls->n_slots);
    ls->event_bytes = shard_event_bytes((int)sc->ds.meta.n_cat, (int)sc->ds.meta.n_num);
    ls->pend_user = xmalloc(sizeof(int32_t) * (size_t)max_batch);
    ls->pend_event = xcalloc((size_t)max_batch, ls->event_bytes);
    ls->pend_arrival = xmalloc(sizeof(double) * (size_t)max_batch);
    ls->row_pend = xmalloc(sizeof(int32_t) * (size_t)max_batch * CP_SLOTS);
    ls->row_slot = xmalloc(sizeof(int32_t) * (size_t)max_batch * CP_SLOTS);
    ls->st = lane_state_alloc(&shape, rows);
    batchbuf_init(&ls->bb, rows, 1, shape.n_cat, shape.n_dense);
    return ls;
}

void live_close(LiveScorer *ls) {
    model_free(ls->model);
    free(ls->arena), free(ls->table), free(ls->pend_user), free(ls->pend_event);
    free(ls->pend_arrival), free(ls->wait_user), free(ls->wait_event), free(ls->wait_arrival);
    free(ls->row_pend), free(ls->row_slot);
    lane_state_free(&ls->st);
    batchbuf_free(&ls->bb);
    free(ls);
}

static size_t slot_of(const LiveScorer *ls, uint64_t hash) {
    size_t s = (size_t)mix64(hash) & (ls->n_slots - 1);
    while (ls->table[s] >= 0 && rec_at(ls, ls->table[s])->hash != hash) s = (s + 1) & (ls->n_slots - 1);
    return s;
}

static void table_grow(LiveScorer *ls) {
    free(ls->table);
    ls->n_slots *= 2;
    ls->table = xmalloc(sizeof(int32_t) * ls->n_slots);
    memset(ls->table, 0xff, sizeof(int32_t) * ls->n_slots);
    for (long long i = 0; i < ls->n_users; i++) ls->table[slot_of(ls, rec_at(ls, i)->hash)] = (int32_t)i;
}

// The record of a user, created (fresh state) if new.
static long long find_or_add(LiveScorer *ls, uint64_t hash) {
    size_t s = slot_of(ls, hash);
    if (ls->table[s] >= 0) return ls->table[s];
    if (ls->n_users == INT32_MAX) fatal("serve: more than %d users", INT32_MAX);
    if (ls->n_users == ls->cap_users) {
        ls->cap_users = ls->cap_users ? 2 * ls->cap_users : 1024;
        ls->arena = xrealloc(ls->arena, ls->rec_bytes * (size_t)ls->cap_users);
    }
    long long i = ls->n_users++;
    LiveUser *u = rec_at(ls, i);
    memset(u, 0, ls->rec_bytes);
    u->hash = hash, u->last_time = u->queued_time = NAN;
    user_score_reset(&u->us);
    ls->table[s] = (int32_t)i;
    if ((size_t)ls->n_users * 2 > ls->n_slots) table_grow(ls);
    return i;
}

static void to_batch(LiveScorer *ls, int32_t i, const uint8_t *record, double arrival) {
    ls->pend_user[ls->n_pend] = i;
    memcpy(ls->pend_event + (size_t)ls->n_pend * ls->event_bytes, record, ls->event_bytes);
    ls->pend_arrival[ls->n_pend++] = arrival;
    rec_at(ls, i)->in_batch = 1;
}

static void to_wait(LiveScorer *ls, int32_t i, const uint8_t *record, double arrival) {
    if (ls->n_wait == ls->cap_wait) {
        ls->cap_wait = ls->cap_wait ? 2 * ls->cap_wait : 256;
        ls->wait_user = xrealloc(ls->wait_user, sizeof(int32_t) * (size_t)ls->cap_wait);
        ls->wait_event = xrealloc(ls->wait_event, ls->event_bytes * (size_t)ls->cap_wait);
        ls->wait_arrival = xrealloc(ls->wait_arrival, sizeof(double) * (size_t)ls->cap_wait);
    }
    ls->wait_user[ls->n_wait] = i;
    memcpy(ls->wait_event + (size_t)ls->n_wait * ls->event_bytes, record, ls->event_bytes);
    ls->wait_arrival[ls->n_wait++] = arrival;
}

int live_push(LiveScorer *ls, uint64_t hash, const uint8_t *record, double arrival) {
    long long i = find_or_add(ls, hash);
    LiveUser *u = rec_at(ls, i);
    if (!isnan(u->queued_time) && ev_time(record) < u->queued_time) return -1;
    u->queued_time = ev_time(record);
    u->queued++;
    // A user already queued waits behind its own events: its order is arrival order.
    if (u->queued > 1 || ls->n_pend == ls->max_batch)
        to_wait(ls, (int32_t)i, record, arrival);
    else
        to_batch(ls, (int32_t)i, record, arrival);
    return 1;
}

int live_waiting(const LiveScorer *ls) {
    return ls->n_wait;
}
int live_batch_full(const LiveScorer *ls) {
    // Many waiting (one user flooding): score them rather than let the queue grow.
    return ls->n_pend == ls->max_batch || ls->n_wait >= 16 * ls->max_batch;
}
double live_oldest(const LiveScorer *ls) {
    double t = INFINITY;
    if (ls->n_pend) t = ls->pend_arrival[0];
    if (ls->n_wait && ls->wait_arrival[0] < t) t = ls->wait_arrival[0];
    return t;
}

// After a batch: waiting events move into the next one, in order, one per user.
static void refill(LiveScorer *ls) {
    int kept = 0;
    for (int k = 0; k < ls->n_wait; k++) {
        int32_t i = ls->wait_user[k];
        const uint8_t *e = ls->wait_event + (size_t)k * ls->event_bytes;
        LiveUser *u = rec_at(ls, i);
        if (!u->in_batch && ls->n_pend < ls->max_batch && !u->stay) {
            to_batch(ls, i, e, ls->wait_arrival[k]);
        } else {
            u->stay = 1; // later events of this user stay behind this one
            if (kept != k) {
                ls->wait_user[kept] = i;
                memmove(ls->wait_event + (size_t)kept * ls->event_bytes, e, ls->event_bytes);
                ls->wait_arrival[kept] = ls->wait_arrival[k];
            }
            kept++;
        }
    }
    ls->n_wait = kept;
    for (int k = 0; k < ls->n_wait; k++) rec_at(ls, ls->wait_user[k])->stay = 0;
}

int live_pending(const LiveScorer *ls) {
    return ls->n_pend;
}
long long live_users(const LiveScorer *ls) {
    return ls->n_users;
}
long long live_events(const LiveScorer *ls) {
    return ls->n_events;
}

// ---------------------------------------------------------------- one micro-batch

// Row r of the batch's state from (save: into) h and c of L layers.
static void state_row(LiveScorer *ls, int r, real *h, real *c, int save) {
    const size_t H = (size_t)ls->H;
    for (int l = 0; l < ls->L; l++) {
        real *sh = ls->st.h[l] + (size_t)r * H, *sc = ls->st.c[l] + (size_t)r * H;
        if (save) memcpy(h + l * H, sh, sizeof(real) * H), memcpy(c + l * H, sc, sizeof(real) * H);
        else memcpy(sh, h + l * H, sizeof(real) * H), memcpy(sc, c + l * H, sizeof(real) * H);
    }
}

// The fresh rows of pending event k (the user's event e = n_events): one per change-point
// segment covering it (starts t = mW >= W, t <= e < t + 4W), from row *rows on; a segment
// starting at e starts from the initial state (its first event, as for a new user), the others
// score the event against their last prediction into ev->fresh.
static void fresh_rows(LiveScorer *ls, int k, const uint8_t *e, real loggap, real eng,
                       EventSurprise *ev, int *rows) {
    LiveUser *u = rec_at(ls, ls->pend_user[k]);
    const int W = ls->spec.window, LH = ls->L * ls->H;
    const int64_t n = u->n_events;
    for (int64_t t = n / W * W; t >= W && t > n - cp_len(W); t -= W) {
        const int slot = cp_slot(t, W), r = *rows;
        real *f = rec_fresh(ls, u, slot);
        batch_fill_input(&ls->bb, &ls->fs, e, t == n ? NAN : u->last_time, (size_t)r);
        if (t < n) {
            state_row(ls, r, f, f + LH, 0);
            EventSurprise fe;
            surprise_event(&ls->sp, f + 2 * LH, ev_action(e), loggap, eng, &fe);
            for (int q = 0; q < N_PARTS; q++) ev->fresh[slot][q] = (float)fe.s[q];
        }
        ls->row_pend[r - ls->n_pend] = k, ls->row_slot[r - ls->n_pend] = slot;
        (*rows)++;
    }
}

// The batch's rows: every pending event's carried state and inputs (scored against the
// prediction after the user's previous event: ev[k], scored[k]) and its fresh rows.
static int flush_prepare(LiveScorer *ls, EventSurprise *ev, int *scored) {
    const FeatureSpec *fs = &ls->fs;
    int rows = ls->n_pend;
    for (int k = 0; k < ls->n_pend; k++) {
        LiveUser *u = rec_at(ls, ls->pend_user[k]);
        const uint8_t *e = ls->pend_event + (size_t)k * ls->event_bytes;
        state_row(ls, k, rec_real(u, ls->h_off), rec_real(u, ls->c_off), 0);
        batch_fill_input(&ls->bb, fs, e, u->n_events > 0 ? u->last_time : NAN, (size_t)k);
        scored[k] = u->n_events > 0;
        // The event's values as the batcher's targets hold them (batch.c).
        const double t = ev_time(e);
        real loggap = scored[k] ? (real)log(t - u->last_time + fs->gap_offset) : 0;
        real eng = fs->engagement_index >= 0
                       ? (real)feature_norm_num(fs, fs->engagement_index,
                                                ev_num(e, fs->n_cat, fs->engagement_index))
                       : 0;
        if (scored[k]) surprise_event(&ls->sp, rec_real(u, ls->y_off), ev_action(e), loggap, eng, &ev[k]);
        if (ls->change) fresh_rows(ls, k, e, loggap, eng, &ev[k], &rows);
        if (scored[k]) user_score_add(&u->us, rec_ring(ls, u), &ls->spec, &ev[k], u->n_events);
    }
    return rows;
}

void live_flush(LiveScorer *ls, LiveEmit emit, void *ctx) {
    const int n = ls->n_pend, LH = ls->L * ls->H, O = ls->O;
    if (n == 0) return;
    EventSurprise *ev = xmalloc(sizeof(EventSurprise) * (size_t)n);
    int *scored = xmalloc(sizeof(int) * (size_t)n);
    const int rows = flush_prepare(ls, ev, scored);
    BatchBuf *bb = &ls->bb;
    for (int k = 0; k < rows; k++) bb->tgt_action[k] = -1;
    Batch view = {.lanes = rows, .window = 1, .action = bb->action, .cat = bb->cat,
                  .dense = bb->dense, .keep = bb->keep, .tgt_action = bb->tgt_action,
                  .tgt_loggap = bb->tgt_loggap, .tgt_eng = bb->tgt_eng, .lane_id = bb->lane_id};
    model_forward(ls->model, &view, &ls->st, &ls->lc, NULL, NULL, 0);
    for (int r = n; r < rows; r++) {
        real *f = rec_fresh(ls, rec_at(ls, ls->pend_user[ls->row_pend[r - n]]), ls->row_slot[r - n]);
        state_row(ls, r, f, f + LH, 1);
        memcpy(f + 2 * LH, ls->model->act.y + (size_t)r * O, sizeof(real) * O);
    }
    for (int k = 0; k < n; k++) {
        LiveUser *u = rec_at(ls, ls->pend_user[k]);
        const uint8_t *e = ls->pend_event + (size_t)k * ls->event_bytes;
        state_row(ls, k, rec_real(u, ls->h_off), rec_real(u, ls->c_off), 1);
        memcpy(rec_real(u, ls->y_off), ls->model->act.y + (size_t)k * O, sizeof(real) * O);
        u->last_time = ev_time(e);
        LiveResult r = {u, u->n_events, scored[k] ? &ev[k] : NULL, rec_real(u, ls->y_off),
                        ls->pend_arrival[k], e};
        u->n_events++;
        u->queued--, u->in_batch = 0;
        ls->n_events++;
        if (emit) emit(ctx, &r);
    }
    ls->n_pend = 0;
    refill(ls);
    free(ev), free(scored);
}

// ---------------------------------------------------------------- snapshots

typedef struct {
    char magic[8];
    uint32_t version, rec_bytes;
    uint64_t model_id, n_users, n_events;
} SnapHeader;

// TRAINER_FAULT_SNAPSHOT=kill:N[:K]: SIGKILL after N bytes of the K-th snapshot (default 1).
static long long g_kill_at = -1;

static void fault_arm(void) {
    static int snapshots = 0;
    const char *f = getenv("TRAINER_FAULT_SNAPSHOT");
    snapshots++;
    g_kill_at = -1;
    if (!f || strncmp(f, "kill:", 5) != 0) return;
    const char *k = strchr(f + 5, ':');
    if ((k ? atoi(k + 1) : 1) == snapshots) g_kill_at = atoll(f + 5);
}

// Writes all of buf (dying where the armed fault says).
static int write_all(int fd, const void *buf, size_t len, size_t *written) {
    const long long kill_at = g_kill_at;
    const char *p = buf;
    while (len > 0) {
        size_t chunk = len;
        if (kill_at >= 0 && *written + chunk > (size_t)kill_at) chunk = (size_t)kill_at - *written;
        if (kill_at >= 0 && chunk == 0) raise(SIGKILL);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, len -= (size_t)w, *written += (size_t)w;
    }
    return 0;
}

int live_snapshot_write(const LiveScorer *ls, const char *path, char *err, size_t cap) {
    char tmp[CFG_PATH_LEN + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fault_arm();
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "%s: cannot create (%s)", tmp, strerror(errno));
        return -1;
    }
    SnapHeader h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION, h.rec_bytes = (uint32_t)ls->rec_bytes, h.model_id = ls->model_id;
    h.n_users = (uint64_t)ls->n_users, h.n_events = (uint64_t)ls->n_events;
    size_t body = ls->rec_bytes * (size_t)ls->n_users, written = 0;
    uint64_t sum = hash_bytes(ls->arena, body, hash_bytes(&h, sizeof h, 0x5a));
    int rc = write_all(fd, &h, sizeof h, &written);
    if (rc == 0 && body) rc = write_all(fd, ls->arena, body, &written);
    if (rc == 0) rc = write_all(fd, &sum, sizeof sum, &written);
    if (rc != 0 || fsync(fd) != 0) {
        snprintf(err, cap, "%s: write failed (%s)", tmp, strerror(errno));
        close(fd), unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0 || fsync_dir_of(path) != 0) {
        snprintf(err, cap, "%s: close/rename failed (%s)", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int live_snapshot_read(LiveScorer *ls, const char *path, char *err, size_t cap) {
    size_t size = 0;
    uint8_t *buf = (uint8_t *)read_file(path, &size);
    if (!buf) {
        snprintf(err, cap, "%s: cannot read (%s)", path, strerror(errno));
        return -1;
    }
    SnapHeader h;
    const char *why = NULL;
    if (size < sizeof h + 8) why = "too short to be a snapshot";
    if (!why) {
        memcpy(&h, buf, sizeof h);
        if (memcmp(h.magic, SNAP_MAGIC, 8) != 0 || h.version != SNAP_VERSION) why = "not a serve snapshot (magic or version)";
        else if (h.rec_bytes != ls->rec_bytes || h.model_id != ls->model_id)
            why = "written for another model or other score settings";
        else if (size != sizeof h + (size_t)h.n_users * h.rec_bytes + 8) why = "truncated";
    }
    if (!why) {
        size_t body = (size_t)h.n_users * h.rec_bytes;
        uint64_t sum;
        memcpy(&sum, buf + sizeof h + body, 8);
        if (sum != hash_bytes(buf + sizeof h, body, hash_bytes(&h, sizeof h, 0x5a))) why = "checksum mismatch";
    }
    if (why) {
        snprintf(err, cap, "%s: %s", path, why);
        free(buf);
        return -1;
    }
    ls->n_users = 0;
    for (uint64_t i = 0; i < h.n_users; i++) {
        const LiveUser *u = (const LiveUser *)(buf + sizeof h + i * h.rec_bytes);
        long long k = find_or_add(ls, u->hash);
        memcpy(rec_at(ls, k), u, ls->rec_bytes);
    }
    ls->n_events = (long long)h.n_events;
    free(buf);
    return 0;
}
