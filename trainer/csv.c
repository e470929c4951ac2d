// csv.c: see csv.h.
#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CSV_BLOCK (1 << 20)
#define CSV_MAX_ROW (64 << 20)
#define CSV_MAX_FIELDS 4096

struct CsvReader {
    FILE *f;
    char *buf;      // holds [pos, len) unread bytes
    size_t cap, pos, len;
    int eof;
    long long line, row_line, bytes;
    char **fields;
    int n_fields;
    char error[256];
};

CsvReader *csv_open(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    CsvReader *r = xcalloc(1, sizeof *r);
    r->f = f;
    r->cap = 2 * CSV_BLOCK;
    r->buf = xmalloc(r->cap + 1);
    r->fields = xmalloc(sizeof(char *) * CSV_MAX_FIELDS);
    r->line = 1;
    return r;
}

void csv_close(CsvReader *r) {
    if (!r) return;
    fclose(r->f);
    free(r->buf);
    free(r->fields);
    free(r);
}

long long csv_line(const CsvReader *r) { return r->row_line; }
const char *csv_error(const CsvReader *r) { return r->error; }
long long csv_bytes_read(const CsvReader *r) { return r->bytes; }

// Makes sure the buffer holds a complete row starting at pos (or everything to EOF).
// Returns the end offset of the row (index of its '\n', or len at EOF), or -1 if too long.
static long find_row_end(CsvReader *r) {
    size_t scan = r->pos;
    int quoted = 0;
    for (;;) {
        for (; scan < r->len; scan++) {
            char c = r->buf[scan];
            if (c == '"') quoted = !quoted;
            else if (c == '\n' && !quoted) return (long)scan;
        }
        if (r->eof) return (long)r->len;
        // Need more input: move the partial row to the front, then read a block.
        size_t keep = r->len - r->pos;
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, keep);
            scan -= r->pos;
            r->pos = 0;
            r->len = keep;
        }
        if (r->len + CSV_BLOCK > r->cap) {
            if (r->cap >= CSV_MAX_ROW) return -1;
            r->cap *= 2;
            r->buf = xrealloc(r->buf, r->cap + 1);
        }
        size_t n = fread(r->buf + r->len, 1, CSV_BLOCK, r->f);
        if (n == 0) {
            if (ferror(r->f)) {
                snprintf(r->error, sizeof r->error, "read error (%s)", strerror(errno));
                return -2;
            }
            r->eof = 1;
        }
        r->len += n;
        r->bytes += (long long)n;
    }
}

int csv_next(CsvReader *r, char ***fields, int *n_fields) {
    for (;;) {
        r->error[0] = 0;
        long end = find_row_end(r);
        if (end == -2) return -1;
        if (end < 0) {
            snprintf(r->error, sizeof r->error, "row longer than %d MiB", CSV_MAX_ROW >> 20);
            return -1;
        }
        if ((size_t)end == r->pos && r->eof && r->pos >= r->len) return 0;
        r->row_line = r->line;
        char *row = r->buf + r->pos, *stop = r->buf + end;
        // Count the newlines inside the row (quoted ones) for line numbers.
        for (char *p = row; p < stop; p++) r->line += (*p == '\n');
        r->line += ((size_t)end < r->len); // the terminating newline
        r->pos = (size_t)end + ((size_t)end < r->len ? 1 : 0);
        if (stop > row && stop[-1] == '\r') stop--;
        *stop = 0;
        if (stop == row) continue; // blank line
        // Split in place, unescaping quoted fields.
        int nf = 0;
        char *p = row;
        int bad = 0;
        for (;;) {
            if (nf >= CSV_MAX_FIELDS) {
                snprintf(r->error, sizeof r->error, "more than %d fields", CSV_MAX_FIELDS);
                return -1;
            }
            if (*p == '"') {
                char *out = p, *in = p + 1;
                r->fields[nf++] = out;
                for (;;) {
                    if (*in == 0) {
                        bad = 1; // unterminated quote
                        break;
                    }
                    if (*in == '"') {
                        if (in[1] == '"') {
                            *out++ = '"';
                            in += 2;
                            continue;
                        }
                        in++;
                        break;
                    }
                    *out++ = *in++;
                }
                if (bad) {
                    snprintf(r->error, sizeof r->error, "unterminated quoted field");
                    return -1;
                }
                if (*in != ',' && *in != 0) {
                    *out = 0;
                    snprintf(r->error, sizeof r->error, "text after a closing quote in field %d",
                             nf);
                    return -1;
                }
                int last = *in == 0;
                *out = 0;
                if (last) break;
                p = in + 1;
            } else {
                r->fields[nf++] = p;
                char *comma = strchr(p, ',');
                if (!comma) break;
                *comma = 0;
                p = comma + 1;
            }
        }
        *fields = r->fields;
        *n_fields = nf;
        return 1;
    }
}
