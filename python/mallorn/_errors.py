"""MallornError and its subtypes, one per stable error code of the C++ core (core/error.hpp)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from ._types import PatchVerification


class MallornError(Exception):
    """Base class of every error the mallorn package raises for a failed operation.

    ``code`` is the seed's name for the error ("SourceHashMismatch", ...), ``code_num`` the stable
    number the CLI prints in --json output, ``message`` the text with context. Errors from
    apply_patch carry ``verification``: what was established before the failure.
    """

    code: str = "MallornError"
    code_num: int = 0

    def __init__(self, message: str, verification: Optional["PatchVerification"] = None) -> None:
        super().__init__(message)
        self.message = message
        self.verification = verification


class InvalidPatch(MallornError):
    """The patch is malformed, truncated, or its body does not match its header."""

    code, code_num = "InvalidPatch", 1


class SourceHashMismatch(MallornError):
    """The model given as source is not the one the patch was made from."""

    code, code_num = "SourceHashMismatch", 2


class TargetHashMismatch(MallornError):
    """Applying the patch did not produce the model its header promised."""

    code, code_num = "TargetHashMismatch", 3


class SignatureError(MallornError):
    """Unsigned patch where a signature was required, a bad signature, or an unusable key."""

    code, code_num = "SignatureError", 4


class IoError(MallornError, OSError):
    """A file could not be read or written (also an OSError)."""

    code, code_num = "IoError", 5


class UnsupportedVersion(MallornError):
    """The patch uses a container version this build does not know."""

    code, code_num = "UnsupportedVersion", 6


class MalformedModel(MallornError):
    """A model file claims a format (TFLite, GGUF, ...) but cannot be parsed as one."""

    code, code_num = "MalformedModel", 7


class InvalidArgument(MallornError, ValueError):
    """An argument is out of range (also a ValueError)."""

    code, code_num = "InvalidArgument", 8


class DowngradeRefused(MallornError):
    """The patch's target version is below the minimum the caller accepts."""

    code, code_num = "DowngradeRefused", 9


ERROR_TYPES: dict[int, type[MallornError]] = {
    cls.code_num: cls
    for cls in (
        InvalidPatch,
        SourceHashMismatch,
        TargetHashMismatch,
        SignatureError,
        IoError,
        UnsupportedVersion,
        MalformedModel,
        InvalidArgument,
        DowngradeRefused,
    )
}


def error_from_code(code_num: int, message: str) -> MallornError:
    """The exception for a core error code (called by the extension module)."""
    return ERROR_TYPES.get(code_num, MallornError)(message)
