#!/usr/bin/env bash
# Open a lirefs report.html in headless Chromium and check that it rendered.
#
#   scripts/check_html.sh REPORT.html [SCREENSHOT.png] [MIN_IMAGES]
#
# Installs nothing: it needs Debian's `chromium` (apt-get install -y chromium) and python3.
# Checks, each failing with one line and exit code 1:
#   * Chromium renders the page (a 1280x2000 screenshot) with no console error
#     (no "Uncaught", "ERROR:CONSOLE" or "Failed to load resource" in its log);
#   * the rendered DOM holds the layer table and at least MIN_IMAGES (default 1) embedded PNGs;
#   * the screenshot is a PNG of 1280x2000 pixels and large enough (> 40 kB) to hold content, not
#     a blank page.
set -euo pipefail

page="${1:?usage: scripts/check_html.sh REPORT.html [SCREENSHOT.png] [MIN_IMAGES]}"
shot="${2:-${page%.html}.png}"
min_images="${3:-1}"
browser="${CHROMIUM:-/usr/bin/chromium}"

[ -f "$page" ] || { echo "check_html: $page is not a file" >&2; exit 1; }
[ -x "$browser" ] || { echo "check_html: $browser not found; apt-get install -y chromium" >&2; exit 1; }
url="file://$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
log="$(mktemp -t check_html.XXXXXX)"
dom="$(mktemp -t check_html_dom.XXXXXX)"
profile="$(mktemp -d -t check_html_profile.XXXXXX)"
trap 'rm -rf "$log" "$dom" "$profile"' EXIT
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
       --user-data-dir="$profile" --enable-logging=stderr --v=0)

rm -f "$shot"
timeout 120 "$browser" "${flags[@]}" --screenshot="$shot" --window-size=1280,2000 "$url" \
    >/dev/null 2>"$log" || { echo "check_html: chromium failed: $(tail -n 3 "$log")" >&2; exit 1; }
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" >"$dom" 2>>"$log" \
    || { echo "check_html: chromium --dump-dom failed: $(tail -n 3 "$log")" >&2; exit 1; }

if grep -E "Uncaught|ERROR:CONSOLE|Failed to load resource" "$log" >&2; then
    echo "check_html: the page logged console errors (above)" >&2
    exit 1
fi

python3 - "$shot" "$dom" "$min_images" <<'PY'
import struct, sys
shot, dom, min_images = sys.argv[1], sys.argv[2], int(sys.argv[3])
def fail(msg):
    print(f"check_html: {msg}", file=sys.stderr)
    sys.exit(1)
try:
    data = open(shot, "rb").read()
except OSError:
    fail(f"no screenshot was written to {shot}")
if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
    fail(f"{shot} is not a PNG file")
width, height = struct.unpack(">II", data[16:24])
if (width, height) != (1280, 2000):
    fail(f"screenshot is {width}x{height}, expected 1280x2000")
if len(data) < 40_000:
    fail(f"screenshot is only {len(data)} bytes: the page looks blank")
text = open(dom, encoding="utf-8", errors="replace").read()
if "<table" not in text or "held-out separation per layer" not in text.lower():
    fail("the rendered page has no layer table")
images = text.count('src="data:image/png;base64,')
if images < min_images:
    fail(f"the rendered page embeds {images} PNG image(s), expected at least {min_images}")
print(f"check_html: ok: {width}x{height} screenshot of {len(data)} bytes, {images} embedded images")
PY
