// explain_change.c: see explain_change.h.
#include "explain_change.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

// What the statistic read of every scored event: its surprisal per part under the carried
// state (double, as the score adds it) and under each covering segment's fresh state.
typedef struct {
    double s[N_PARTS];
    float fresh[CP_SLOTS][N_PARTS];
} EventRecord;

typedef struct {
    const ScoreSpec *spec;
    const Calibration *cal;
    const Shard *shards; // the pass's shards (this rank's of the split)
    EventRecord **rec;   // (n_shards) x (shard events)
    UserRows *events, *targets;
    long long n;
} ChangeExplain;

void explain_change_groups(FeatureGroups *fg) {
    memset(fg, 0, sizeof *fg);
    fg->n_groups = N_PARTS;
    for (int p = 0; p < N_PARTS; p++) snprintf(fg->name[p], sizeof fg->name[p], "%s", PART_NAMES[p]);
    fg->tod_group = fg->dow_group = -1;
}

static void on_event(void *ctx, const ShardUser *u, const Shard *sh, int64_t event,
                     const EventSurprise *ev, const UserScore *us) {
    (void)us;
    ChangeExplain *ce = ctx;
    EventRecord *r = &ce->rec[sh - ce->shards][u->first_event + (uint64_t)event];
    memcpy(r->s, ev->s, sizeof r->s);
    memcpy(r->fresh, ev->fresh, sizeof r->fresh);
}

// A flagged user whose strongest channel is the change point: its segment's window, latest
// event first (offset 1), each part's addition; the sum in event order, as the score adds.
static void on_user(void *ctx, const ShardUser *u, const Shard *sh, const UserScore *us) {
    ChangeExplain *ce = ctx;
    const Peak *pk = &us->peak;
    if (!(us->score > ce->cal->threshold) || pk->kind != PEAK_CHANGE) return;
    const int W = ce->spec->window;
    const int64_t t = pk->start - cp_burn(W);
    const int slot = cp_slot(t, W);
    const EventRecord *rec = ce->rec[sh - ce->shards] + u->first_event;
    const unsigned long long h = (unsigned long long)u->user_hash;
    for (int64_t e = pk->end; e >= pk->start; e--)
        for (int p = 0; p < N_PARTS; p++)
            fprintf(ce->events->f, "%016llx,%lld,%lld,%s,%.9g\n", h, (long long)pk->end,
                    (long long)(pk->end - e + 1), PART_NAMES[p],
                    cp_term(rec[e].s[p], rec[e].fresh[slot][p]));
    double sum = 0;
    for (int64_t e = pk->start; e <= pk->end; e++) {
        double d = 0;
        for (int p = 0; p < N_PARTS; p++) d += cp_term(rec[e].s[p], rec[e].fresh[slot][p]);
        sum += d;
    }
    const double err = fabs(sum - pk->z) / fmax(fabs(pk->z), 0.01);
    fprintf(ce->targets->f, "%016llx,%lld,change:%lld,%s,%.9g,%.9g,0,%.9g,%.3e,0,,,,,\n", h,
            (long long)pk->end, (long long)t, user_score_reason_text(us), us->score, pk->z, sum,
            err);
    ce->n++;
}

void explain_change_pass(Scorer *sc, const ScoreSpec *spec, const Calibration *cal,
                         const SurpriseParams *sp, UserRows *events, UserRows *targets,
                         long long *n) {
    const Dataset *ds = &sc->ds;
    ChangeExplain ce = {spec, cal, ds->shards[sc->split], NULL, events, targets, 0};
    ce.rec = xcalloc((size_t)ds->n_shards + 1, sizeof(EventRecord *));
    for (int s = 0; s < ds->n_shards; s++)
        ce.rec[s] = xcalloc((size_t)ds->shards[sc->split][s].hdr.n_events + 1, sizeof(EventRecord));
    irregular_pass(sc, NULL, 0, spec, sp, on_event, on_user, &ce);
    for (int s = 0; s < ds->n_shards; s++) free(ce.rec[s]);
    free(ce.rec);
    *n = ce.n;
}
