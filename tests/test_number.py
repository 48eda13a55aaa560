import csv
import random

import pytest

from pipeline import number
from tests.conftest import shared


def test_examples_from_the_domain_brief():
    assert number.is_valid_digits("123456789018")
    assert not number.is_valid_digits("123456789010")


@pytest.mark.parametrize("text", ["123456789018", "1234 5678 9018", "1234-5678-9018", "１２３４５６７８９０１８",
                                  "１２３４－５６７８－９０１８", " 1234\u30005678 9018 "])
def test_people_type_numbers_in_many_ways(text):
    verdict = number.validate(text)
    assert verdict.valid and verdict.digits == "123456789018" and verdict.masked == "********9018"


@pytest.mark.parametrize("text,reason", [("12345678901", "length"), ("1234567890188", "length"),
                                         ("12345678901X", "characters"), ("123456789010", "check digit")])
def test_invalid_numbers_say_why(text, reason):
    verdict = number.validate(text)
    assert not verdict.valid and verdict.reason == reason
    assert text not in verdict.detail and "12345678901" not in verdict.detail


def _base_with_remainder(r: int, rng: random.Random) -> str:
    while True:
        base = "".join(rng.choice("0123456789") for _ in range(11))
        if number.remainder_of(base) == r:
            return base


@pytest.mark.parametrize("r", [0, 1])
def test_remainder_zero_and_one_both_give_check_digit_zero(r):
    rng = random.Random(r)
    for _ in range(20):
        base = _base_with_remainder(r, rng)
        assert number.check_digit(base) == 0
        assert number.is_valid_digits(base + "0")
        assert not any(number.is_valid_digits(base + str(d)) for d in range(1, 10))


def test_remainders_two_to_ten():
    rng = random.Random(7)
    for r in range(2, 11):
        base = _base_with_remainder(r, rng)
        assert number.check_digit(base) == 11 - r


def test_vectors_from_other_projects():
    path = shared("checkdigits", "checkdigit_vectors.csv")
    rows = [r for r in csv.DictReader(path.open(encoding="utf-8")) if r["kind"] == "mynumber"]
    assert rows
    for row in rows:
        verdict = number.validate(row["input"])
        if row["reference_check"]:
            assert verdict.valid == (row["reference_check"] == "True"), row
        else:
            assert not verdict.valid, row


def test_agrees_with_python_stdnum_on_random_numbers():
    stdnum_in = pytest.importorskip("stdnum.jp.in_")
    rng = random.Random(2026)
    for _ in range(20000):
        candidate = "".join(rng.choice("0123456789") for _ in range(12))
        assert number.is_valid_digits(candidate) == stdnum_in.is_valid(candidate), candidate


def test_check_command_masks_numbers_and_sets_exit_code(cli):
    code, out, err = cli("check", "123456789018", "1234-5678-9018")
    assert code == 0 and out.count("valid") == 2 and "12345678" not in out
    code, out, err = cli("check", "123456789018", "123456789010", "12ab")
    assert code == 3
    assert "123456789010" not in out + err and "12345678901" not in out + err
    assert "check digit" in out and "characters" in out
