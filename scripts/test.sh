#!/usr/bin/env bash
# The whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1
exec .venv/bin/python -m pytest "$@"
