#!/usr/bin/env python3
"""Checks a joule HTML report in a real browser (Debian's headless Chromium):

* the page logs nothing to the console (no errors, no uncaught exceptions);
* the page makes no network request (Chromium's net log, requests whose isolation key is
  the file:// page);
* the DOM after scripts ran holds every expected section, each chart is an SVG with data
  in it (hover titles), and every table has rows;
* a screenshot is not blank.

Before the report, the same checks run on a control page that logs an error and requests
an image, and must catch both: a check that cannot fail is no check.

Usage: scripts/check-report.py REPORT.html [--expect HEADING]... [--screenshot OUT.png]
"""
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars",
]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("check-report: no chromium on PATH (apt-get install chromium)")


def run(page, extra, work):
    profile = tempfile.mkdtemp(dir=work)
    net = os.path.join(work, "net.json")
    cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           f"--log-net-log={net}", "--net-log-capture-mode=Everything", *extra,
           "file://" + os.path.abspath(page)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    console = [l for l in out.stderr.splitlines() if ":CONSOLE" in l]
    requests = set()
    with open(net) as f:
        for event in json.load(f)["events"]:
            p = event.get("params", {})
            if "url" in p and "file://" in p.get("network_isolation_key", ""):
                requests.add(p["url"])
    return out.stdout, console, sorted(requests)


def png_ink(path):
    """Fraction of pixels that are not (near) white, and the number of distinct colours."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), f"unexpected PNG format {depth}/{ctype}"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    prev = bytearray(stride)
    ink, colours, i = 0, set(), 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 255
            elif ftype == 2:
                line[x] = (line[x] + b) & 255
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif ftype == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 4):  # every 4th pixel is plenty
            px = bytes(line[x:x + 3])
            colours.add(px)
            if min(px) < 230:
                ink += 1
        prev = line
    return ink / (width * height / 4), len(colours)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--expect", action="append", default=[], help="a section heading (prefix)")
    ap.add_argument("--screenshot", help="keep the screenshot here")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="joule-check-")
    failures = []

    # The control page: the checks must see its console error and its request.
    control = os.path.join(work, "control.html")
    with open(control, "w") as f:
        f.write('<html><body><h2>c</h2><img src="http://example.invalid/x.png">'
                '<script>console.error("control")</script></body></html>')
    _, console, requests = run(control, ["--dump-dom"], work)
    if not console or not requests:
        sys.exit(f"check-report: the checks do not work (control page: console {console}, requests {requests})")

    dom, console, requests = run(args.report, ["--dump-dom"], work)
    if console:
        failures.append(f"console messages: {console[:3]}")
    if requests:
        failures.append(f"network requests: {requests[:5]}")
    sections = re.findall(r"<section[^>]*>(.*?)</section>", dom, re.S)
    headings = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", dom, re.S)]
    if not sections:
        failures.append("no <section> in the DOM")
    for expected in args.expect:
        if not any(h.startswith(expected) for h in headings):
            failures.append(f"no section headed {expected!r} (headings: {headings})")
    charts = tables = 0
    for heading, body in zip(headings, sections):
        svgs = re.findall(r"<svg.*?</svg>", body, re.S)
        rows = re.findall(r"<tbody>.*?</tbody>", body, re.S)
        for svg in svgs:
            charts += 1
            if len(re.findall(r"<title>", svg)) < 1:
                failures.append(f"{heading}: a chart has no data points")
        for body_rows in rows:
            tables += 1
            if "<tr" not in body_rows:
                failures.append(f"{heading}: an empty table")
        if not svgs and not rows and "<p" not in body:
            failures.append(f"{heading}: an empty section")

    shot = args.screenshot or os.path.join(work, "report.png")
    run(args.report, ["--window-size=1280,2000", f"--screenshot={shot}"], work)
    ink, colours = png_ink(shot)
    if ink < 0.02 or colours < 8:
        failures.append(f"the screenshot looks blank ({100 * ink:.1f}% ink, {colours} colours)")

    print(f"check-report: {args.report}: {len(sections)} sections, {charts} charts, {tables} tables, "
          f"screenshot {100 * ink:.1f}% ink / {colours} colours, {len(console)} console messages, "
          f"{len(requests)} requests")
    shutil.rmtree(work, ignore_errors=True)
    if failures:
        for f in failures:
            print("check-report: FAIL:", f, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
