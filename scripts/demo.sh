#!/usr/bin/env bash
# The main job end to end on the embedded default (SQLite + files under one data folder):
# users, kits printed for the example roster, simulated returns scanned, status and audit checked.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUT:-demo-output}
mkdir -p "$OUT"
export MYNUMBER_HOME="$(cd "$OUT" && pwd)/mynumber-data"
MN=.venv/bin/mynumber
rm -rf "$OUT/mynumber-data"   # the demo starts from nothing each time

$MN --as admin init                                  # the first user is the administrator
$MN --as admin users add hr --role handler           # HR: prints kits, keys unsure fields, exports numbers
$MN --as admin users add mailroom --role mailroom    # scans what comes back; never sees a number
$MN --as admin users add boss --role manager         # appoints handlers, approves disposal, audits
$MN --as boss users appoint hr && $MN --as boss users train hr
$MN check 123456789018 1234-5678-9010 || true        # one valid, one with a wrong check digit (masked)

$MN --as hr kits print kits/examples/roster.csv --out "$OUT/kits.pdf" --manifest "$OUT/manifest.csv"
if command -v pdftoppm >/dev/null; then
  pdftoppm -r 60 -png -f 1 -l 6 "$OUT/kits.pdf" "$OUT/page"
  echo "first kit rendered to $OUT/page-*.png"
fi
.venv/bin/python scripts/demo_returns.py "$OUT/kits.pdf" "$OUT/manifest.csv" "$OUT/returned-scan.pdf"
$MN --as mailroom scan "$OUT/returned-scan.pdf" --site 本社
$MN --as hr kits status
$MN --as boss audit verify
echo "demo finished: kits in $OUT/kits.pdf, the simulated returns in $OUT/returned-scan.pdf, data in $MYNUMBER_HOME"
