"""Roles: who may do what; handlers need an appointment and current training; refusals are logged."""
import datetime as dt
import json

from sqlalchemy import select

from pipeline import db
from pipeline.track.models import Event


def _events(settings, action):
    with db.session_scope(settings.db_url) as s:
        return [e for e in s.execute(select(Event).where(Event.action == action).order_by(Event.seq)).scalars()]


def test_init_makes_the_first_admin_and_admin_manages_users(home, cli):
    code, out, _ = cli("users", "list", "--json", actor="tester")
    users = {u["name"]: u for u in json.loads(out)["users"]}
    assert users["tester"]["roles"] == ["admin"]
    assert cli("users", "add", "sato", "--role", "mailroom", actor="tester")[0] == 0
    code, _, err = cli("users", "add", "suzuki", "--role", "mailroom", actor="mailroom")
    assert code == 77 and "allowed for: admin" in err
    code, _, err = cli("users", "add", "sato", "--role", "handler", actor="tester")
    assert code == 70 and "already exists" in err
    code, _, err = cli("users", "add", "x", "--role", "boss", actor="tester")
    assert code == 2 and "unknown role" in err


def test_forbidden_actions_are_refused_and_logged(home, cli, roster_csv, tmp_path):
    cases = [("tester", ["kits", "print", roster_csv, "--out", tmp_path / "k.pdf"]),   # admin is not HR
             ("mailroom", ["numbers", "export", "--out", tmp_path / "n.csv"]),       # never sees numbers
             ("auditor", ["scan", tmp_path]),
             ("stranger", ["kits", "list"])]
    for actor, argv in cases:
        code, out, err = cli(*argv, actor=actor)
        assert code == 77, (actor, argv, err)
        assert "Traceback" not in err
    refused = _events(home, "access.refused")
    assert [(e.actor, e.object_id) for e in refused] == [
        ("tester", "kits.print"), ("mailroom", "numbers.export"), ("auditor", "scan"), ("stranger", "kits.list")]
    assert not (tmp_path / "k.pdf").exists() and not (tmp_path / "n.csv").exists()


def test_handlers_need_appointment_and_current_training(home, cli, tmp_path):
    cli("users", "add", "tanaka", "--role", "handler", actor="tester")
    code, _, err = cli("numbers", "export", "--out", tmp_path / "n.csv", actor="tanaka")
    assert code == 77 and "no written appointment" in err
    assert cli("users", "appoint", "tanaka", actor="manager")[0] == 0
    code, _, err = cli("numbers", "export", "--out", tmp_path / "n.csv", actor="tanaka")
    assert code == 77 and "no recorded training" in err
    old = (dt.date.today() - dt.timedelta(days=400)).isoformat()
    assert cli("users", "train", "tanaka", "--date", old, actor="manager")[0] == 0
    code, _, err = cli("numbers", "export", "--out", tmp_path / "n.csv", actor="tanaka")
    assert code == 77 and "training expired" in err
    code, out, _ = cli("users", "list", actor="manager")
    assert "tanaka" in out and "DUE: training expired" in out
    assert cli("users", "train", "tanaka", actor="manager")[0] == 0
    code, out, _ = cli("numbers", "export", "--out", tmp_path / "n.csv", "--reason", "年末調整", actor="tanaka")
    assert code == 0
    exported = _events(home, "numbers.exported")
    assert exported[-1].actor == "tanaka" and exported[-1].details["reason"] == "年末調整"
    code, _, err = cli("users", "appoint", "tanaka", actor="tester")   # only a manager appoints
    assert code == 77
    code, _, err = cli("users", "appoint", "mailroom", actor="manager")
    assert code == 70 and "not a handler" in err


def test_deactivated_users_cannot_act(home, cli):
    assert cli("users", "deactivate", "mailroom", actor="tester")[0] == 0
    code, _, err = cli("kits", "list", actor="mailroom")
    assert code == 77 and "not an active user" in err
