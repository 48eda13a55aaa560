"""The web station end to end, in headless Chromium (Debian's package, driven by Playwright; no browser
download): login and lock-out, CSRF, the review station's double entry, the kit dashboard, the scan upload
and the audit console. Each page is screenshotted into $MYNUMBER_WEB_SCREENS (default
/tmp/mynumber-web-screens) for a person to look at.

One data home and one server serve the whole module: kits are printed and one returned kit is scanned once
(its number field has three empty boxes, so it waits in review); every test opens its own browser context.
"""
from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from pipeline import config, db, layout
from pipeline.track.models import Document, Event, Kit, User
from tests import idcards, scansim
from tests.conftest import TEST_DB

REPO = Path(__file__).resolve().parents[1]
ROSTER = REPO / "kits" / "examples" / "roster.csv"
CHROMIUM = os.environ.get("MYNUMBER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENS = Path(os.environ.get("MYNUMBER_WEB_SCREENS", "/tmp/mynumber-web-screens"))
DPI = 200
PASSWORD = "station-password-1"
HANDLER_1, HANDLER_2, AUDITOR, MAILROOM, MANAGER = "sato", "suzuki", "kansa", "yubin", "sekinin"
LONG_DIGITS = re.compile(r"\d{12}")
TRACKING = ("112233445566", "556677889900")


def _browser_tools():
    """Playwright and Chromium, or a skip outside CI (in CI, scripts/setup.sh installs both: fail loudly)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return sync_playwright


def _mynumber(env: dict, *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _filled_pages(pdf: Path, rows: list[dict], person: str, rng, meant: dict) -> list:
    """The person's returned kit: provision form (number with its last three boxes left empty, consent
    ticked, signed) and the ID-copy sheet with a notification card pasted on it."""
    kit_layout = layout.load()
    pages = []
    for i, row in enumerate(rows):
        if row["person_id"] != person or row["document"] not in ("provision_form", "id_copy_sheet"):
            continue
        page_layout = kit_layout.documents[row["document"]].page(int(row["doc_page"]))
        img = scansim.rasterise(pdf, i, DPI)
        if row["document"] == "provision_form":
            number = scansim.random_valid_number(rng)
            meant[person] = number
            scansim.write_digits(img, page_layout, "self", number[:9] + "   ", DPI, style="printed", rng=rng)
            scansim.tick_checkbox(img, page_layout, "consent", DPI, rng)
            for name in page_layout.signatures:
                scansim.sign(img, page_layout, name, DPI, rng)
        else:
            card = idcards.make_sample("notification", seed=7)
            scansim.paste_id_copy(img, page_layout.paste_areas["number_check"], DPI, card, rng=rng)
        pages.append(scansim.degrade(img, DPI, rng, rotate=0, noise=3.0, jpeg_quality=85))
    return pages


def _refusal_pages(pdf: Path, rows: list[dict], person: str, rng) -> list:
    kit_layout = layout.load()
    for i, row in enumerate(rows):
        if row["person_id"] == person and row["document"] == "refusal_form":
            page_layout = kit_layout.documents["refusal_form"].page(1)
            img = scansim.rasterise(pdf, i, DPI)
            scansim.tick_checkbox(img, page_layout, "reason_unwilling", DPI, rng)
            for name in page_layout.signatures:
                scansim.sign(img, page_layout, name, DPI, rng)
            return [scansim.degrade(img, DPI, rng, rotate=180, noise=3.0, jpeg_quality=85)]
    raise AssertionError(f"no refusal form for {person}")


class Station:
    """The data home, the running server and the browser, shared by the module's tests."""

    def __init__(self, base: Path, settings: config.Settings, env: dict, url: str, browser, meant: dict,
                 kits: dict, upload_pdf: Path):
        self.base, self.settings, self.env, self.url, self.browser = base, settings, env, url, browser
        self.meant, self.kits, self.upload_pdf = meant, kits, upload_pdf
        self.errors: list[str] = []

    def page(self):
        context = self.browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900},
                                           accept_downloads=True)
        page = context.new_page()
        # Script errors and CSP violations show up here; 401/403/404 answers the tests ask for are not errors.
        page.on("console", lambda m: self.errors.append(m.text)
                if m.type == "error" and "the server responded with a status of" not in m.text else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page

    def login(self, page, name: str, password: str = PASSWORD):
        page.goto(self.url + "/login")
        page.fill("#name", name)
        page.fill("#password", password)
        with page.expect_navigation():
            page.press("#password", "Enter")

    def logout(self, page):
        page.click("form.logout button")
        page.wait_for_url(self.url + "/login")

    def check(self, page) -> str:
        """A page as the browser has it: no number, nor any run of twelve digits, anywhere in it."""
        html = page.content()
        assert not self.errors, self.errors
        assert not LONG_DIGITS.search(html), LONG_DIGITS.search(html).group(0)
        assert not any(n in html for n in self.meant.values())
        return html

    def shot(self, page, name: str) -> None:
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)

    def events(self, action: str) -> list[Event]:
        with db.session_scope(self.settings.db_url) as s:
            return list(s.execute(select(Event).where(Event.action == action).order_by(Event.seq)).scalars())


@pytest.fixture(scope="module")
def station(tmp_path_factory):
    sync_playwright = _browser_tools()
    base = tmp_path_factory.mktemp("web")
    home = base / "home"
    url = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MYNUMBER_HOME", str(home))
        if TEST_DB == "postgresql":
            from tests import pg
            url = pg.fresh_database()
            mp.setenv("MYNUMBER_DB_URL", url)
        else:
            mp.delenv("MYNUMBER_DB_URL", raising=False)
        env = {k: v for k, v in os.environ.items()}
        from pipeline.commands.init import initialise
        from pipeline.track import users
        from pipeline.web.credentials import set_password
        settings = config.load()
        initialise(settings, "admin")
        import datetime as dt
        with db.session_scope(settings.db_url) as s:
            for name, roles in ((HANDLER_1, ["handler"]), (HANDLER_2, ["handler"]), (AUDITOR, ["auditor"]),
                                (MAILROOM, ["mailroom"]), (MANAGER, ["manager"]), ("lockme", ["mailroom"]),
                                ("printer", ["handler"])):
                users.add(s, name, roles, actor="admin")
            for name in (HANDLER_1, HANDLER_2, "printer"):
                users.appoint(s, name, dt.date.today(), actor=MANAGER)
                users.train(s, name, dt.date.today(), actor=MANAGER)
            for name in (HANDLER_1, HANDLER_2, AUDITOR, MAILROOM, MANAGER, "lockme"):
                set_password(s, name, PASSWORD, actor="admin")
        db.engine_for(settings.db_url).dispose()

        _mynumber(env, "--as", "printer", "kits", "print", str(ROSTER), "--out", str(base / "kits.pdf"),
                  "--manifest", str(base / "manifest.csv"))
        rows = list(csv.DictReader((base / "manifest.csv").open(encoding="utf-8")))
        kits = {r["person_id"]: r["kit_id"] for r in rows}
        rng = np.random.default_rng(7)
        meant: dict[str, str] = {}
        scansim.make_scan_pdf(_filled_pages(base / "kits.pdf", rows, "E0002", rng, meant), base / "returned.pdf")
        _mynumber(env, "--as", MAILROOM, "scan", str(base / "returned.pdf"), "--site", "大阪支店")
        # Two kits out with their people, reminders due at once ([reminders] after_days = 0), and a package
        # between sites that is overdue at once (--due-days 0); tracking numbers of twelve digits, as carriers
        # print them.
        settings.config_path.write_text(settings.config_path.read_text(encoding="utf-8").replace(
            "after_days = 14", "after_days = 0"), encoding="utf-8")
        (base / "sent.csv").write_text("kit_id,carrier,tracking_number\n"
                                       f"{kits['E0001']},簡易書留,{TRACKING[0]}\n{kits['E0003']},社内便,\n",
                                       encoding="utf-8")
        _mynumber(env, "--as", MAILROOM, "kits", "send", "--manifest", str(base / "sent.csv"))
        with db.session_scope(settings.db_url) as s:
            form = s.execute(select(Document.code).join(Kit, Document.kit_id == Kit.id).where(
                Kit.code == kits["E0002"], Document.document == "provision_form")).scalar_one()
        db.engine_for(settings.db_url).dispose()
        _mynumber(env, "--as", MAILROOM, "transfer", "send", "--from", "大阪支店", "--to", "本社", "--carrier",
                  "レターパック", "--tracking", TRACKING[1], "--due-days", "0", "--documents", form)
        scansim.make_scan_pdf(_refusal_pages(base / "kits.pdf", rows, "P0001", rng), base / "upload.pdf")

        from pipeline.web import create_app
        from pipeline.web.server import make_station_server
        settings = config.load()                           # with the config written above
        app = create_app(settings, secure_cookies=False)   # plain http on 127.0.0.1: no Secure flag
        server = make_station_server(app, "127.0.0.1", 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                yield Station(base, settings, env, f"http://127.0.0.1:{server.port}", browser, meant, kits,
                              base / "upload.pdf")
            finally:
                browser.close()
                server.shutdown()
                server.server_close()
                app.extensions["mynumber"].uploads.wait(30)
                db.engine_for(settings.db_url).dispose()
                if url:
                    from tests import pg
                    pg.drop_database(url)


@pytest.mark.db
def test_login_cookies_headers_and_logout(station):
    page = station.page()
    response = page.goto(station.url + "/dashboard")
    assert page.url == station.url + "/login"                       # not logged in: sent to the login page
    headers = response.headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
    assert "no-store" in headers["cache-control"]
    station.check(page)
    station.shot(page, "01-login")

    station.login(page, MAILROOM)
    assert page.url == station.url + "/"
    cookie, = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    assert "キット状況" in page.inner_text("main") and "監査コンソール" not in page.inner_text("main")
    station.check(page)
    station.shot(page, "02-home-mailroom")

    station.logout(page)
    assert "ログアウトしました" in page.inner_text("main")
    page.goto(station.url + "/dashboard")
    assert page.url == station.url + "/login"                       # the session is gone on the server too
    assert station.events("user.logout")[-1].actor == MAILROOM
    page.context.close()


def _review_item_shown(station, page) -> str:
    with page.expect_response(lambda r: "/crop" in r.url) as crop:
        page.goto(station.url + "/review")
    assert crop.value.status == 200 and crop.value.headers["content-type"] == "image/png"
    assert "no-store" in crop.value.headers["cache-control"]
    assert page.evaluate("document.querySelector('figure.crop img').naturalWidth") > 100
    assert page.evaluate("document.activeElement.id") == "number"   # keyboard only: the box has the focus
    return station.check(page)


@pytest.mark.db
def test_double_entry_by_two_handlers_settles_the_kit_and_the_auditor_finds_it(station):
    kit = station.kits["E0002"]
    right = station.meant["E0002"]
    wrong = right[:11] + str((int(right[11]) + 1) % 10)

    page = station.page()
    station.login(page, HANDLER_1)
    page.goto(station.url + "/dashboard")
    stats = dict(zip(page.locator("ul.stats span").all_inner_texts(),
                     page.locator("ul.stats strong").all_inner_texts()))
    assert stats == {"印刷": "4", "発送": "2", "返送あり": "1", "完了": "0", "不備あり": "1", "提供拒否": "0",
                     "督促対象": "2", "移送の受領遅れ": "1"}
    overdue = page.locator("table", has_text="追跡番号").inner_text()
    assert "大阪支店\t本社\tレターパック\t5566-7788-9900" in overdue   # shown as printed, never as 12 digits
    row = page.locator("table.incomplete tr", has_text=kit)
    assert "目視確認待ち" in row.inner_text()                           # incomplete: the number is under review
    station.check(page)
    station.shot(page, "03-dashboard-before")
    row.locator(f"a:text('{kit}')").click()                            # drill-down to the kit
    page.wait_for_url(f"{station.url}/kits/{kit}")
    assert "不備あり" in page.inner_text("h1") and "目視確認待ち" in page.inner_text("ul.missing")
    assert "kit.incomplete" in page.inner_text("table.events")
    station.check(page)

    html = _review_item_shown(station, page)
    assert kit in html and "12枠中 3 枠が空欄" in html
    station.shot(page, "04-review")
    page.keyboard.type(wrong)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "チェックデジット" in page.inner_text(".flash.error")         # refused, not recorded
    assert page.input_value("#number") == "" and page.evaluate("document.activeElement.id") == "number"
    station.check(page)
    station.shot(page, "05-review-refused")
    page.keyboard.type(right)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "1人目の入力を登録しました" in page.inner_text("main")
    assert "あなたが入力できる項目はありません" in page.inner_text("main")  # not twice by the same handler
    station.check(page)
    station.logout(page)

    station.login(page, HANDLER_2)
    _review_item_shown(station, page)
    page.keyboard.type(right)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "確定しました" in page.inner_text("main")
    station.check(page)
    station.shot(page, "06-review-settled")

    page.goto(station.url + "/dashboard?site=大阪支店")
    assert page.locator("table.incomplete tr", has_text=kit).count() == 0
    assert page.locator("ul.stats li.good strong").inner_text() == "1"    # 完了
    station.check(page)
    station.shot(page, "07-dashboard-after")
    page.goto(f"{station.url}/kits/{kit}")
    assert "完了" in page.inner_text("h1")
    history = page.inner_text("table.events")
    assert "review.settled" in history and "kit.complete" in history
    station.check(page)
    station.shot(page, "08-kit")
    station.logout(page)

    with db.session_scope(station.settings.db_url) as s:
        assert s.execute(select(Kit.state).where(Kit.code == kit)).scalar_one() == "complete"
    entries = station.events("review.entry")
    assert [e.actor for e in entries] == [HANDLER_1, HANDLER_2]
    assert [e.actor for e in station.events("review.entry_refused")] == [HANDLER_1]
    assert station.events("review.settled")[0].details["operators"] == [HANDLER_1, HANDLER_2]

    # the auditor finds the events, sees the chain intact and takes the log away as CSV
    station.login(page, AUDITOR)
    page.goto(station.url + "/audit")
    assert "正常" in page.inner_text("#chain-status")
    with page.expect_navigation():
        page.click("#chain button")
    assert "正常" in page.inner_text("#chain-status")
    page.fill("#key", kit)
    with page.expect_navigation():
        page.click("form[action$='/audit/history'] button")
    found = page.inner_text("table.events")
    assert len(re.findall(r"review\.entry(?!_)", found)) == 2 and "review.settled" in found
    station.check(page)
    station.shot(page, "09-audit-history")
    page.fill("#key", "E0002")                                          # by person: the same story
    with page.expect_navigation():
        page.click("form[action$='/audit/history'] button")
    assert "対象者 E0002 の履歴" in page.inner_text("main") and "review.settled" in page.inner_text("table.events")
    page.fill("#key", "-".join((right[:4], right[4:8], right[8:])))     # a number typed by mistake
    with page.expect_navigation():
        page.click("form[action$='/audit/history'] button")
    assert "個人番号のように見えます" in page.inner_text(".flash.error")
    assert page.input_value("#key") == ""                               # not shown back
    station.check(page)

    page.fill("#action", "review.")
    with page.expect_navigation():
        page.click("form[action$='/audit/log'] button.primary")
    logged = page.inner_text("table.events")
    assert "review.settled" in logged and "review.entry_refused" in logged and "kit.complete" not in logged
    station.check(page)
    station.shot(page, "10-audit-log")
    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["action"] for r in rows].count("review.entry") == 2
    assert {r["action"] for r in rows} == {"review.entry", "review.entry_refused", "review.settled",
                                           "review.crop_shown"}
    assert all(r["object"] for r in rows) and right not in text and wrong not in text
    page.context.close()


@pytest.mark.db
def test_forbidden_pages_are_refused_and_the_refusal_is_logged(station):
    page = station.page()
    station.login(page, AUDITOR)
    response = page.goto(station.url + "/review")
    assert response.status == 403 and "権限がありません" in page.inner_text("main")
    assert "目視確認" not in page.inner_text("header nav")               # not offered in the menu either
    station.check(page)
    station.shot(page, "11-forbidden")
    refusal = station.events("access.refused")[-1]
    assert (refusal.actor, refusal.object_id) == (AUDITOR, "web.review")

    crop = page.request.get(station.url + "/review/items/1/crop")
    assert crop.status == 403 and crop.headers["content-type"].startswith("text/html")

    page.goto(station.url + "/audit")
    page.fill("#action", "access.refused")
    page.fill("#actor", AUDITOR)
    with page.expect_navigation():
        page.click("form[action$='/audit/log'] button.primary")
    assert "web.review" in page.inner_text("table.events")             # the auditor sees her own refusal
    station.check(page)
    station.logout(page)

    station.login(page, MAILROOM)
    assert page.goto(station.url + "/audit").status == 403
    assert page.goto(station.url + "/audit/disposal").status == 403
    assert station.events("access.refused")[-1].actor == MAILROOM
    page.context.close()


@pytest.mark.db
def test_five_wrong_passwords_lock_the_account(station):
    page = station.page()
    for attempt in range(1, 6):
        station.login(page, "lockme", "wrong password!")
        message = page.inner_text(".flash.error")
        assert ("ロック" in message or "までログインできません" in message) == (attempt == 5), (attempt, message)
    station.login(page, "lockme", PASSWORD)                             # the right one: still locked
    assert "までログインできません" in page.inner_text(".flash.error") and page.url.endswith("/login")
    station.check(page)
    station.shot(page, "12-locked")
    locked = station.events("user.locked")
    assert [e.object_id for e in locked] == ["lockme"] and locked[0].details["failed"] == 5
    failures = [e for e in station.events("user.login_failed") if e.object_id == "lockme"]
    assert [e.details["reason"] for e in failures] == ["wrong password"] * 5 + ["locked"]

    station.login(page, "nobody-of-ours", "whatever")                   # an unknown name is not recorded
    assert station.events("user.login_failed")[-1].object_id == "(unknown)"
    page.context.close()


@pytest.mark.db
def test_a_post_without_the_csrf_token_is_refused(station):
    page = station.page()
    station.login(page, MAILROOM)
    before = len(station.events("access.refused"))
    for form in ({}, {"csrf_token": "forged-token"}):
        response = page.request.post(station.url + "/logout", form=form)
        assert response.status == 403 and "トークン" in response.text()
    refusals = station.events("access.refused")[before:]
    assert [r.details["reason"] for r in refusals] == ["POST without a valid CSRF token"] * 2
    page.goto(station.url + "/")
    assert page.url == station.url + "/"                                # still logged in: nothing happened
    page.context.close()


@pytest.mark.db
def test_scan_upload_shows_progress_and_records_the_pages(station):
    page = station.page()
    station.login(page, MAILROOM)
    page.goto(station.url + "/upload")
    station.check(page)
    page.set_input_files("#files", str(station.upload_pdf))
    page.fill("#site", "本社")
    station.shot(page, "13-upload")
    polls, first_state = [], []
    page.on("response", lambda r: polls.append(r.status) if r.url.endswith(".json") else None)
    page.on("response", lambda r: first_state.append(r.text()) if "/upload/jobs/" in r.url
            and not r.url.endswith(".json") and not first_state else None)
    page.click("#upload-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/upload/jobs/[^/.]+$"))
    page.wait_for_selector(".job-state.done", timeout=60000)
    if 'data-state="done"' not in first_state[0]:        # the page followed the intake's progress
        assert polls and set(polls) == {200}
    shown_first = re.search(r'data-state="(\w+)"', first_state[0]).group(1)
    print(f"upload: the job page first showed {shown_first}, then {len(polls)} progress polls")
    assert page.inner_text("#job-count").startswith("1 / 1")
    kit = station.kits["P0001"]
    assert kit in page.inner_text("#job")
    station.check(page)
    station.shot(page, "14-upload-done")
    status = page.request.get(page.url + ".json").json()
    assert status["state"] == "done" and status["statuses"] == {"kit_page": 1} and status["kits"] == [kit]
    with db.session_scope(station.settings.db_url) as s:
        assert s.execute(select(Kit.state).where(Kit.code == kit)).scalar_one() == "refused"
    uploads = station.settings.home / "web-uploads"
    assert [p for p in uploads.rglob("*") if p.is_file()] == []          # nothing of the scan is left behind
    received = [e for e in station.events("kit.received") if e.object_id == kit]
    assert [(e.actor, e.site) for e in received] == [(MAILROOM, "本社")]
    page.context.close()


@pytest.mark.db
def test_disposal_due_list_and_certificate_download(station):
    kit = station.kits["E0002"]
    with db.session_scope(station.settings.db_url) as s:
        sheet = s.execute(select(Document.code).join(Kit, Document.kit_id == Kit.id)
                          .where(Kit.code == kit, Document.document == "id_copy_sheet")).scalar_one()
    _mynumber(station.env, "--as", MAILROOM, "documents", "check", sheet)   # ID copies: due once checked
    page = station.page()
    station.login(page, MANAGER)
    page.goto(station.url + "/audit/disposal")
    assert sheet in page.locator("table", has_text="廃棄予定日").first.inner_text()
    station.check(page)
    station.shot(page, "15-disposal-due")

    certificate = station.base / "certificate.pdf"
    _mynumber(station.env, "--as", MANAGER, "disposal", "run", "--method", "shredding", "--executor", MAILROOM,
              "--manager", MANAGER, "--documents", sheet, "--out", str(certificate))
    page.reload()
    assert "廃棄予定の書類はありません" in page.inner_text("main")
    row = page.locator("tr", has_text="細断")
    assert MAILROOM in row.inner_text() and MANAGER in row.inner_text()
    station.check(page)
    station.shot(page, "16-disposal-certificate")
    with page.expect_download() as download:
        row.locator("a", has_text="PDF").click()
    assert Path(download.value.path()).read_bytes() == certificate.read_bytes()
    assert station.events("disposal.certificate_downloaded")[-1].actor == MANAGER
    page.context.close()


# --- without a browser ---------------------------------------------------------------------------------------

def test_secure_cookie_flags(home):
    from pipeline.web import create_app
    from pipeline.web.credentials import set_password
    with db.session_scope(home.db_url) as s:
        set_password(s, "auditor", PASSWORD, actor="tester")
    client = create_app(home).test_client()                             # default: Secure
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"name": "auditor", "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-mynumber=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie and "Domain" not in cookie
    assert "max-age" in answer.headers["Strict-Transport-Security"]


def test_users_passwd_sets_the_password_and_lifts_a_lock(home, cli, monkeypatch):
    from pipeline.web.credentials import check_login
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, out, err = cli("users", "passwd", "mailroom", "--password-stdin", actor="tester")
    assert code == 0 and "password of mailroom set" in out
    assert check_login(home.db_url, "mailroom", "a long enough password").ok
    assert not check_login(home.db_url, "mailroom", "another password").ok
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    code, _, err = cli("users", "passwd", "mailroom", "--password-stdin", actor="tester")
    assert code == 2 and "too short" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    code, _, err = cli("users", "passwd", "mailroom", "--password-stdin", actor="hr")
    assert code == 77                                                    # only an admin sets passwords
    with db.session_scope(home.db_url) as s:
        logged = s.execute(select(Event.details).where(Event.action == "user.password_set")).scalars().all()
        stored = s.execute(select(User.password_hash).where(User.name == "mailroom")).scalar_one()
    assert logged == [{"unlocked": False}]                               # who and when, never the password
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored
    for _ in range(5):
        check_login(home.db_url, "mailroom", "wrong password")
    assert check_login(home.db_url, "mailroom", "a long enough password").problem == "locked"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli("users", "passwd", "mailroom", "--password-stdin", actor="tester")[0] == 0
    assert check_login(home.db_url, "mailroom", "a long enough password").ok
    with db.session_scope(home.db_url) as s:
        unlocked = s.execute(select(Event.details).where(Event.action == "user.password_set")
                             .order_by(Event.seq.desc())).scalars().first()
    assert unlocked == {"unlocked": True}


@pytest.mark.db
def test_a_number_typed_into_the_address_bar_is_masked_in_the_log_and_not_shown(station, caplog):
    page = station.page()
    station.login(page, AUDITOR)
    number = scansim.random_valid_number(np.random.default_rng(3))
    caplog.set_level("INFO", logger="werkzeug")
    response = page.goto(f"{station.url}/kits/{number}")
    assert response.status == 404 and number not in page.content()
    station.check(page)
    requests = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any("/kits/[masked]" in line for line in requests) and not any(number in line for line in requests)
    page.context.close()


def test_request_log_masks_digit_runs():
    from pipeline.web.server import mask_line
    assert mask_line('"GET /kits/123456789018 HTTP/1.1"') == '"GET /kits/[masked] HTTP/1.1"'
    assert mask_line('"GET /x?q=1234-5678-9018 HTTP/1.1"') == '"GET /x?q=[masked] HTTP/1.1"'
    assert mask_line('"GET /x?q=1234%205678%209018 HTTP/1.1"') == '"GET /x?q=[masked] HTTP/1.1"'
    assert mask_line('"GET /kits/K0000001 HTTP/1.1" 200') == '"GET /kits/K0000001 HTTP/1.1" 200'
