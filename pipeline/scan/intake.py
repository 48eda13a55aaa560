"""`mynumber scan`: run every page of every file through the stages and record it, one transaction a page.

Untagged pages (ID copies, letters) belong to the kit whose tagged pages surround them: the kit of the tagged
page before them in the same file, or, for untagged pages at the start of a file, the next one. A batch that
is interrupted and run again skips the pages already recorded but still uses them as context, so it ends in
the same state as a run that was never interrupted.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, TextIO

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import blas, config, db, layout as layout_mod, vault
from ..errors import ConfigError
from ..progress import Progress
from ..track import receiving
from ..track.models import Kit
from ..track.receiving import PageFacts
from ..track.sealed import Sealer
from . import sources
from .stages import IntakeContext, KitInfo, PageWork, run_stages

PROBLEM_STATUSES = ("problem", "rejected_tag")
IN_FLIGHT = 4              # pages waiting for (or in) a worker: bounds memory
PARALLEL_FROM_PAGES = 12   # below this, starting worker processes costs more than it saves


@dataclass
class _FileState:
    sha: str | None = None
    previous_kit: str | None = None
    pending: list[int] = field(default_factory=list)    # unassigned pages waiting for the next tagged page


@dataclass
class Summary:
    files: int = 0
    pages: int = 0
    skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    fields: Counter = field(default_factory=Counter)
    kits: set = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    settled_by_id_copy: int = 0     # review items settled by a number read on the kit's ID copy
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"summary": {"files": self.files, "pages": self.pages, "already_recorded": self.skipped,
                            "statuses": dict(self.statuses), "fields": dict(self.fields), "kits": len(self.kits),
                            "settled_by_id_copy": self.settled_by_id_copy,
                            "problems": self.problems, "seconds": round(self.seconds, 3),
                            "pages_per_minute": round(60 * self.pages / self.seconds, 1) if self.seconds else None}}


def _reason(problem: sources.PageProblem, path: Path) -> str:
    """The problem without the file and page it is about (they are shown beside it)."""
    message = problem.message
    for prefix in (f"{path} page {problem.index}: ", f"{path}: ", f"{path.name} page {problem.index}: ",
                   f"{path.name}: "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_reader(settings: config.Settings | None = None) -> Callable:
    """The classifier with the accept rule chosen in config ([review] handwriting_rule, default strict)."""
    from .digits import DigitClassifier
    from .fusion import RULES, default_rule, read_field
    name = str((settings.section("review") if settings else {}).get("handwriting_rule", "strict"))
    if name not in RULES:
        raise ConfigError(f"[review] handwriting_rule must be one of {', '.join(RULES)}, not {name!r}")
    try:
        rule = default_rule(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return partial(read_field, classifier=DigitClassifier.load(), rule=rule)


def default_redactor() -> Callable | None:
    try:
        from ..redact.engine import redact_page
    except ImportError:
        return None
    return lambda image, dpi: redact_page(image, dpi=dpi)


class KitDirectory:
    """Read-only kit lookups for the stages, cached (kits are registered before they can come back)."""

    def __init__(self, db_url: str):
        self.db_url, self._kits = db_url, {}

    def __call__(self, code: str) -> KitInfo | None:
        if code not in self._kits:
            with db.session_scope(self.db_url) as s:
                kit = s.execute(select(Kit).where(Kit.code == code)
                                .options(selectinload(Kit.pages), selectinload(Kit.person))).scalar_one_or_none()
                self._kits[code] = None if kit is None else KitInfo(
                    code, len(kit.person.dependents), {(p.document, p.page) for p in kit.pages})
        return self._kits[code]


def build_context(settings: config.Settings, read_field: Callable | None = None,
                  redact: Callable | None | str = "default") -> IntakeContext:
    return IntakeContext(layout=layout_mod.load(), tag_key=vault.load_key(settings.keys_dir, "tag"),
                         kit_info=KitDirectory(settings.db_url), read_field=read_field or default_reader(settings),
                         redact=default_redactor() if redact == "default" else redact)


# Worker processes build their own context once (classifier, keys) and then only run stages.
_WORKER_CTX: IntakeContext | None = None


def _fixed_mmap_threshold() -> None:
    """Page images are ~9 MB buffers allocated and freed once per page. glibc raises its mmap threshold after
    the first free, after which such buffers come from the heap and fragment it: resident memory then creeps up
    with the batch. A fixed 1 MB threshold keeps every page buffer in its own mapping, returned on free."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _die_with_parent() -> None:
    """A worker must not outlive an intake that was killed (SIGKILL reaches only the parent)."""
    import ctypes
    import signal
    import threading
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)
        threading.Thread(target=watch, daemon=True).start()


def _reuse_page_buffers() -> None:
    """A worker allocates and frees the same few big buffers for every page. Handing them back to the kernel
    after each page and taking them again, page-faulted 4 KB at a time, cost ~10 ms a page. So Pillow keeps
    two freed image blocks (the page's raster, a tag crop) for the next page, and the heap keeps up to 16 MB
    free at its top rather than trimming it after every page. The peak stays the same: it is reached while a
    page is being read, with all of these in use."""
    import ctypes

    from PIL import Image
    try:
        Image.core.set_blocks_max(2)
    except (AttributeError, ValueError):
        pass
    try:
        ctypes.CDLL("libc.so.6").mallopt(-1, 16 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _worker_init(home: str, db_url: str) -> None:
    _die_with_parent()
    _fixed_mmap_threshold()
    _reuse_page_buffers()
    blas.one_thread()
    global _WORKER_CTX
    os.environ["MYNUMBER_HOME"] = home
    os.environ["MYNUMBER_DB_URL"] = db_url
    _WORKER_CTX = build_context(config.load())


def _worker_run(item: sources.PageImage | sources.EncodedPage, facts: PageFacts) -> PageFacts:
    if isinstance(item, sources.EncodedPage):
        item = sources.decode(item)
        if isinstance(item, sources.PageProblem):
            facts.status, facts.message = "problem", _reason(item, item.source)
            return facts
    return run_stages(PageWork(source=item, facts=facts), _WORKER_CTX).facts


class Intake:
    def __init__(self, settings: config.Settings, *, actor: str, site: str | None,
                 read_field: Callable | None = None, redact: Callable | None | str = "default",
                 workers: int | None = None):
        db.require_schema(settings.db_url)
        _fixed_mmap_threshold()
        self.settings, self.actor, self.site = settings, actor, site
        self.sealer = Sealer(settings)
        self.ctx = build_context(settings, read_field, redact)
        # Worker processes only pay off on real batches; custom readers/redactors stay in-process.
        custom = read_field is not None or redact != "default"
        self.workers = 0 if custom else (workers if workers is not None else min(2, os.cpu_count() or 1))

    def run(self, paths: list[Path], *, json_out: TextIO | None = None, progress: bool | None = None,
            on_file_done: Callable[[Path, list[str]], None] | None = None) -> Summary:
        summary = Summary()
        started = time.perf_counter()
        files = sources.expand_paths(paths)
        total = sum(sources.count_pages(f) or 1 for f in files)
        bar = Progress(total, "scanning", enabled=progress)
        executor = None
        if self.workers > 1 and total >= PARALLEL_FROM_PAGES:
            executor = ProcessPoolExecutor(self.workers, initializer=_worker_init,
                                           initargs=(str(self.settings.home), self.settings.db_url))
        try:
            for path in files:
                summary.files += 1
                problems_before = len(summary.problems)
                self._run_file(path, summary, json_out, bar, executor)
                if on_file_done:
                    on_file_done(path, summary.problems[problems_before:])
        finally:
            bar.close()
            if executor is not None:
                executor.shutdown(cancel_futures=True)
        summary.seconds = time.perf_counter() - started
        return summary

    def _run_file(self, path: Path, summary: Summary, json_out: TextIO | None, bar: Progress,
                  executor: ProcessPoolExecutor | None) -> None:
        state = _FileState()
        # Pages in file order: (facts, future) for pages being processed, (None, recorded) for pages an
        # earlier (perhaps interrupted) run recorded, which are not processed again but still give context.
        queue: deque[tuple[PageFacts | None, Future | tuple | None]] = deque()
        # With workers, a page that is a JPEG goes to them undecoded: decoding it here, and sending the raster
        # (ten times the bytes) through a pipe, made this process the bottleneck.
        for item in sources.iter_pages(path, defer_jpeg=executor is not None):
            bar.advance()
            if isinstance(item, sources.PageProblem):
                if state.sha is None:
                    state.sha = _file_sha256(path) if path.is_file() else "0" * 64
                facts = PageFacts(source_sha256=state.sha, source_name=path.name, page_index=item.index or 0,
                                  status="problem", message=_reason(item, path))
                queue.append((facts, None))
            else:
                state.sha = item.source_sha256
                facts = PageFacts(source_sha256=state.sha, source_name=path.name, page_index=item.index, status="new")
                recorded = self._recorded(facts)
                if recorded is not None:
                    summary.skipped += 1
                    queue.append((None, recorded))
                elif executor is None:
                    run_stages(PageWork(source=item, facts=facts), self.ctx)
                    queue.append((facts, None))
                else:
                    queue.append((facts, executor.submit(_worker_run, item, facts)))
            del item  # only the workers' queue holds page images: at most IN_FLIGHT of them
            while queue and (len(queue) > IN_FLIGHT or not isinstance(queue[0][1], Future)):
                self._finish(*queue.popleft(), state, summary, json_out)
        while queue:
            self._finish(*queue.popleft(), state, summary, json_out)

    def _recorded(self, facts: PageFacts) -> tuple | None:
        with db.session_scope(self.settings.db_url) as session:
            known = receiving.already_recorded(session, facts.source_sha256, facts.page_index)
            if known is None:
                return None
            return known.status, session.get(Kit, known.kit_id).code if known.kit_id else None, known.id

    def _finish(self, facts: PageFacts | None, pending, state: "_FileState", summary: Summary,
                json_out: TextIO | None) -> None:
        if facts is None:
            self._context(state, *pending, summary)
            return
        if isinstance(pending, Future):
            facts = pending.result()
        if facts.status == "untagged":
            facts.status = "id_copy" if state.previous_kit else "unassigned"
            facts.kit_code = state.previous_kit
        page_id = self._record(facts, summary, json_out)
        self._context(state, facts.status, facts.kit_code, page_id, summary)

    def _context(self, state: "_FileState", status: str, kit_code: str | None, page_id: int | None,
                 summary: Summary) -> None:
        if status in ("kit_page", "duplicate") and kit_code:
            summary.settled_by_id_copy += self._flush_pending(state.pending, kit_code)
            state.previous_kit = kit_code
        elif status == "unassigned" and page_id is not None:
            state.pending.append(page_id)

    def _flush_pending(self, pending: list[int], kit_code: str | None) -> int:
        settled = 0
        if pending and kit_code:
            with db.session_scope(self.settings.db_url) as session:
                settled = receiving.assign_unassigned(session, self.sealer, pending, kit_code, actor=self.actor,
                                                      site=self.site)
            pending.clear()
        return settled

    def _record(self, facts: PageFacts, summary: Summary, json_out: TextIO | None) -> int | None:
        with db.session_scope(self.settings.db_url) as session:
            receiving.serialise(session)   # another scan process may be recording this very page
            if receiving.already_recorded(session, facts.source_sha256, facts.page_index) is not None:
                summary.skipped += 1
                return None
            page = receiving.record_page(session, self.sealer, facts, actor=self.actor, site=self.site)
            status, message, page_id = page.status, page.message, page.id
        summary.pages += 1
        summary.statuses[status] += 1
        summary.settled_by_id_copy += facts.settled_by_id_copy
        for f in facts.fields:
            summary.fields[receiving.READER_STATUS[f.decision]] += 1
        if facts.kit_code:
            summary.kits.add(facts.kit_code)
        if status in PROBLEM_STATUSES:
            where = f"{facts.source_name} page {facts.page_index}" if facts.page_index else facts.source_name
            summary.problems.append(f"{where}: {message}")
        if json_out is not None:
            json_out.write(json.dumps({
                "file": facts.source_name, "page": facts.page_index, "status": status, "kit": facts.kit_code,
                "document": facts.document, "doc_page": facts.doc_page,
                "fields": {f.field: receiving.READER_STATUS[f.decision] for f in facts.fields},
                "checks": receiving._public_checks(facts.checks), "message": message}, ensure_ascii=False) + "\n")
        return page_id
