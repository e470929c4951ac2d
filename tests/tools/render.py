#!/usr/bin/env python3
"""render.py: renders a `trainer report` page in headless Chromium and checks it.

    render.py BROWSER PAGE.html OUT_PREFIX [--min-charts N] [--expect-id ID]...
              [--expect-text TEXT]... [--height PX]

Writes OUT_PREFIX.png (screenshot) and OUT_PREFIX.pdf (print to PDF) and checks: the browser
logged no console message (our page logs none; errors and uncaught exceptions are logged
this way); the page script ran (body[data-charts] equals the number of chart figures, which
it counts after load); every chart that is not marked empty holds drawn data (a path with at
least two points, a point marker or a heatmap cell); at least N such charts; each expected
chart id and text is present; the PNG decodes and is not blank (>= 8 distinct colours in a
sample); the PDF has at least one page. Prints one line per check; exit 0 or 1.
"""
import argparse
import html.parser
import os
import re
import struct
import subprocess
import sys
import zlib


class Dom(html.parser.HTMLParser):
    """Charts (figure.chart) with what is drawn in each, from the DOM after scripts ran."""

    def __init__(self):
        super().__init__()
        self.charts, self.cur, self.depth, self.body_charts, self.text = [], None, 0, None, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "body":
            self.body_charts = a.get("data-charts")
        if tag == "figure" and "chart" in cls:
            self.cur = {"id": a.get("id"), "empty": "empty" in cls, "data": 0}
            self.charts.append(self.cur)
            self.depth = 1
            return
        if self.cur is None:
            return
        if tag == "figure":
            self.depth += 1
        if tag == "path" and "series" in cls:
            pts = re.findall(r"[ML]\s*-?[\d.]+\s+-?[\d.]+", a.get("d") or "")
            self.cur["data"] += len(pts) >= 2
        if (tag == "circle" and "pt" in cls) or (tag == "rect" and "cell" in cls):
            self.cur["data"] += 1

    def handle_endtag(self, tag):
        if tag == "figure" and self.cur is not None:
            self.depth -= 1
            if self.depth == 0:
                self.cur = None

    def handle_data(self, data):
        self.text.append(data)


def png_colours(path):
    """Distinct colours in a sample of the top of the decoded PNG (8-bit RGB/RGBA)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    i, idat, w = 8, b"", 0
    while i < len(data):
        n, kind = struct.unpack(">I4s", data[i:i + 8])
        body = data[i + 8:i + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            if depth != 8 or ctype not in (2, 6):
                raise ValueError("PNG type %d/%d not handled" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        i += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    prev, colours, pos = bytearray(stride), set(), 0
    for y in range(min(h, 900)):
        f, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 7 == 0:
            for x in range(0, stride, bpp * 5):
                colours.add(bytes(line[x:x + 3]))
        prev = line
    return w, h, len(colours)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("browser")
    ap.add_argument("page")
    ap.add_argument("out")
    ap.add_argument("--min-charts", type=int, default=1)
    ap.add_argument("--expect-id", action="append", default=[])
    ap.add_argument("--expect-text", action="append", default=[])
    ap.add_argument("--height", type=int, default=2400)
    a = ap.parse_args()
    url = "file://" + os.path.abspath(a.page)
    base = [a.browser, "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--hide-scrollbars", "--user-data-dir=" + a.out + ".profile"]
    fails = []

    def check(ok, what):
        print(("ok: " if ok else "FAIL: ") + what)
        if not ok:
            fails.append(what)

    r = subprocess.run(base + ["--enable-logging=stderr", "--v=0", "--dump-dom", url],
                       capture_output=True, text=True, timeout=120)
    console = [l for l in r.stderr.splitlines() if ":CONSOLE" in l]
    check(r.returncode == 0 and "<figure" in r.stdout, "browser loaded %s" % a.page)
    check(not console, "no console messages%s" % ("" if not console else ": " + console[0]))
    dom = Dom()
    dom.feed(r.stdout)
    n = len(dom.charts)
    drawn = [c for c in dom.charts if not c["empty"] and c["data"] > 0]
    hollow = [c["id"] for c in dom.charts if not c["empty"] and c["data"] == 0]
    check(dom.body_charts == str(n), "page script ran (counted %s charts; %d in the DOM)"
          % (dom.body_charts, n))
    check(not hollow, "every non-empty chart has drawn data%s" % (": hollow " + ", ".join(hollow) if hollow else ""))
    check(len(drawn) >= a.min_charts, "%d charts with data (%d marked empty); want >= %d"
          % (len(drawn), n - len(drawn), a.min_charts))
    ids = {c["id"]: c for c in dom.charts}
    for i in a.expect_id:
        check(i in ids and ids[i]["data"] > 0, "chart %s present with data" % i)
    text = " ".join(dom.text)
    for t in a.expect_text:
        check(t in text, "text present: %s" % t)
    png = a.out + ".png"
    r = subprocess.run(base + ["--window-size=1360,%d" % a.height, "--screenshot=" + png, url],
                       capture_output=True, text=True, timeout=120)
    try:
        w, h, colours = png_colours(png)
        check(colours >= 8, "screenshot %s: %dx%d, %d colours in a sample" % (png, w, h, colours))
    except (OSError, ValueError, zlib.error) as e:
        check(False, "screenshot %s: %s" % (png, e))
    pdf = a.out + ".pdf"
    r = subprocess.run(base + ["--no-pdf-header-footer", "--print-to-pdf=" + pdf, url],
                       capture_output=True, text=True, timeout=120)
    body = open(pdf, "rb").read() if os.path.exists(pdf) else b""
    pages = len(re.findall(rb"/Type\s*/Page[^s]", body))
    check(body.startswith(b"%PDF") and pages >= 1, "print to PDF %s: %d pages, %d bytes"
          % (pdf, pages, len(body)))
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
