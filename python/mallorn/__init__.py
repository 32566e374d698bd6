"""Mallorn: small, signed delta patches for ML model files (TFLite, GGUF, ONNX, safetensors).

The Python API over the C++ patch engine; patches made here apply with the `mallorn` CLI, the
agent and the server, and the other way round. See docs/python.md.
"""

from ._api import (
    apply_patch,
    compare_fingerprints,
    create_patch,
    fingerprint,
    generate_keypair,
    patch_info,
    sign_patch,
    verify_patch,
)
from ._errors import (
    DowngradeRefused,
    InvalidArgument,
    InvalidPatch,
    IoError,
    MalformedModel,
    MallornError,
    SignatureError,
    SourceHashMismatch,
    TargetHashMismatch,
    UnsupportedVersion,
)
from ._types import Fingerprint, PatchInfo, PatchStats, PatchVerification, TensorStat

__version__ = "0.1.0"

# Public types print as mallorn.X (tracebacks, reprs), and pickle by their public name.
for _name in ("MallornError", "InvalidPatch", "SourceHashMismatch", "TargetHashMismatch", "SignatureError",
              "IoError", "UnsupportedVersion", "MalformedModel", "InvalidArgument", "DowngradeRefused",
              "Fingerprint", "PatchStats", "PatchVerification", "PatchInfo", "TensorStat"):
    globals()[_name].__module__ = __name__
del _name

__all__ = [
    "DowngradeRefused",
    "Fingerprint",
    "InvalidArgument",
    "InvalidPatch",
    "IoError",
    "MalformedModel",
    "MallornError",
    "PatchInfo",
    "PatchStats",
    "PatchVerification",
    "SignatureError",
    "SourceHashMismatch",
    "TargetHashMismatch",
    "TensorStat",
    "UnsupportedVersion",
    "apply_patch",
    "compare_fingerprints",
    "create_patch",
    "fingerprint",
    "generate_keypair",
    "patch_info",
    "sign_patch",
    "verify_patch",
]
