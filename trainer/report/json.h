// json.h: a small JSON reader for the files the trainer writes and reads back (log.jsonl
// lines, metrics.json, summary.json of other commands). One parse gives a tree of nodes in
// one allocation owned by the JsonDoc; strings are unescaped (\uXXXX to UTF-8).
#pragma once
#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonNode {
    JsonType type;
    double number;          // JSON_NUMBER, JSON_BOOL (0/1)
    char *string;           // JSON_STRING
    char *key;              // member name when inside an object, else NULL
    struct JsonNode *child; // first element or member
    struct JsonNode *next;  // next sibling
    int n_children;
} JsonNode;

typedef struct {
    JsonNode *root;
    JsonNode *nodes;
    char *text;
    size_t n_nodes, cap_nodes;
} JsonDoc;

// Parses text (n bytes). 0, or -1 with "byte N: what" in err (the doc is then empty).
int json_parse(JsonDoc *doc, const char *text, size_t n, char *err, size_t errlen);
void json_free(JsonDoc *doc);
const JsonNode *json_get(const JsonNode *obj, const char *key); // NULL if absent / not object
// The number at key (numbers and bools), or def when absent or of another type.
double json_num(const JsonNode *obj, const char *key, double def);
const char *json_str(const JsonNode *obj, const char *key); // NULL when not a string
