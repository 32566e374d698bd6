# Types of the extension module (python/src/py_module.cpp). Private: use the `mallorn` package.
from typing import Any, Optional, Union

def create_patch(
    source: Union[str, bytes],
    target: Union[str, bytes],
    output: str,
    level: int,
    neural: bool,
    private_key: Optional[bytes],
    target_version: int,
    tensor_aware: bool,
    created_at: int,
) -> dict[str, Any]: ...
def apply_patch(
    source: Union[str, bytes],
    patch: Union[str, bytes],
    output: Optional[str],
    public_key: Optional[bytes],
    min_target_version: Optional[int],
) -> dict[str, Any]: ...
def patch_info(patch: Union[str, bytes]) -> dict[str, Any]: ...
def sign_patch(patch: Union[str, bytes], private_key: bytes, output: str) -> int: ...
def fingerprint(model: str) -> dict[str, Any]: ...
def generate_keypair() -> tuple[bytes, bytes]: ...
def error_names() -> dict[int, str]: ...
