"""The seed's result dataclasses: Fingerprint, PatchStats, PatchVerification, PatchInfo.

Fields beyond the seed's come after its fields and have defaults, so the seed's field order holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Fingerprint:
    """Model fingerprint for quick version detection (constant time in file size)."""

    format: str  # model format: "tflite", "gguf", "onnx", "safetensors" or "raw"
    file_size: int  # bytes
    header_hash: str  # MD5 of the first 64 KiB (hex)
    tail_hash: str  # MD5 of the last 4 KiB (hex)
    combined_hash: str  # header_hash XOR tail_hash (hex)

    def short(self) -> str:
        """The first 16 hex characters of the combined hash (what mallornd accepts as short_id)."""
        return self.combined_hash[:16]

    def matches(self, other: Fingerprint) -> bool:
        """True when both name the same model version: combined hashes and sizes agree."""
        return self.file_size == other.file_size and self.combined_hash == other.combined_hash


@dataclass(frozen=True)
class PatchStats:
    """Statistics from patch creation."""

    source_size: int  # original model size in bytes
    target_size: int  # updated model size in bytes
    patch_size: int  # patch file size in bytes
    compression_ratio: float  # target_size / patch_size
    tensors_modified: int  # changed tensors
    tensors_unchanged: int  # tensors copied from the original
    format: str = "raw"  # "TFLite", "GGUF", "ONNX", "safetensors" or "raw"
    tensors_added: int = 0
    tensors_removed: int = 0


@dataclass(frozen=True)
class PatchVerification:
    """Result of verify_patch or apply_patch.

    Each check is True (passed), False (failed) or None (not reached: an earlier check failed, or,
    for the signature, no public key was given — a signed patch is not "valid" merely because it
    carries a signature). None is falsy, so ``if result.source_valid:`` reads as expected.
    """

    source_valid: Optional[bool]  # the source's SHA-256 matches the patch header
    patch_valid: Optional[bool]  # header, body and produced target are intact
    signature_valid: Optional[bool]  # signature checked against public_key
    expected_target: bytes  # SHA-256 the header promises (32 bytes; empty if no header was readable)
    actual_target: Optional[bytes]  # SHA-256 of what the patch produced (None if not reached)
    error: Optional[str] = None  # "Code: message" of the first failed check, None when valid
    signed: bool = False  # the patch carries a signature
    target_version: int = 0

    def is_valid(self) -> bool:
        """True if all checks passed (the signature too, when one was checked)."""
        return (
            self.error is None
            and self.source_valid is True
            and self.patch_valid is True
            and self.signature_valid is not False
            and self.actual_target == self.expected_target
        )


@dataclass(frozen=True)
class TensorStat:
    """How one target tensor was encoded (unchanged tensors are only counted)."""

    name: str
    encoding: str  # copy, xor_delta, sub_delta, cast_delta, ref_delta, literal, generic
    target_bytes: int
    patch_bytes: int


@dataclass(frozen=True)
class PatchInfo:
    """Information about a patch file, from its header alone."""

    format: str  # "TFLite", "GGUF", "ONNX", "safetensors" or "raw"
    version: int  # patch container version
    source_hash: bytes  # SHA-256 of the source model
    target_hash: bytes  # SHA-256 of the target model
    patch_size: int  # patch size in bytes
    compression: str  # "zstd", "lzss" or "none"
    neural: bool  # neural (byte-planed) encodings were tried
    tensors_modified: int
    tensors_unchanged: int
    signed: bool  # carries an Ed25519 signature
    created_at: Optional[int]  # unix seconds; None when unknown
    source_size: int = 0
    target_size: int = 0
    target_version: int = 0
    level: int = 0  # zstd level
    profile: str = "standard"  # "standard" or "mcu"
    tensors_added: int = 0
    tensors_removed: int = 0
    tensors: tuple[TensorStat, ...] = field(default_factory=tuple)
