// rowparse.c: see rowparse.h.
#include "rowparse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "erasure.h"
#include "numparse.h"
#include "timeparse.h"
#include "util.h"

static int find_column(char **names, int n, const char *want) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0) return i;
    return -1;
}

void row_parser_init(RowParser *p, const Config *cfg, const char *path, const char *key_name,
                     char **header, int n_header) {
    memset(p, 0, sizeof *p);
    p->notes = &p->notes_store;
    p->cfg = cfg;
    p->n_header = n_header;
    p->n_cat = cfg->data.categorical_cols.n;
    p->n_num = cfg->data.numeric_cols.n;
    p->iso = strcmp(cfg->data.time_format, "iso8601") == 0;
    p->log1p = strcmp(cfg->data.numeric_transform, "log1p") == 0;
    p->unit_seconds = config_time_unit_seconds(cfg);
    StrBuf names = {0};
    for (int i = 0; i < n_header; i++) {
        char name[256];
        str_visible(name, sizeof name, header[i]);
        sb_appendf(&names, "%s%s", i ? ", " : "", name);
    }
    struct {
        const char *name, *key;
        int *dst;
    } want[3 + 2 * CFG_LIST_MAX];
    int nw = 0;
    want[nw].name = cfg->data.user_col, want[nw].key = "data.user_col",
    want[nw++].dst = &p->col_user;
    want[nw].name = cfg->data.time_col, want[nw].key = "data.time_col",
    want[nw++].dst = &p->col_time;
    want[nw].name = cfg->data.action_col, want[nw].key = "data.action_col",
    want[nw++].dst = &p->col_action;
    for (int c = 0; c < p->n_cat; c++)
        want[nw].name = cfg->data.categorical_cols.item[c], want[nw].key = "data.categorical_cols",
        want[nw++].dst = &p->col_cat[c];
    for (int k = 0; k < p->n_num; k++)
        want[nw].name = cfg->data.numeric_cols.item[k], want[nw].key = "data.numeric_cols",
        want[nw++].dst = &p->col_num[k];
    for (int w = 0; w < nw; w++) {
        *want[w].dst = find_column(header, n_header, want[w].name);
        // One field holding tabs or semicolons: the file is not comma-separated.
        int one_field = n_header == 1 && strpbrk(header[0], "\t;") != NULL;
        if (*want[w].dst < 0)
            fatal_status(EXIT_USAGE, "%s:1: missing column '%s' (named by %s%s%s); the header has: %s%s", path,
                  want[w].name, want[w].key, key_name ? ", reading " : "", key_name ? key_name : "",
                  names.data ? names.data : "(nothing)",
                  one_field ? " (one field: the file must be comma-separated)" : "");
    }
    p->col_consent = -1;
    if (cfg->data.consent_col[0]) {
        p->col_consent = find_column(header, n_header, cfg->data.consent_col);
        if (p->col_consent < 0)
            fatal_status(EXIT_USAGE, "%s:1: missing column '%s' (named by data.consent_col%s%s); the header has: %s",
                  path, cfg->data.consent_col, key_name ? ", reading " : "",
                  key_name ? key_name : "", names.data ? names.data : "(nothing)");
    }
    sb_free(&names);
}

static int parse_number(const char *s, double *out) {
    if (!*s) return -1;
    char *end;
    errno = 0;
    double v = parse_double(s, &end);
    while (*end == ' ') end++;
    if (*end || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

// 1971-01-01 and 2100-01-01 in seconds: an event outside them in a history of today's events
// is almost always a placeholder date (1900-01-01) or a typo, and its gap is implausible.
#define PLAUSIBLE_FROM 31536000.0
#define PLAUSIBLE_TO   4102444800.0

static void note_time(TimeNotes *n, const char *ts, double seconds, int form) {
    n->no_zone += (form & ISO_NO_ZONE) != 0;
    n->date_only += (form & ISO_DATE_ONLY) != 0;
    n->space += (form & ISO_SPACE) != 0;
    if (seconds >= PLAUSIBLE_FROM && seconds < PLAUSIBLE_TO) return;
    if (!n->implausible++) snprintf(n->first_implausible, sizeof n->first_implausible, "%s", ts);
}

void row_parser_notes(const RowParser *p, const char *path) {
    const TimeNotes *n = p->notes;
    const char *col = p->cfg->data.time_col;
    if (n->no_zone)
        warnf("%s: %lld %s times have no zone (%lld of them bare dates, %lld with a space "
              "for 'T'): read as UTC; write Z or +hh:mm to say otherwise",
              path, n->no_zone, col, n->date_only, n->space);
    if (n->implausible)
        warnf("%s: %lld %s times are before 1971 or after 2099 (the first: %s): their gaps to "
              "the users' other events are implausible; check the column",
              path, n->implausible, col, n->first_implausible);
}

int row_parse(const RowParser *p, char **f, int nf, Row *row, char *why, size_t cap) {
    const Config *cfg = p->cfg;
    if (nf != p->n_header) {
        snprintf(why, cap, "expected %d fields as in the header, got %d", p->n_header, nf);
        return -1;
    }
    row->user = f[p->col_user];
    row->consent = 1;
    if (p->col_consent >= 0) {
        row->consent = consent_value(f[p->col_consent]);
        if (row->consent < 0) {
            snprintf(why, cap, "%s: consent value \"%.40s\" is not true/false, 1/0, yes/no",
                     cfg->data.consent_col, f[p->col_consent]);
            return -1;
        }
    }
    if (!row->user[0]) {
        snprintf(why, cap, "%s: empty user id", cfg->data.user_col);
        return -1;
    }
    const char *ts = f[p->col_time];
    if (p->iso) {
        const char *reason;
        int form;
        if (parse_iso8601_form(ts, &row->time, &reason, &form) != 0) {
            snprintf(why, cap, "%s: cannot parse time \"%s\": %s", cfg->data.time_col, ts, reason);
            return -1;
        }
        note_time(p->notes, ts, row->time, form);
        row->time /= p->unit_seconds;
    } else if (parse_number(ts, &row->time) != 0) {
        int looks_iso = strlen(ts) >= 10 && ts[4] == '-' && ts[7] == '-';
        snprintf(why, cap, "%s: cannot parse time \"%s\" as a number%s", cfg->data.time_col, ts,
                 looks_iso ? " (for ISO-8601 times set data.time_format: iso8601)" : "");
        return -1;
    }
    row->action = f[p->col_action];
    if (!row->action[0]) {
        snprintf(why, cap, "%s: empty action type", cfg->data.action_col);
        return -1;
    }
    for (int c = 0; c < p->n_cat; c++) row->cat[c] = f[p->col_cat[c]];
    for (int k = 0; k < p->n_num; k++) {
        const char *s = f[p->col_num[k]];
        if (parse_number(s, &row->num[k]) != 0) {
            snprintf(why, cap, "%s: cannot parse \"%s\" as a number",
                     cfg->data.numeric_cols.item[k], s);
            return -1;
        }
        if (p->log1p && row->num[k] <= -1) {
            snprintf(why, cap, "%s: value %s is not > -1 (data.numeric_transform=log1p)",
                     cfg->data.numeric_cols.item[k], s);
            return -1;
        }
    }
    return 0;
}

void bad_row_report(BadRows *b, const char *path, long long line, const char *why_raw) {
    char why[1024]; // a field's "\r" or NUL shows as such, not as nothing
    str_visible(why, sizeof why, why_raw);
    if (strcmp(b->cfg->data.on_error, "stop") == 0)
        fatal("%s:%lld: %s (data.on_error=stop; set it to skip to count and skip bad rows)", path,
              line, why);
    b->count++;
    if (b->shown < 10)
        warnf("%s:%lld: %s (row skipped)", path, line, why);
    else if (b->shown == 10)
        warnf("further bad rows are counted but not shown");
    b->shown++;
    if ((long long)b->count > (long long)b->cfg->data.max_bad_rows)
        fatal("%s:%lld: more than data.max_bad_rows=%lld bad rows; stopping", path, line,
              (long long)b->cfg->data.max_bad_rows);
}
