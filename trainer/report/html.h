// html.h: the page around the charts: one self-contained HTML file (inline CSS, a few lines
// of inline script for hover read-outs; nothing fetched), readable on screen and on paper.
#pragma once
#include "util.h"

void page_begin(StrBuf *o, const char *title, const char *subtitle);
void page_section(StrBuf *o, const char *id, const char *title);
void page_note(StrBuf *o, const char *cls, const char *text); // cls: "note" or "warn"
// A two-column table of (key, value) pairs, n pairs.
void page_kv_table(StrBuf *o, const char *const *keys, const char *const *values, int n);
void page_pre(StrBuf *o, const char *text); // preformatted (the config)
void page_end(StrBuf *o);
// A JSON string literal of s, safe inside <script> (" \\ control characters and < escaped).
void json_string(StrBuf *o, const char *s);
