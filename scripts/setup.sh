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
)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
