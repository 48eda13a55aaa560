"""Scan uploads processed in the background: one worker thread runs the intake on each upload in turn.

Uploaded files wait in a private folder inside the data home (0700) and are deleted when their job ends,
whatever the outcome; folders left by a station that was killed are deleted when the next one starts. The
intake runs in this process (no worker processes: forking a threaded web server is not safe), recording
page after page; its JSON lines (no numbers in them) drive the progress shown in the browser.
"""
from __future__ import annotations

import json
import logging
import queue
import secrets
import shutil
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from ..errors import MyNumberError

log = logging.getLogger(__name__)
KEEP_FINISHED = 200          # finished jobs remembered for their progress page


@dataclass
class UploadJob:
    id: str
    owner: str
    site: str | None
    folder: Path
    files: list[tuple[str, int]]                 # (label shown, bytes): never the uploaded file's own name
    state: str = "queued"                        # queued | running | done | failed
    total: int = 0                               # pages expected
    done: int = 0                                # pages recorded so far
    already: int = 0                             # pages recorded by an earlier scan of the same file
    statuses: Counter = field(default_factory=Counter)
    fields: Counter = field(default_factory=Counter)
    kits: set = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict:
        percent = 100 if self.state in ("done", "failed") else (
            int(100 * self.done / self.total) if self.total else 0)
        return {"id": self.id, "state": self.state, "total": self.total, "done": self.done, "percent": percent,
                "already_recorded": self.already, "statuses": dict(self.statuses), "fields": dict(self.fields),
                "kits": sorted(self.kits), "problems": self.problems, "error": self.error,
                "files": [{"label": label, "bytes": size} for label, size in self.files]}


class _Progress:
    """Takes the intake's JSON lines (one per recorded page) as a file would."""

    def __init__(self, job: UploadJob):
        self.job = job

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                page = json.loads(line)
                self.job.done += 1
                self.job.statuses[page["status"]] += 1
                self.job.fields.update(page.get("fields", {}).values())
                if page.get("kit"):
                    self.job.kits.add(page["kit"])
        return len(text)

    def flush(self) -> None:
        pass


class UploadRunner:
    def __init__(self, settings: config.Settings, root: Path):
        self.settings, self.root = settings, root
        self._jobs: dict[str, UploadJob] = {}
        self._queue: queue.Queue[UploadJob] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        for leftover in root.glob("job-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def new_folder(self) -> tuple[str, Path]:
        job_id = secrets.token_urlsafe(12)   # letters mostly: an id is never a long digit run
        folder = self.root / f"job-{job_id}"
        folder.mkdir(mode=0o700)
        return job_id, folder

    def submit(self, job: UploadJob) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="scan-uploads", daemon=True)
                self._thread.start()
        self._queue.put(job)

    def get(self, job_id: str, owner: str) -> UploadJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    def of(self, owner: str) -> list[UploadJob]:
        return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: -j.created)

    def wait(self, timeout: float | None = None) -> bool:
        """Until every submitted job has finished (for shutting down cleanly, and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(j.state in ("queued", "running") for j in list(self._jobs.values())):
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _forget_old(self) -> None:
        finished = sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.finished)
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.id]

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            try:
                self._run(job)
            finally:
                self._queue.task_done()

    def _run(self, job: UploadJob) -> None:
        from ..scan import sources
        from ..scan.intake import Intake
        job.state = "running"
        try:
            paths = sorted(job.folder.iterdir())
            job.total = sum(sources.count_pages(p) or 1 for p in paths)
            intake = Intake(self.settings, actor=job.owner, site=job.site, workers=0)
            summary = intake.run(paths, json_out=_Progress(job), progress=False)
            job.already, job.problems = summary.skipped, list(summary.problems)
            job.state = "done"
        except MyNumberError as exc:
            job.error, job.state = exc.message, "failed"
        except Exception as exc:       # the job fails, the station stays up; where, not the message (see app.py)
            job.error, job.state = "内部エラーのため取り込めませんでした（ログを確認してください）", "failed"
            log.error("scan upload %s failed: %s\n%s", job.id, type(exc).__name__,
                      "".join(traceback.format_tb(exc.__traceback__)))
        finally:
            shutil.rmtree(job.folder, ignore_errors=True)
            job.finished = time.time()
