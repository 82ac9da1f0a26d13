#!/usr/bin/env bash
# Render a build's report.html to a PNG with headless Chromium (Debian: apt-get install chromium),
# to look at it as a person would. Usage: scripts/render_report.sh edgeq-out [out.png] [height]
# Headless Chromium shoots the window only: the height (default 6000 px) must hold the whole page.
set -euo pipefail
run_dir=${1:-edgeq-out}
png=${2:-$run_dir/report.png}
height=${3:-6000}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "chromium is not installed (Debian: apt-get install chromium)" >&2; exit 5; }
[ -f "$run_dir/report.html" ] || { echo "$run_dir/report.html not found: run edgeq build -o $run_dir first" >&2; exit 3; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# no network at all: the report must be self-contained
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1200,"$height" --hide-scrollbars \
  --screenshot="$(realpath -m "$png")" "file://$(realpath "$run_dir/report.html")" 2>/dev/null
echo "wrote $png"
