"""One family of errors.  The CLI turns each into one line and an exit code.

Every message says what was wrong and what to do about it.
"""

from __future__ import annotations


class FlexSpecError(Exception):
    """Base of all errors FlexSpec raises on purpose (runtime failure: exit code 1)."""

    exit_code = 1


class UsageError(FlexSpecError):
    """The user asked for something that cannot be (bad option, value out of range): exit code 2."""

    exit_code = 2


class InputFileError(UsageError):
    """A user file (YAML, npz, state_dict) is missing, malformed, or has a bad field."""

    def __init__(self, path, message: str, field: str | None = None):
        self.path = str(path)
        self.field = field
        where = f"{self.path}" + (f", field '{field}'" if field else "")
        super().__init__(f"{where}: {message}")


class UnknownNameError(UsageError):
    """A name (model, device, method) that is not known; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known):
        known = sorted(known)
        super().__init__(f"unknown {kind} '{name}'; known: {', '.join(known)}")


class CapacityError(FlexSpecError):
    """A configuration does not fit the on-chip memory or device it was given."""


class DoesNotFitError(CapacityError):
    """A hardware design needs more resources than the device has."""
