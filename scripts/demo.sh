#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite + files under one data folder):
# initialise a data home, print kits for the example roster, and show what was made.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-demo-output}
mkdir -p "$OUT"
export MYNUMBER_HOME="$PWD/$OUT/mynumber-data"
export MYNUMBER_USER=${MYNUMBER_USER:-demo}
MN=.venv/bin/mynumber

$MN init
$MN check 123456789018 1234-5678-9010 || true   # one valid, one with a wrong check digit
$MN kits print kits/examples/roster.csv --out "$OUT/kits.pdf" --manifest "$OUT/manifest.csv"
$MN kits list
if command -v pdftoppm >/dev/null; then
  pdftoppm -r 60 -png -f 1 -l 6 "$OUT/kits.pdf" "$OUT/page"
  echo "first kit rendered to $OUT/page-*.png"
fi
echo "demo finished: kits in $OUT/kits.pdf, manifest in $OUT/manifest.csv, data in $MYNUMBER_HOME"
