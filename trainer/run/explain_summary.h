// explain_summary.h: summary.json and summary.md of `trainer explain`, computed by rank 0
// from the joined events.csv and targets.csv (so they are the same on any number of ranks).
//
// Shares are of sum |attribution|: a group's share = sum over targets of |its total in the
// target| / the same summed over groups; an offset's likewise with the offset's total over
// groups; a cell (offset, group) = sum |attribution of the cell| / sum over all cells.
#pragma once
#include <stddef.h>

#include "attribution.h"

typedef struct {
    const char *target;  // "predicted", "action:NAME", "gap" or "change" (run/explain_change.h)
    const char *source;  // the split or --input file explained
    int steps, max_steps, window;
    const FeatureGroups *fg;
} SummaryInfo;

// Header lines of the two CSVs (with their newline).
extern const char EXPLAIN_EVENTS_HEADER[], EXPLAIN_TARGETS_HEADER[];

// Writes DIR/summary.json and DIR/summary.md (atomically) and prints the headline figures.
// Returns 0, or -1 with the reason in err.
int explain_write_summary(const char *dir, const SummaryInfo *info, char *err, size_t cap);
