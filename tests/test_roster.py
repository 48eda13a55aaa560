import pytest
from sqlalchemy import func, select

from pipeline import db
from pipeline.track.models import Dependent, Person
from tests.conftest import ROSTER_HEADER, ROSTER_ROWS


def count_people(settings):
    with db.session_scope(settings.db_url) as s:
        return s.scalar(select(func.count()).select_from(Person))


@pytest.mark.parametrize("encoding,prefix", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp932", b"")])
def test_roster_encodings_are_detected(home, cli, tmp_path, encoding, prefix):
    path = tmp_path / "r.csv"
    path.write_bytes(prefix + (ROSTER_HEADER + ROSTER_ROWS).replace("\n", "\r\n").encode(encoding))
    code, out, _ = cli("roster", "import", path)
    assert code == 0, out
    with db.session_scope(home.db_url) as s:
        taro = s.execute(select(Person).where(Person.person_id == "E0001")).scalar_one()
        assert taro.name == "山田 太郎" and [d.name for d in taro.dependents] == ["山田 花子", "山田 一郎"]
        assert s.execute(select(Person).where(Person.person_id == "E0002")).scalar_one().postal_code == "530-0001"


def test_reimport_updates_and_never_duplicates(home, cli, tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(ROSTER_HEADER + ROSTER_ROWS, encoding="utf-8")
    assert cli("roster", "import", path)[0] == 0
    changed = ROSTER_ROWS.replace("大阪府大阪市北区梅田1-2-3", "大阪府大阪市中央区1-1").replace("山田 花子;山田 一郎", "山田 花子")
    path.write_text(ROSTER_HEADER + changed, encoding="utf-8")
    code, out, _ = cli("roster", "import", path)
    assert code == 0 and "0 new, 2 updated, 2 unchanged" in out
    assert count_people(home) == 4
    with db.session_scope(home.db_url) as s:
        assert s.scalar(select(func.count()).select_from(Dependent)) == 5


BAD_ROSTERS = {
    "unknown column": (ROSTER_HEADER.replace("site", "office"), "line 1, column 6: unknown column 'office'"),
    "missing person_id": (ROSTER_HEADER + ",名無し,,100-0001,東京,本社,employee,\n", "line 6, column person_id"),
    "duplicate person_id": (ROSTER_HEADER + "E0002,佐藤 三郎,,100-0001,東京,本社,employee,\n",
                            "line 6, column person_id (1): person_id 'E0002' already appears on line 3"),
    "bad kind": (ROSTER_HEADER + "E0009,某,,100-0001,東京,本社,contractor,\n", "line 6, column kind (7)"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROSTERS))
def test_bad_rosters_are_refused_with_line_and_column_and_nothing_imported(home, cli, tmp_path, case):
    text, expected = BAD_ROSTERS[case]
    if not text.endswith("\n"):
        text += "\n"
    if case != "unknown column":
        text = text.replace(ROSTER_HEADER, ROSTER_HEADER + ROSTER_ROWS, 1)
    else:
        text += ROSTER_ROWS
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("roster", "import", path)
    assert code == 65
    assert expected in err and "nothing was imported" in err
    assert "Traceback" not in err
    assert count_people(home) == 0


def test_undecodable_bytes_are_refused_with_the_line(home, cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes((ROSTER_HEADER + ROSTER_ROWS).encode("utf-8") + b"E0009,\x81\xff\xfe,,100-0001,x,y,employee,\n")
    code, _, err = cli("roster", "import", path)
    assert code == 65 and "line 6: undecodable bytes" in err
    assert count_people(home) == 0


def test_kits_print_refuses_a_bad_roster_and_writes_nothing(home, cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(ROSTER_HEADER + ROSTER_ROWS + "E0009,某,,100-0001,東京,本社,contractor,\n", encoding="utf-8")
    code, _, err = cli("kits", "print", path, "--out", tmp_path / "k.pdf")
    assert code == 65 and not (tmp_path / "k.pdf").exists()
    assert count_people(home) == 0
