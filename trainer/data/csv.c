// csv.c: see csv.h.
#include "csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

#define CSV_BLOCK      (1 << 20)
#define CSV_MAX_ROW    (64 << 20)
#define CSV_MAX_FIELDS 4096

struct CsvReader {
    gzFile f; // zlib reads plain files as they are ("transparent") and gzip streams decoded
    char *buf; // holds [pos, len) unread bytes
    size_t cap, pos, len;
    int eof;
    long long line, row_line;
    long long base;  // file offset of buf[0] (after a byte order mark)
    long long limit; // csv_seek: no row starting at or after this offset is read (-1: none)
    char **fields;
    int n_fields;
    int had_bom;
    char error[256], encoding_error[256]; // a UTF-16/32 file: every csv_next reports it
    char io_error[256];                   // a read error or a bad gzip stream: reading ends
};

// Up to n (< 2^30) bytes into dst; 0 at the end of the input or on an error, which then
// sets io_error. A gzip stream that stops before its end (a truncated copy) is an error,
// not a short file: zlib reports Z_BUF_ERROR at such an end.
static size_t read_some(CsvReader *r, char *dst, size_t n) {
    if (r->io_error[0]) return 0;
    int got = gzread(r->f, dst, (unsigned)n), err = Z_OK;
    const char *msg = gzerror(r->f, &err);
    if (got > 0) return (size_t)got;
    if (err == Z_ERRNO)
        snprintf(r->io_error, sizeof r->io_error, "read error (%s)", strerror(errno));
    else if (err == Z_BUF_ERROR)
        snprintf(r->io_error, sizeof r->io_error,
                 "gzip stream cut short: the file ends inside compressed data (a truncated "
                 "copy or download?); check it with gzip -t");
    else if (got < 0 || err != Z_OK)
        snprintf(r->io_error, sizeof r->io_error, "gzip data corrupt (%s); check it with gzip -t",
                 msg ? msg : "?");
    return 0;
}

CsvReader *csv_open(const char *path) {
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (!errno) errno = ENOMEM; // zlib's own allocation failed
        return NULL;
    }
    gzbuffer(f, 1 << 18);
    CsvReader *r = xcalloc(1, sizeof *r);
    r->f = f;
    r->cap = 2 * CSV_BLOCK;
    r->buf = xmalloc(r->cap + 1);
    r->fields = xmalloc(sizeof(char *) * CSV_MAX_FIELDS);
    r->line = 1;
    // A UTF-8 byte order mark (spreadsheet exports write one) is not part of the first
    // column's name: without this, "user" would be missing from a header that shows it.
    size_t n = read_some(r, r->buf, 4);
    const unsigned char *b = (const unsigned char *)r->buf;
    r->had_bom = n >= 3 && memcmp(b, "\xEF\xBB\xBF", 3) == 0;
    if (r->had_bom) memmove(r->buf, r->buf + 3, n - 3), n -= 3, r->base = 3;
    r->limit = -1;
    r->len = n;
    // UTF-16 and UTF-32 (with a byte order mark, or without: NULs between ASCII letters) would
    // read as one garbled column; name the encoding instead.
    const char *enc = NULL;
    if (n >= 4 && memcmp(b, "\xFF\xFE\0\0", 4) == 0)
        enc = "UTF-32 (byte order mark FF FE 00 00)";
    else if (n >= 4 && memcmp(b, "\0\0\xFE\xFF", 4) == 0)
        enc = "UTF-32 (byte order mark 00 00 FE FF)";
    else if (n >= 2 && b[0] == 0xFF && b[1] == 0xFE)
        enc = "UTF-16 (little-endian byte order mark FF FE)";
    else if (n >= 2 && b[0] == 0xFE && b[1] == 0xFF)
        enc = "UTF-16 (big-endian byte order mark FE FF)";
    else if (n >= 2 && memchr(b, 0, n))
        enc = "UTF-16 or UTF-32 (NUL bytes in the header)";
    if (enc)
        snprintf(r->encoding_error, sizeof r->encoding_error,
                 "file is %s; convert it to UTF-8, e.g. iconv -f UTF-16 -t UTF-8 IN.csv > OUT.csv",
                 enc);
    return r;
}

int csv_had_bom(const CsvReader *r) {
    return r->had_bom;
}

void csv_close(CsvReader *r) {
    if (!r) return;
    gzclose(r->f);
    free(r->buf);
    free(r->fields);
    free(r);
}

long long csv_line(const CsvReader *r) {
    return r->row_line;
}
const char *csv_error(const CsvReader *r) {
    return r->error;
}
// Makes sure the buffer holds a complete row starting at pos (or everything to EOF).
// Returns the end offset of the row (index of its '\n', or len at EOF), -1 if too long, -2 on
// a read error. A quote opens a quoted field only at the start of a field, as the splitter
// reads it (elsewhere it is a literal character). A quoted field still open at EOF or at the
// row limit ends the row at its first newline: the splitter then reports the unterminated
// quote for that one line and reading goes on with the next, so a stray quote costs one row,
// not the rest of the file.
static long find_row_end(CsvReader *r) {
    size_t scan = r->pos;
    int quoted = 0, field_start = 1, just_closed = 0;
    for (;;) {
        for (; scan < r->len; scan++) {
            char c = r->buf[scan];
            if (quoted) {
                if (c == '"') quoted = 0, just_closed = 1;
                continue;
            }
            if (c == '"' && (field_start || just_closed)) { // opening quote, or a "" escape
                quoted = 1, field_start = just_closed = 0;
                continue;
            }
            if (c == '\n') return (long)scan;
            field_start = c == ',', just_closed = 0;
        }
        if (r->eof || (quoted && r->cap >= CSV_MAX_ROW && r->len - r->pos + CSV_BLOCK > r->cap)) {
            if (!quoted) return (long)r->len;
            char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
            if (nl) return (long)(nl - r->buf);
            if (r->eof) return (long)r->len;
            return -1;
        }
        // Need more input: move the partial row to the front, then read a block.
        size_t keep = r->len - r->pos;
        if (r->pos > 0) {
            memmove(r->buf, r->buf + r->pos, keep);
            r->base += (long long)r->pos;
            scan -= r->pos;
            r->pos = 0;
            r->len = keep;
        }
        if (r->len + CSV_BLOCK > r->cap) {
            if (r->cap >= CSV_MAX_ROW) return -1;
            r->cap *= 2;
            r->buf = xrealloc(r->buf, r->cap + 1);
        }
        size_t n = read_some(r, r->buf + r->len, CSV_BLOCK);
        if (n == 0) {
            if (r->io_error[0]) {
                snprintf(r->error, sizeof r->error, "%s", r->io_error);
                return -2;
            }
            r->eof = 1;
        }
        r->len += n;
    }
}

// After a row too long to hold: drops the buffered part and reads on to the next newline, so
// the reader makes progress (the row has no newline in the buffer, or find_row_end would
// have ended it there).
static void skip_long_row(CsvReader *r) {
    r->row_line = r->line;
    r->base += (long long)r->len;
    r->pos = r->len = 0;
    for (;;) {
        size_t n = read_some(r, r->buf, CSV_BLOCK);
        if (n == 0) {
            r->eof = 1;
            return;
        }
        char *nl = memchr(r->buf, '\n', n);
        if (!nl) r->base += (long long)n;
        if (nl) {
            r->line++;
            r->pos = (size_t)(nl - r->buf) + 1;
            r->len = n;
            return;
        }
    }
}

// Whether the quoted fields of row [p, stop) close where the splitter needs them to (before a
// comma or the end). Checked without changing the row, only for rows that span lines.
static int quoted_fields_close(const char *p, const char *stop) {
    if (stop > p && stop[-1] == '\r') stop--;
    for (;;) {
        if (p < stop && *p == '"') {
            for (p++;; p++) {
                if (p >= stop) return 0;
                if (*p != '"') continue;
                if (p + 1 < stop && p[1] == '"') {
                    p++;
                    continue;
                }
                p++;
                break;
            }
            if (p == stop) return 1;
            if (*p != ',') return 0;
            p++;
        } else {
            const char *comma = memchr(p, ',', (size_t)(stop - p));
            if (!comma) return 1;
            p = comma + 1;
        }
    }
}

// One quoted field starting at p (on the opening quote), unescaped in place into
// r->fields[nf]; returns what follows it (',' or the end), or NULL with r->error set.
static char *quoted_field(CsvReader *r, char *p, int nf) {
    char *out = p, *in = p + 1;
    r->fields[nf] = out;
    for (;;) {
        if (*in == 0) {
            snprintf(r->error, sizeof r->error, "unterminated quoted field");
            return NULL;
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
    *out = 0;
    if (*in != ',' && *in != 0) {
        snprintf(r->error, sizeof r->error, "text after a closing quote in field %d", nf + 1);
        return NULL;
    }
    return in;
}

// Splits the NUL-terminated row in place into r->fields; the field count, or -1 (r->error).
static int split_row(CsvReader *r, char *row) {
    int nf = 0;
    char *p = row;
    for (;;) {
        if (nf >= CSV_MAX_FIELDS) {
            snprintf(r->error, sizeof r->error, "more than %d fields", CSV_MAX_FIELDS);
            return -1;
        }
        if (*p == '"') {
            char *in = quoted_field(r, p, nf++);
            if (!in) return -1;
            if (*in == 0) return nf;
            p = in + 1;
        } else {
            r->fields[nf++] = p;
            char *comma = strchr(p, ',');
            if (!comma) return nf;
            *comma = 0;
            p = comma + 1;
        }
    }
}

int csv_next(CsvReader *r, char ***fields, int *n_fields) {
    if (r->io_error[0]) { // the input is unreadable from here on: said once, then the end
        if (r->eof) return 0;
        r->eof = 1, r->row_line = r->line;
        snprintf(r->error, sizeof r->error, "%s", r->io_error);
        return -2;
    }
    if (r->encoding_error[0]) {
        r->row_line = 1;
        snprintf(r->error, sizeof r->error, "%s", r->encoding_error);
        return r->eof ? 0 : (r->eof = 1, -1); // said once; then the end
    }
    for (;;) {
        r->error[0] = 0;
        if (r->limit >= 0 && r->base + (long long)r->pos >= r->limit) return 0;
        long end = find_row_end(r);
        if (end == -2) {
            r->eof = 1, r->row_line = r->line;
            return -2;
        }
        if (end < 0) {
            skip_long_row(r);
            snprintf(r->error, sizeof r->error, "row longer than %d MiB", CSV_MAX_ROW >> 20);
            return -1;
        }
        if ((size_t)end == r->pos && r->eof && r->pos >= r->len) return 0;
        r->row_line = r->line;
        char *row = r->buf + r->pos, *stop = r->buf + end;
        // A row that spans lines but does not split cleanly is most likely a stray quote that
        // paired with a later one: it costs its first line only, and reading goes on after it.
        char *nl = memchr(row, '\n', (size_t)(stop - row));
        if (nl && !quoted_fields_close(row, stop)) end = (long)(nl - r->buf), stop = nl;
        // Count the newlines inside the row (quoted ones) for line numbers.
        for (char *p = row; p < stop; p++) r->line += (*p == '\n');
        r->line += ((size_t)end < r->len); // the terminating newline
        r->pos = (size_t)end + ((size_t)end < r->len ? 1 : 0);
        if (stop > row && stop[-1] == '\r') stop--;
        if (stop > row && stop[-1] == '\r') {
            // Otherwise the last field silently keeps an invisible "\r" ("like\r" is a new action).
            snprintf(r->error, sizeof r->error,
                     "line ends in \\r\\r\\n (CR CR LF, e.g. CRLF converted twice): fix the line "
                     "ends, e.g. sed -i 's/\\r*$//' FILE");
            return -1;
        }
        *stop = 0;
        if (stop == row) continue; // blank line
        int nf = split_row(r, row);
        if (nf < 0) return -1;
        *fields = r->fields;
        *n_fields = nf;
        return 1;
    }
}

long long csv_tell(const CsvReader *r) {
    return r->base + (long long)r->pos;
}

int csv_seek(CsvReader *r, long long offset, long long line, long long limit) {
    if (gzseek(r->f, (z_off_t)offset, SEEK_SET) < 0) return -1;
    r->base = offset, r->pos = r->len = 0, r->eof = 0;
    r->line = line, r->limit = limit;
    return 0;
}
