#!/usr/bin/env bash
# The whole test suite, on both databases the product supports; `.ci/run` calls exactly this.
#   1. everything on SQLite;
#   2. the database tests (marker `db`: every test using the `home` fixture, see tests/conftest.py) on a
#      throwaway PostgreSQL server that tests/pg.py starts and removes (MYNUMBER_TEST_DB=postgresql).
# Arguments go to both pytest runs (e.g. a test file, -k, -x). Fails if either pass fails.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1

echo "== SQLite: all tests"
MYNUMBER_TEST_DB=sqlite .venv/bin/python -m pytest "$@"
sqlite_status=$?

echo "== PostgreSQL: the database tests (marker db)"
started=$SECONDS
MYNUMBER_TEST_DB=postgresql .venv/bin/python -m pytest "$@"
pg_status=$?
echo "PostgreSQL pass took $((SECONDS - started)) s"
# Exit 5 is "no tests collected": legitimate only when the arguments chose tests that use no database. The
# whole suite always has database tests, so without arguments it means the selection broke: a failure.
if [ "$pg_status" -eq 5 ] && [ $# -gt 0 ]; then
  echo "(the chosen tests use no database: nothing to run on PostgreSQL)"
  pg_status=0
fi

if [ "$sqlite_status" -ne 0 ]; then exit "$sqlite_status"; fi
exit "$pg_status"
