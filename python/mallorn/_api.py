"""The seed's functions over the C++ engine (mallorn._mallorn).

Inputs: a model or patch is a path (str or os.PathLike) or its content as bytes-like; outputs are
paths and are written atomically (nothing appears at the path when the call fails). The work runs
with the GIL released, so threads calling these run in parallel.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import _mallorn
from ._errors import InvalidArgument, error_from_code
from ._types import Fingerprint, PatchInfo, PatchStats, PatchVerification, TensorStat

PathLike = Union[str, "os.PathLike[str]"]
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

_ERROR_NAMES: dict[int, str] = _mallorn.error_names()
_INVALID_PATCH, _SOURCE_MISMATCH, _SIGNATURE_ERROR, _IO_ERROR, _INVALID_ARGUMENT = 1, 2, 4, 5, 8
_PATCH_BROKEN = {1, 3, 6}  # InvalidPatch, TargetHashMismatch, UnsupportedVersion
_PAST_SOURCE = {None, 1, 3}  # with a readable header, these fail only after the source matched


def _input(value: Any, what: str) -> Union[str, bytes]:
    """bytes stay content; bytearray/memoryview are copied (they could change under a released GIL)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return _path(value, what)


def _path(value: Any, what: str) -> str:
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise TypeError(f"{what} must be a path (str or os.PathLike[str]), got {type(value).__name__}")


def _key(value: Any, what: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be bytes (read the key file in binary mode), got {type(value).__name__}")


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidArgument(f"{what} must be {low}..{high}, got {value}")
    return value


_U64_MAX = 2**64 - 1


def create_patch(
    source: Source,
    target: Source,
    output: PathLike,
    compression_level: int = 3,
    neural: bool = False,
    private_key: Optional[bytes] = None,
    *,
    target_version: int = 0,
    tensor_aware: bool = True,
    created_at: int = 0,
) -> PatchStats:
    """Create a delta patch between two model versions and write it to ``output``.

    compression_level is the zstd level (1..22; 9 and up also try bsdiff-style matching of
    metadata). neural also tries byte-planed encodings of weights. private_key (64 bytes, seed +
    public key, or a 32-byte seed) signs the patch. target_version is recorded for downgrade
    protection; tensor_aware=False makes a plain binary delta; created_at (unix seconds) is
    recorded in the header only when not 0.
    """
    stats = _mallorn.create_patch(
        _input(source, "source"),
        _input(target, "target"),
        _path(output, "output"),
        _int(compression_level, "compression_level", 1, 22),
        bool(neural),
        _key(private_key, "private_key"),
        _int(target_version, "target_version", 0, _U64_MAX),
        bool(tensor_aware),
        _int(created_at, "created_at", 0, _U64_MAX),
    )
    return PatchStats(**stats)


def _verification(outcome: dict[str, Any], checked_signature: bool) -> PatchVerification:
    """What a run established: True/False for checks that were reached, None for the rest.

    The applier checks in this order: header, signature, version, source hash, body, target hash.
    """
    header = outcome["header"]
    error = outcome["error"]
    code = error[0] if error else None
    if header is None:
        code = code or _INVALID_PATCH
    reached_signature = header is not None
    return PatchVerification(
        source_valid=False if code == _SOURCE_MISMATCH else True if header and code in _PAST_SOURCE else None,
        patch_valid=True if code is None else False if code in _PATCH_BROKEN else None,
        signature_valid=(code != _SIGNATURE_ERROR) if checked_signature and reached_signature else None,
        expected_target=header["target_hash"] if header else b"",
        actual_target=outcome["actual_target"],
        error=_error_text((code, error[1] if error else "no readable header")) if code else None,
        signed=header["signed"] if header else False,
        target_version=header["target_version"] if header else 0,
    )


def _error_text(error: tuple[int, str]) -> str:
    return f"{_ERROR_NAMES.get(error[0], 'MallornError')}: {error[1]}"


def _run(source: Source, patch: Source, output: Optional[PathLike], public_key: Optional[bytes],
         min_version: Optional[int]) -> tuple[dict[str, Any], PatchVerification]:
    key = _key(public_key, "public_key")
    outcome = _mallorn.apply_patch(
        _input(source, "source"),
        _input(patch, "patch"),
        None if output is None else _path(output, "output"),
        key,
        None if min_version is None else _int(min_version, "min_version", 0, _U64_MAX),
    )
    return outcome, _verification(outcome, key is not None)


def apply_patch(
    source: Source,
    patch: Source,
    output: PathLike,
    public_key: Optional[bytes] = None,
    *,
    min_version: Optional[int] = None,
) -> PatchVerification:
    """Apply a patch to reconstruct the target model at ``output``.

    ``output`` appears (atomically) only after the model's SHA-256 matched the header. With
    public_key (32 bytes), unsigned or badly signed patches are refused; min_version refuses a
    patch whose target_version is lower (downgrade protection). Raises the MallornError subtype
    of the first failed check, with ``.verification`` telling what was established.
    """
    outcome, verification = _run(source, patch, output, public_key, min_version)
    if outcome["error"]:
        exc = error_from_code(*outcome["error"])
        exc.verification = verification
        raise exc
    return verification


def verify_patch(
    source: Source,
    patch: Source,
    public_key: Optional[bytes] = None,
    *,
    min_version: Optional[int] = None,
) -> PatchVerification:
    """Verify a patch without writing anything: applies it into a hash.

    A failed check is reported in the result (is_valid() False, ``error`` set), not raised; only
    unreadable inputs (IoError) and unusable arguments raise.
    """
    outcome, verification = _run(source, patch, None, public_key, min_version)
    if outcome["error"] and outcome["error"][0] in (_IO_ERROR, _INVALID_ARGUMENT):
        raise error_from_code(*outcome["error"])
    return verification


def patch_info(patch: Source) -> PatchInfo:
    """Information about a patch, from its header (the body is not read)."""
    h = _mallorn.patch_info(_input(patch, "patch"))
    tensors = tuple(TensorStat(*t) for t in h.pop("tensors"))
    h.pop("body_size")
    created_at = h.pop("created_at") or None
    return PatchInfo(**h, created_at=created_at, tensors=tensors)


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair: (public_key 32 bytes, private_key 64 bytes = seed + public key)."""
    public_key, private_key = _mallorn.generate_keypair()
    return public_key, private_key


def sign_patch(patch: Source, private_key: bytes, output: PathLike) -> None:
    """Sign (or re-sign) an existing patch and write it to ``output``; the body is unchanged.

    A patch whose body does not match its header is refused (InvalidPatch), never signed.
    """
    key = _key(private_key, "private_key")
    if key is None:
        raise TypeError("private_key must be bytes, got None")
    _mallorn.sign_patch(_input(patch, "patch"), key, _path(output, "output"))


def fingerprint(model_path: PathLike) -> Fingerprint:
    """Fingerprint a model file: size and MD5 of its first 64 KiB and last 4 KiB."""
    return Fingerprint(**_mallorn.fingerprint(_path(model_path, "model_path")))


def compare_fingerprints(model1: PathLike, model2: PathLike) -> bool:
    """True if both files have the same fingerprint (almost certainly the same model version)."""
    return fingerprint(model1).matches(fingerprint(model2))

