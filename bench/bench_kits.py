"""Kit printing: pages per second and peak memory for rosters of growing size.

Each size runs in a fresh process so peak memory is that run's alone. Usage:
    .venv/bin/python -m bench.bench_kits [--people 1500 15000]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one_run(people: int) -> dict:
    from bench.common import peak_rss_mb, scratch_home, synthetic_roster
    from pipeline.kit.printing import print_kits

    with scratch_home() as (settings, tmp):
        roster = synthetic_roster(tmp / "roster.csv", people)
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        result = print_kits(settings, roster, tmp / "kits.pdf", manifest=tmp / "manifest.csv", site=None,
                            actor="bench", progress=False)
        total = time.perf_counter() - t0
        size_mb = (tmp / "kits.pdf").stat().st_size / 1e6
    return {"people": people, "kits": result.kits, "pages": result.pages, "seconds": total,
            "pages_per_s": result.pages / total, "pdf_mb": size_mb, "rss_start_mb": rss_before,
            "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, nargs="+", default=[1500, 15000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.one)))
        return
    from bench.common import table
    rows = []
    for n in args.people:
        out = subprocess.run([sys.executable, "-m", "bench.bench_kits", "--one", str(n)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        rows.append([r["people"], r["pages"], f"{r['seconds']:.1f}", f"{r['pages_per_s']:.0f}",
                     f"{r['pdf_mb']:.1f}", f"{r['peak_rss_mb']:.0f}"])
    print(table("kits print (import + register + render + manifest, one process)",
                ["people", "pages", "seconds", "pages/s", "PDF MB", "peak RSS MB"], rows))
    print("target: >= 500 pages/s on 2 cores; peak memory must not grow with the roster")


if __name__ == "__main__":
    main()
