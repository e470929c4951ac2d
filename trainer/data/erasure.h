// erasure.h: erasure lists and consent (data.exclude_users, data.consent_col).
//
// An exclusion list is a file of users, one a line: a raw id, or the 16-hex-digit keyed hash
// of one (as `predict` and shards name users). Blank lines and lines starting with '#' are
// skipped. A line of 16 hex digits is taken both ways (as a hash and as a raw id): a raw id
// that looks like a hash is still excluded, at the cost of a 2^-64 chance of excluding one
// more user. The list is held as sorted keyed hashes of the BASE id (before ingest mixes in
// the split of given split files); its digest (a hash of that sorted list) names the list
// in reports and checkpoints without revealing it. Messages never print a list entry.
// Consent: a row whose consent column is false/0/no/n/off or empty is dropped; true/1/yes/
// y/on keeps it; anything else is a bad row.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "userkey.h"

typedef struct {
    uint64_t *hash; // sorted, unique
    int32_t *line;  // (n) the list line each hash came from (1-based)
    size_t n;
    int lines;      // users listed (non-blank, non-comment lines)
    uint8_t *hit;   // (lines + 1) whether the line's user was seen in the data
    uint64_t digest;
} Erasure;

// Loads data.exclude_users (none: an empty list, digest 0). fatal() naming file:line on an
// unreadable file or a line over 4096 bytes.
void erasure_load(Erasure *e, const Config *cfg, const UserKey *key);
void erasure_free(Erasure *e);
// Whether the user with this keyed BASE hash is listed; marks its line as seen.
int erasure_has(Erasure *e, uint64_t base_hash);
// Listed users seen in the data so far.
int erasure_seen(const Erasure *e);

// 1: consent given; 0: not (drop the row); -1: not a consent value.
int consent_value(const char *s);

// A set of 64-bit user hashes (counting distinct users).
typedef struct {
    uint64_t *slot;
    size_t cap, n;
    int has_zero;
} U64Set;
void u64set_add(U64Set *s, uint64_t x);
void u64set_free(U64Set *s);
