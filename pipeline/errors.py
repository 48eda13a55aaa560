"""One exception hierarchy for the whole product.

Every class carries the process exit code the CLI returns for it (sysexits.h values where one fits), so a
shell script driving `mynumber` can tell "your input is bad" from "a program is missing" from "not allowed".
Messages are for people: they name the file, line, page or object, and never contain a My Number.
"""
from __future__ import annotations


class MyNumberError(Exception):
    """Base of every error the product raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class UsageError(MyNumberError):
    """The command line itself is wrong."""
    exit_code = 2


class InvalidNumber(MyNumberError):
    """A My Number failed validation (at least one of several given)."""
    exit_code = 3


class InputError(MyNumberError):
    """A file the user gave us is malformed (EX_DATAERR)."""
    exit_code = 65


class RosterError(InputError):
    """A roster CSV is malformed; the message names line and column. Nothing of the file was imported."""


class LayoutError(InputError):
    """A layout or template file in kits/ is inconsistent."""


class ScanInputError(InputError):
    """A scan file or page cannot be processed; names the file (and page)."""


class TagError(InputError):
    """A QR tag on a page is not ours, forged, or for another layout version."""


class NotFound(MyNumberError):
    """A kit, person, document or file named on the command line does not exist (EX_NOINPUT)."""
    exit_code = 66


class ExternalProgramError(MyNumberError):
    """An external program (tesseract) is missing or failed (EX_UNAVAILABLE)."""
    exit_code = 69


class StateError(MyNumberError):
    """A state transition that is not allowed (receiving twice, disposing of what was never received)."""
    exit_code = 70


class ConfigError(MyNumberError):
    """Configuration or data home is missing or inconsistent (EX_CONFIG)."""
    exit_code = 78


class PermissionDenied(MyNumberError):
    """The acting user's role does not allow this action (EX_NOPERM). The refusal is logged."""
    exit_code = 77


class IntegrityError(MyNumberError):
    """The audit log or stored data failed verification."""
    exit_code = 4
