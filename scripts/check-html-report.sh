#!/usr/bin/env bash
# Loads the HTML report of a recorded H200 study in headless Chromium (Debian's
# `chromium`, installed if missing) and fails unless the page logs nothing to the console
# and its screenshot is not blank (more than one colour). Usage:
#   scripts/check-html-report.sh [GPUSHARE] [STUDY]   (defaults: target/debug/gpushare, probes-mix)
# Leaves the page and the screenshot in target/html-check/.
set -euo pipefail
cd "$(dirname "$0")/.."

gpushare=${1:-target/debug/gpushare}
study=${2:-results/h200/2026-11-29-probes-mix}
out=target/html-check

if ! command -v chromium >/dev/null 2>&1; then
    echo "installing chromium (Debian's package) for the HTML report check"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
        echo "error: could not install chromium: the HTML report check needs it" >&2
        exit 1
    fi
fi

mkdir -p "$out"
"$gpushare" report "$study" --format html >"$out/report.html"
size=$(wc -c <"$out/report.html")
if [ "$size" -ge 2000000 ]; then
    echo "error: the HTML report of $study is $size bytes, over 2 MB" >&2
    exit 1
fi
rm -f "$out/screenshot.png"
# --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. Without a
# D-Bus session Chromium waits about 20 s for one: telling it there is none saves that.
DBUS_SESSION_BUS_ADDRESS=disabled: chromium --headless --no-sandbox --disable-gpu \
    --no-first-run --disable-dev-shm-usage --hide-scrollbars --window-size=1000,800 \
    --enable-logging=stderr --v=0 --screenshot="$out/screenshot.png" \
    "file://$PWD/$out/report.html" 2>"$out/chromium.log" || true
if grep -q ':CONSOLE' "$out/chromium.log"; then
    echo "error: the page logged to the console:" >&2
    grep ':CONSOLE' "$out/chromium.log" >&2
    exit 1
fi
if [ ! -s "$out/screenshot.png" ]; then
    echo "error: chromium wrote no screenshot; its log:" >&2
    tail -20 "$out/chromium.log" >&2
    exit 1
fi
python3 - "$out/screenshot.png" <<'PY'
"""Counts the colours of a PNG (8-bit RGB or RGBA, non-interlaced) with the standard
library: a blank page has one."""
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat = 8, b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + length
assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
bpp = 3 if colour == 2 else 4
raw, stride = zlib.decompress(idat), width * bpp
prev, colours, off = bytearray(stride), set(), 0
for _ in range(height):
    kind, line = raw[off], bytearray(raw[off + 1:off + 1 + stride])
    off += 1 + stride
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], prev[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + a) & 255
        elif kind == 2:
            line[i] = (line[i] + b) & 255
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 255
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 8))
    prev = line
if len(colours) < 2:
    sys.exit("error: the screenshot is blank (one colour)")
print(f"screenshot {width}x{height}: {len(colours)} colours (sampled every 8th pixel)")
PY
echo "HTML report of $study: $size bytes, no console messages, screenshot in $out/screenshot.png"
