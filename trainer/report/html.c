// html.c: see html.h.
#include "html.h"

#include <string.h>

#include "svg.h"

static const char CSS[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;"
    "color:#222;max-width:1320px;margin:0 auto;padding:16px 24px;background:#fff}"
    "h1{font-size:22px;margin:4px 0}h2{font-size:17px;border-bottom:1px solid #ccc;"
    "padding-bottom:3px;margin:26px 0 8px}p.sub{color:#555;margin:0 0 8px}"
    ".grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:10px}"
    "figure.chart{margin:0;padding:6px 8px;border:1px solid #e3e3e3;border-radius:4px;"
    "break-inside:avoid;page-break-inside:avoid}figcaption{font-weight:600;font-size:13px}"
    "figure.chart svg{width:100%;height:auto;display:block}"
    "figure.empty{background:#fafafa}"
    "text{font-size:11px;fill:#333}text.tick{font-size:10px;fill:#555}"
    "text.label{font-size:11px;fill:#222}text.legend{font-size:11px}"
    "text.cellv{font-size:10px;fill:#123}text.cellv.dark{fill:#fff}"
    "line.grid{stroke:#eee}rect.frame{fill:none;stroke:#bbb}"
    "line.ref{stroke-dasharray:6 4;stroke-width:1.3}line.mark{stroke-width:1.2;"
    "stroke-dasharray:2 3}"
    "p.note{color:#555;font-size:12px;margin:4px 0}p.warn{color:#8a4b00;background:#fff4e0;"
    "padding:6px 8px;border-radius:4px}"
    "table{border-collapse:collapse;font-size:12.5px;margin:6px 0}td,th{border:1px solid #ddd;"
    "padding:3px 7px;text-align:left;vertical-align:top}th{background:#f4f4f4}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto;max-height:480px;"
    "white-space:pre-wrap;overflow-wrap:anywhere}"
    "#tip{position:fixed;pointer-events:none;background:#222;color:#fff;font-size:12px;"
    "padding:3px 6px;border-radius:3px;display:none;z-index:9}"
    "@media print{body{max-width:none;padding:0}.grid2{grid-template-columns:1fr 1fr}"
    "pre{max-height:none;overflow:visible;white-space:pre-wrap}#tip{display:none!important}"
    "h2{break-after:avoid}}";

// Hover read-out: the <title> of the point under the pointer, shown at once.
static const char JS[] =
    "(function(){var t=document.getElementById('tip');"
    "document.addEventListener('mousemove',function(e){var n=e.target,s=null;"
    "if(n&&n.querySelector){var q=n.querySelector(':scope>title');if(q)s=q.textContent;}"
    "if(s){t.textContent=s;t.style.display='block';t.style.left=(e.clientX+12)+'px';"
    "t.style.top=(e.clientY+12)+'px';}else t.style.display='none';});"
    "document.body.setAttribute('data-charts',"
    "document.querySelectorAll('figure.chart').length);})();";

void page_begin(StrBuf *o, const char *title, const char *subtitle) {
    sb_appendf(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                  "<title>");
    html_escape(o, title);
    sb_appendf(o, "</title><style>%s</style></head>\n<body><div id=\"tip\"></div><h1>", CSS);
    html_escape(o, title);
    sb_appendf(o, "</h1><p class=\"sub\">");
    html_escape(o, subtitle);
    sb_appendf(o, "</p>\n");
}

void page_section(StrBuf *o, const char *id, const char *title) {
    sb_appendf(o, "<h2 id=\"");
    html_escape(o, id);
    sb_appendf(o, "\">");
    html_escape(o, title);
    sb_appendf(o, "</h2>\n");
}

void page_note(StrBuf *o, const char *cls, const char *text) {
    sb_appendf(o, "<p class=\"%s\">", cls);
    html_escape(o, text);
    sb_appendf(o, "</p>\n");
}

void page_kv_table(StrBuf *o, const char *const *keys, const char *const *values, int n) {
    sb_appendf(o, "<table>");
    for (int i = 0; i < n; i++) {
        sb_appendf(o, "<tr><th>");
        html_escape(o, keys[i]);
        sb_appendf(o, "</th><td>");
        html_escape(o, values[i]);
        sb_appendf(o, "</td></tr>");
    }
    sb_appendf(o, "</table>\n");
}

void page_pre(StrBuf *o, const char *text) {
    sb_appendf(o, "<pre>");
    html_escape(o, text);
    sb_appendf(o, "</pre>\n");
}

void page_end(StrBuf *o) {
    sb_appendf(o, "<script>%s</script>\n</body></html>\n", JS);
}

void json_string(StrBuf *o, const char *s) {
    sb_append(o, "\"", 1);
    for (; s && *s; s++) {
        const unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_appendf(o, "\\%c", c);
        else if (c < 0x20 || c == '<')
            sb_appendf(o, "\\u%04x", c);
        else
            sb_append(o, s, 1);
    }
    sb_append(o, "\"", 1);
}
