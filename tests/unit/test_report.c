// test_report.c: the pieces of `trainer report` and the TensorBoard writer that can be checked
// without a run: the JSON reader (values, escapes, every error with its byte, depth limit,
// random bytes never crash), CRC32C against the standard check value and TFRecord's mask, the
// SVG charts (axes, empty charts, values dropped on a log axis, escaping, heatmap counts).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "json.h"
#include "svg.h"
#include "tbevents.h"

#define T(cond) CHECK(cond, "%s", #cond)

static void test_json(void) {
    const char *text = "{\"a\":1.5,\"s\":\"x\\\"y\\u00e9\\n\",\"arr\":[1,2,[3]],\"o\":{\"t\":true,"
                       "\"n\":null},\"neg\":-2e3}";
    JsonDoc d;
    char err[128];
    T(json_parse(&d, text, strlen(text), err, sizeof err) == 0);
    T(json_num(d.root, "a", 0) == 1.5);
    T(strcmp(json_str(d.root, "s"), "x\"y\xc3\xa9\n") == 0);
    T(json_get(d.root, "arr")->n_children == 3);
    T(json_num(json_get(d.root, "o"), "t", 0) == 1);
    T(json_get(json_get(d.root, "o"), "n")->type == JSON_NULL);
    T(json_num(d.root, "neg", 0) == -2000);
    T(json_num(d.root, "missing", 7) == 7);
    T(json_str(d.root, "a") == NULL);
    json_free(&d);
    // Errors name the byte where parsing stopped.
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\"a\":1", "byte 6: expected ',' or '}'"},
        {"{\"a\" 1}", "byte 5: expected ':'"},
        {"[1,]", "byte 3: expected a value"},
        {"\"abc", "byte 4: unterminated string"},
        {"{} x", "byte 3: text after the value"},
        {"\"\\q\"", "byte 3: bad escape in a string"},
        {"", "byte 0: unexpected end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = json_parse(&d, bad[i].text, strlen(bad[i].text), err, sizeof err);
        T(rc == -1);
        if (rc == -1 && strcmp(err, bad[i].want) != 0)
            CHECK(0, "%s: got '%s', want '%s'", bad[i].text, err, bad[i].want);
    }
    char deep[300];
    memset(deep, '[', sizeof deep);
    T(json_parse(&d, deep, sizeof deep, err, sizeof err) == -1 && strstr(err, "too deeply"));
    // Random bytes and mutations of a valid document: an error or a tree, never a crash.
    uint64_t s = 12345;
    char buf[96];
    for (int it = 0; it < 20000; it++) {
        size_t n = strlen(text) < sizeof buf ? strlen(text) : sizeof buf;
        memcpy(buf, text, n);
        for (int k = 0; k < 3; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[(s >> 33) % n] = (char)(s >> 17);
        }
        if (json_parse(&d, buf, (s >> 40) % (n + 1), err, sizeof err) == 0) json_free(&d);
    }
}

static void test_crc(void) {
    // The CRC-32C check value (RFC 3720 / iSCSI) and a masked value computed by hand.
    T(tb_crc32c("123456789", 9) == 0xe3069283u);
    T(tb_crc32c("", 0) == 0);
    uint32_t c = 0xe3069283u;
    T(tb_masked_crc(c) == (((c >> 15) | (c << 17)) + 0xa282ead8u));
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static void test_svg(void) {
    double x[] = {1, 10, 100, 1000}, y[] = {0.5, -1, 2, 4};
    Chart c;
    StrBuf o = {0};
    chart_init(&c, "t", "A <title> & more", "steps", "loss");
    c.logy = 1;
    chart_add(&c, "train", x, y, 4, SERIES_LINE);
    chart_ref(&c, 1.0, "best", NULL);
    T(chart_svg(&o, &c) == 3); // -1 cannot sit on a log axis
    T(strstr(o.data, "1 value &lt;= 0 not shown") != NULL);
    T(strstr(o.data, "A &lt;title&gt; &amp; more") != NULL);
    T(count(o.data, "<circle class=\"pt\"") == 3);
    T(strstr(o.data, "class=\"ref\"") != NULL);
    T(strstr(o.data, "class=\"chart empty\"") == NULL);
    sb_free(&o);
    memset(&o, 0, sizeof o);
    double nan_y[] = {NAN, NAN};
    chart_init(&c, "e", "Empty", "x", "y");
    chart_add(&c, "none", x, nan_y, 2, SERIES_LINE);
    T(chart_svg(&o, &c) == 0 && strstr(o.data, "class=\"chart empty\"") != NULL);
    sb_free(&o);
    memset(&o, 0, sizeof o);
    const char *lab[] = {"a", "b"};
    double m[] = {3, 1, 0, 4};
    T(heatmap_svg(&o, "h", "H", "true", "pred", lab, lab, m, 2, 2) == 3);
    T(strstr(o.data, "a -&gt; b: 1 of 4 (25.0%)") != NULL);
    T(count(o.data, "class=\"cell\"") == 4);
    sb_free(&o);
}

int main(void) {
    test_json();
    test_crc();
    test_svg();
    if (g_failures)
        printf("%d check(s) failed\n", g_failures);
    else
        printf("test_report: all checks passed\n");
    return g_failures != 0;
}
