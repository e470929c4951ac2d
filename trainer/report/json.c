// json.c: see json.h. Recursive descent; depth is limited so hostile input cannot overflow
// the stack.
#include "json.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct {
    JsonDoc *doc;
    const char *s, *end, *start;
    char *out; // next free byte of doc->text (strings are copied here)
    char *err;
    size_t errlen;
    int failed;
} Parser;

static void fail(Parser *p, const char *what) {
    if (!p->failed) snprintf(p->err, p->errlen, "byte %ld: %s", (long)(p->s - p->start), what);
    p->failed = 1;
}

static void skip_ws(Parser *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static JsonNode *new_node(Parser *p, JsonType t) {
    JsonDoc *d = p->doc;
    if (d->n_nodes == d->cap_nodes) {
        // Nodes are linked by index-stable pointers only after parsing (see json_parse).
        d->cap_nodes = d->cap_nodes ? 2 * d->cap_nodes : 64;
        d->nodes = xrealloc(d->nodes, sizeof(JsonNode) * d->cap_nodes);
    }
    JsonNode *n = &d->nodes[d->n_nodes++];
    memset(n, 0, sizeof *n);
    n->type = t;
    return n;
}

static void put_utf8(Parser *p, unsigned cp) {
    if (cp < 0x80)
        *p->out++ = (char)cp;
    else if (cp < 0x800)
        *p->out++ = (char)(0xc0 | cp >> 6), *p->out++ = (char)(0x80 | (cp & 63));
    else {
        *p->out++ = (char)(0xe0 | cp >> 12);
        *p->out++ = (char)(0x80 | ((cp >> 6) & 63));
        *p->out++ = (char)(0x80 | (cp & 63));
    }
}

// A string at p->s (after the quote) copied into doc->text; returns its offset there.
static long parse_string(Parser *p) {
    long at = (long)(p->out - p->doc->text);
    while (p->s < p->end && *p->s != '"') {
        char c = *p->s++;
        if ((unsigned char)c < 0x20) return fail(p, "control character in a string"), -1;
        if (c != '\\') {
            *p->out++ = c;
            continue;
        }
        if (p->s >= p->end) break;
        c = *p->s++;
        const char *esc = strchr("\"\\/bfnrt", c);
        if (esc && c != 'u') {
            *p->out++ = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
        } else if (c == 'u' && p->end - p->s >= 4) {
            char hex[5] = {p->s[0], p->s[1], p->s[2], p->s[3], 0}, *e;
            unsigned cp = (unsigned)strtoul(hex, &e, 16);
            if (e != hex + 4) return fail(p, "bad \\u escape"), -1;
            p->s += 4;
            put_utf8(p, cp);
        } else {
            return fail(p, "bad escape in a string"), -1;
        }
    }
    if (p->s >= p->end) return fail(p, "unterminated string"), -1;
    p->s++;
    *p->out++ = '\0';
    return at;
}

// Nodes refer to each other by index while the array may move; fixed up at the end.
#define IDX(n) ((JsonNode *)(size_t)((n) + 1))

static long parse_value(Parser *p, int depth);

static long parse_container(Parser *p, int depth, int object) {
    long self = (long)p->doc->n_nodes;
    new_node(p, object ? JSON_OBJECT : JSON_ARRAY);
    p->s++;
    skip_ws(p);
    long prev = -1;
    if (p->s < p->end && *p->s == (object ? '}' : ']')) return p->s++, self;
    for (;;) {
        long key = -1;
        skip_ws(p);
        if (object) {
            if (p->s >= p->end || *p->s != '"') return fail(p, "expected a member name"), -1;
            p->s++;
            if ((key = parse_string(p)) < 0) return -1;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') return fail(p, "expected ':'"), -1;
            p->s++;
        }
        long v = parse_value(p, depth + 1);
        if (v < 0) return -1;
        JsonNode *nodes = p->doc->nodes;
        if (key >= 0) nodes[v].key = (char *)(size_t)(key + 1);
        if (prev < 0)
            nodes[self].child = IDX(v);
        else
            nodes[prev].next = IDX(v);
        nodes[self].n_children++;
        prev = v;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == (object ? '}' : ']')) return p->s++, self;
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'"), -1;
    }
}

static long parse_value(Parser *p, int depth) {
    skip_ws(p);
    if (depth > 64) return fail(p, "nested too deeply"), -1;
    if (p->s >= p->end) return fail(p, "unexpected end"), -1;
    char c = *p->s;
    if (c == '{' || c == '[') return parse_container(p, depth, c == '{');
    long self = (long)p->doc->n_nodes;
    if (c == '"') {
        JsonNode *n = new_node(p, JSON_STRING);
        (void)n;
        p->s++;
        long at = parse_string(p);
        if (at < 0) return -1;
        p->doc->nodes[self].string = (char *)(size_t)(at + 1);
        return self;
    }
    static const struct {
        const char *word;
        JsonType t;
        double v;
    } words[] = {{"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t i = 0; i < ARRAY_LEN(words); i++) {
        size_t len = strlen(words[i].word);
        if ((size_t)(p->end - p->s) >= len && memcmp(p->s, words[i].word, len) == 0) {
            new_node(p, words[i].t)->number = words[i].v;
            p->s += len;
            return self;
        }
    }
    char buf[64], *e;
    size_t len = 0;
    while (p->s + len < p->end && len < sizeof buf - 1 && strchr("+-.eE0123456789", p->s[len]))
        len++;
    memcpy(buf, p->s, len);
    buf[len] = '\0';
    double v = strtod(buf, &e);
    if (len == 0 || e != buf + len) return fail(p, "expected a value"), -1;
    new_node(p, JSON_NUMBER)->number = v;
    p->s += len;
    return self;
}

static JsonNode *fix(JsonDoc *d, JsonNode *idx) {
    return idx ? &d->nodes[(size_t)idx - 1] : NULL;
}

int json_parse(JsonDoc *doc, const char *text, size_t n, char *err, size_t errlen) {
    memset(doc, 0, sizeof *doc);
    doc->text = xmalloc(n + 1); // unescaped strings are never longer than their source
    Parser p = {doc, text, text + n, text, doc->text, err, errlen, 0};
    long root = parse_value(&p, 0);
    skip_ws(&p);
    if (root >= 0 && p.s != p.end) fail(&p, "text after the value");
    if (p.failed || root < 0) {
        json_free(doc);
        return -1;
    }
    for (size_t i = 0; i < doc->n_nodes; i++) {
        JsonNode *nd = &doc->nodes[i];
        nd->child = fix(doc, nd->child), nd->next = fix(doc, nd->next);
        if (nd->key) nd->key = doc->text + (size_t)nd->key - 1;
        if (nd->string) nd->string = doc->text + (size_t)nd->string - 1;
    }
    doc->root = &doc->nodes[root];
    return 0;
}

void json_free(JsonDoc *doc) {
    free(doc->nodes);
    free(doc->text);
    memset(doc, 0, sizeof *doc);
}

const JsonNode *json_get(const JsonNode *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (const JsonNode *c = obj->child; c; c = c->next)
        if (strcmp(c->key, key) == 0) return c;
    return NULL;
}

double json_num(const JsonNode *obj, const char *key, double def) {
    const JsonNode *n = json_get(obj, key);
    return n && (n->type == JSON_NUMBER || n->type == JSON_BOOL) ? n->number : def;
}

const char *json_str(const JsonNode *obj, const char *key) {
    const JsonNode *n = json_get(obj, key);
    return n && n->type == JSON_STRING ? n->string : NULL;
}
