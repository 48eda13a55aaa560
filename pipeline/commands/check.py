"""`mynumber check NUMBER...`: validate numbers without ever echoing one back whole."""
from __future__ import annotations

from .. import number
from ..errors import InvalidNumber


def register(sub) -> None:
    p = sub.add_parser("check", help="validate My Numbers (check digit); prints masked results")
    p.add_argument("numbers", nargs="+", metavar="NUMBER")
    p.set_defaults(handler=run)


def run(args) -> int:
    invalid = 0
    for text in args.numbers:
        verdict = number.validate(text)
        if verdict.valid:
            print(f"{verdict.masked}: valid")
        else:
            invalid += 1
            print(f"{verdict.masked}: invalid ({verdict.reason}): {verdict.detail}")
    if invalid:
        raise InvalidNumber(f"{invalid} of {len(args.numbers)} numbers are invalid")
    return 0
