"""Scan upload for small offices without a hot folder: files go to the intake, progress is polled."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for

from .access import requires, station
from .auth import wants_json
from .jobs import UploadJob

bp = Blueprint("upload", __name__, url_prefix="/upload")
SUFFIXES = {".pdf": ".pdf", ".tif": ".tif", ".tiff": ".tif", ".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg"}


@bp.get("")
@requires("web.upload")
def form():
    return render_template("upload.html", jobs=station().uploads.of(g.user)[:10])


@bp.post("")
@requires("web.upload")
def receive():
    runner = station().uploads
    uploaded = [f for f in request.files.getlist("files") if f and f.filename]
    site = request.form.get("site", "").strip() or None
    problem = None
    if not uploaded:
        problem = "ファイルが選ばれていません。"
    elif any(Path(f.filename).suffix.lower() not in SUFFIXES for f in uploaded):
        bad = [str(i) for i, f in enumerate(uploaded, 1) if Path(f.filename).suffix.lower() not in SUFFIXES]
        problem = (f"ファイル {', '.join(bad)} は取り込めない形式です。PDF、TIFF、PNG、JPEG を選んでください。"
                   "何も取り込んでいません。")
    if problem:
        if wants_json():
            return jsonify({"error": problem}), 400
        flash(problem, "error")
        return redirect(url_for(".form"), 303)
    job_id, folder = runner.new_folder()
    files = []
    # Saved under neutral names: an uploaded file's own name is not shown or recorded (it could be anything).
    for i, storage in enumerate(uploaded, 1):
        target = folder / f"upload-{i:02d}{SUFFIXES[Path(storage.filename).suffix.lower()]}"
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            storage.save(out)
        files.append((f"ファイル{i}（{target.suffix[1:].upper()}）", target.stat().st_size))
    job = UploadJob(job_id, g.user, site, folder, files)
    runner.submit(job)
    if wants_json():
        return jsonify({"job": job_id, "status": url_for(".status", job_id=job_id),
                        "page": url_for(".job_page", job_id=job_id)}), 202
    return redirect(url_for(".job_page", job_id=job_id), 303)


def _job(job_id: str) -> UploadJob:
    job = station().uploads.get(job_id, g.user)
    if job is None:
        abort(404)
    return job


@bp.get("/jobs/<job_id>")
@requires("web.upload")
def job_page(job_id: str):
    return render_template("upload_job.html", job=_job(job_id).as_dict())


@bp.get("/jobs/<job_id>.json")
@requires("web.upload")
def status(job_id: str):
    return jsonify(_job(job_id).as_dict())
