// rowparse.h: one CSV event row -> typed fields, by the experiment's column names.
//
// Shared by `data prepare` (ingest.c) and the commands that score a CSV directly
// (eval --input, predict), so every path reads and rejects rows the same way.
#pragma once
#include "config.h"

// How a file's ISO-8601 times were written, counted for one warning each (row_parser_notes).
typedef struct {
    long long no_zone, date_only, space, implausible; // rows
    char first_implausible[40];
} TimeNotes;

typedef struct {
    TimeNotes notes_store, *notes; // notes points at notes_store (counted through a const parser)
    int n_header;
    int col_user, col_time, col_action;
    int col_cat[CFG_LIST_MAX], col_num[CFG_LIST_MAX];
    int n_cat, n_num, iso, log1p;
    int col_consent; // -1: no data.consent_col
    double unit_seconds;
    const Config *cfg;
} RowParser;

typedef struct {
    const char *user, *action;
    const char *cat[CFG_LIST_MAX];
    double time; // in data.time_unit
    double num[CFG_LIST_MAX];
    int consent; // 0: the row's consent column says no (callers drop it); else 1
} Row;

// Maps the header row; fatal() naming path:1, the column and its config key if one is missing.
void row_parser_init(RowParser *p, const Config *cfg, const char *path, const char *key_name,
                     char **header, int n_header);
// 0, or -1 with the reason (no file/line prefix) in why. ISO-8601 times without a zone are
// UTC; those, bare dates, a space for 'T', and times before 1971 or after 2099 are counted.
int row_parse(const RowParser *p, char **fields, int n_fields, Row *row, char *why, size_t cap);

// After a file: one warning per kind of time noted, with its count (nothing if none).
void row_parser_notes(const RowParser *p, const char *path);

// Bad rows under data.on_error: stop (fatal with path:line: why) or skip (count, show the
// first ten, and stop anyway beyond data.max_bad_rows).
typedef struct {
    const Config *cfg;
    unsigned long long count;
    int shown;
} BadRows;
void bad_row_report(BadRows *b, const char *path, long long line, const char *why);
