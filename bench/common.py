"""Shared helpers for the benchmarks: a scratch data home, synthetic rosters, a table printer."""
from __future__ import annotations

import os
import random
import resource
import tempfile
from contextlib import contextmanager
from pathlib import Path

SURNAMES = "佐藤 鈴木 高橋 田中 伊藤 渡辺 山本 中村 小林 加藤 吉田 山田 佐々木 山口 松本 井上 木村 林 清水 山崎".split()
GIVEN = "太郎 花子 一郎 次郎 美咲 陽菜 翔太 蓮 結衣 大翔 葵 悠真 さくら 健 直子 誠 恵 隆 裕子 修".split()
SITES = ["本社", "大阪支店", "名古屋支店", "福岡支店", "札幌営業所", "仙台営業所", "広島工場", "横浜センター"]


def synthetic_roster(path: Path, people: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    lines = ["person_id,name,name_kana,postal_code,address,site,kind,dependents"]
    for i in range(people):
        surname = rng.choice(SURNAMES)
        kind = "payee" if rng.random() < 0.05 else "employee"
        deps = [f"{surname} {rng.choice(GIVEN)}" for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3, 4]))] \
            if kind == "employee" else []
        lines.append(f"{'P' if kind == 'payee' else 'E'}{i:06d},{surname} {rng.choice(GIVEN)},,"
                     f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d},東京都千代田区千代田{rng.randint(1, 9)}-{rng.randint(1, 30)},"
                     f"{rng.choice(SITES)},{kind},{';'.join(deps)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def scratch_home():
    with tempfile.TemporaryDirectory(prefix="mynumber-bench-") as tmp:
        old = os.environ.get("MYNUMBER_HOME")
        os.environ["MYNUMBER_HOME"] = str(Path(tmp) / "data")
        try:
            from pipeline import config
            from pipeline.commands.init import initialise
            settings = config.load()
            initialise(settings, "bench")
            yield settings, Path(tmp)
        finally:
            if old is None:
                os.environ.pop("MYNUMBER_HOME", None)
            else:
                os.environ["MYNUMBER_HOME"] = old


def reset_peak_rss() -> None:
    """Start the peak over from the current resident size. A process started with fork+exec keeps the peak
    of the parent it was forked from in ru_maxrss (a benchmark that first built a batch of page images in
    the parent measured that batch, not the work). Linux only; elsewhere the peak is the process's whole life."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started or since `reset_peak_rss`, in MB."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(title: str, header: list[str], rows: list[list]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    out = [f"## {title}", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def classifier_speed(clf, batch, seconds: float = 2.0) -> tuple[float, float]:
    """Seconds per digit of `clf.predict_proba` on `batch` (a field's 12 boxes, as the intake calls it):
    (CPU time of this process, wall clock). CPU time leaves out other load on a shared machine."""
    import time
    clf.predict_proba(batch)
    reps, t, tw = 0, time.process_time(), time.perf_counter()
    while time.process_time() - t < seconds:
        clf.predict_proba(batch)
        reps += 1
    return (time.process_time() - t) / (reps * len(batch)), (time.perf_counter() - tw) / (reps * len(batch))
