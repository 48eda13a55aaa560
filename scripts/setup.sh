#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine (as root) and
# creates the virtual environment .venv/ holding the `mynumber` command. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
  tesseract-ocr tesseract-ocr-jpn   # OCR for redaction
  fonts-ipaexfont-gothic            # the Japanese font embedded in every kit PDF
  poppler-utils                     # pdftoppm/pdftotext: looking at PDFs as a person would
  python3-venv
  postgresql                        # server binaries for the PostgreSQL test pass (tests/pg.py runs its own)
  chromium                          # the web station's end-to-end tests (driven by Playwright)
)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Installing must not start services (postgresql's cluster): tests start a throwaway server of their own.
  # policy-rc.d exit 101 is Debian's "not allowed to start"; an existing policy (e.g. Docker's) is kept.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
