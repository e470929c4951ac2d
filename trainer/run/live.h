// live.h: the live scorer behind `trainer serve`: every user's LSTM state in memory, events
// scored as they arrive with the scoring core of surprise.h, micro-batched across users so
// the cell runs as one GEMM over up to max_batch lanes (T = 1), not a GEMV per event.
//
// Users are keyed by their keyed hash (raw ids are never stored) in an open-addressing table
// over one flat arena of fixed-size records: hash, last event time, event count, the
// UserScore with its ring, (h, c) of every layer and the head outputs y after the last event
// (what the next event is scored against), and (zwindow) the same of the change point's
// CP_SLOTS fresh states (surprise.h): an event's batch row is followed by one row per segment
// covering it, so serve scores the fresh states exactly as score's segment pass does (the
// cell then runs over up to (1 + CP_SLOTS) * max_batch rows). A batch holds a user at most once: an event of a
// user already in it waits (in arrival order) for a later batch, which other users' events
// keep filling meanwhile, so every user's events are scored in arrival order.
//
// Snapshot (--state): "LSTMSRVS", u32 version, u32 record bytes, u64 model id (hash of the
// parameters and the score settings), u64 users, u64 events, the records, u64 checksum of
// everything before it. Written to PATH.tmp, fsynced, renamed over PATH, directory fsynced,
// so a crash at any point leaves the previous snapshot whole. TRAINER_FAULT_SNAPSHOT=kill:N[:K]
// (tests) kills the process with SIGKILL after N bytes of the K-th snapshot (default: first).
#pragma once
#include <stdint.h>

#include "batch.h"
#include "scoring.h"
#include "surprise.h"

typedef struct {
    uint64_t hash;
    double last_time;   // of the last event scored
    double queued_time; // of the last event queued (last_time when none is)
    int64_t n_events;
    int32_t queued, in_batch; // events queued (batch and waiting); 1 if one is in the batch
    int32_t stay, pad;        // refill's mark: this user's waiting events stay behind
    UserScore us;
} LiveUser; // followed in its record by the ring, then h, c (L*H each) and y (O) as floats,
            // then (zwindow) CP_SLOTS of (h, c, y) for the fresh states

typedef struct LiveScorer LiveScorer;

// What one scored event yields (ev is NULL for a user's first event: nothing predicted it).
typedef struct {
    const LiveUser *user;
    int64_t event;           // index of the event within the user's history
    const EventSurprise *ev; // NULL for the first event
    const real *y;           // head outputs after this event: the next event's prediction
    double arrival;          // now_seconds() when the row was read
    const uint8_t *record;   // the event (shards.h layout)
} LiveResult;
typedef void (*LiveEmit)(void *ctx, const LiveResult *r);

LiveScorer *live_open(Scorer *sc, const ScoreSpec *spec, const SurpriseParams *sp, int max_batch);
void live_close(LiveScorer *ls);
// Queues one event of user `hash`: into the batch, or to wait if the user is in it already;
// returns 1, or -1 (nothing queued) if the event is older than the user's last one.
int live_push(LiveScorer *ls, uint64_t hash, const uint8_t *record, double arrival);
int live_pending(const LiveScorer *ls); // events in the batch
int live_waiting(const LiveScorer *ls); // events waiting for a later batch
int live_batch_full(const LiveScorer *ls);
double live_oldest(const LiveScorer *ls); // arrival of the oldest event queued (batch or waiting)
// Runs the batch through the model and calls emit for each of its events, then moves waiting
// events into the next batch (flush again until live_pending and live_waiting are 0).
void live_flush(LiveScorer *ls, LiveEmit emit, void *ctx);
long long live_users(const LiveScorer *ls);
long long live_events(const LiveScorer *ls);
// 0, or -1 with the reason in err (read: also a snapshot of another model or settings).
int live_snapshot_write(const LiveScorer *ls, const char *path, char *err, size_t cap);
int live_snapshot_read(LiveScorer *ls, const char *path, char *err, size_t cap);
