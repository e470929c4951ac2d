// csv.h: a streaming CSV reader (RFC 4180: quoted fields, "" escapes, CRLF or LF).
//
// Reads the file in large blocks; memory is bounded by the longest row, not the file. A gzip
// file (any name) is decompressed as it is read (zlib); a plain file is read as it is.
// Fields point into the reader's buffer and stay valid until the next csv_next().
// A UTF-8 byte order mark at the start of the file is skipped (csv_had_bom says so); a UTF-16
// or UTF-32 file is refused by the first csv_next (-1, "file is UTF-16; convert it to UTF-8").
// A line ending in CR CR LF is a malformed row (the message shows the \r). A quote opens a quoted field
// only at the start of a field (elsewhere it is a literal character). A quoted row that spans
// lines but is malformed (a stray quote that never closes, or that pairs with a later one)
// costs its first line only: that line is the bad row, and reading goes on with the next.
#pragma once
#include <stddef.h>

typedef struct CsvReader CsvReader;

CsvReader *csv_open(const char *path); // NULL with errno set
// 1: a row was read; 0: end of file; -1: a malformed row (csv_error says why; the reader
// has skipped to the next line, so reading can go on); -2: the input cannot be read on (a
// read error, a gzip stream cut short or corrupt; csv_error says which, csv_line where).
int csv_next(CsvReader *r, char ***fields, int *n_fields);
long long csv_line(const CsvReader *r); // 1-based line number where the last row started
const char *csv_error(const CsvReader *r);
int csv_had_bom(const CsvReader *r); // 1 if a UTF-8 byte order mark was skipped
void csv_close(CsvReader *r);
// Byte ranges of a plain file (parallel prepare): csv_tell is the file offset just after the
// last row read; csv_seek goes on reading at `offset` (a line start, on line number `line`),
// and ends (csv_next returns 0) at the first row starting at or after `limit`. 0 or -1.
long long csv_tell(const CsvReader *r);
int csv_seek(CsvReader *r, long long offset, long long line, long long limit);
