"""PEP 517 build backend for the mallorn package: CMake builds mallorn._mallorn, this packs the wheel.

Why not setuptools: only Debian's and npm's registries are reachable here, and setuptools before
70.1 builds wheels only with the separate `wheel` package, which a non-Debian python3 (pyenv, a
venv made from it) does not have. A wheel is a zip with three metadata files, so the backend is
this file and needs nothing but the standard library.

The CMake build directory is MALLORN_PY_BUILD_DIR, or config setting build-dir, or
python/build/<wheel tag>; it is kept, so a second install only relinks what changed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Optional

NAME = "mallorn"
VERSION = "0.1.0"
SUMMARY = "Small, signed delta patches for ML model files (TFLite, GGUF, ONNX, safetensors)"
PROJECT_DIR = Path(__file__).resolve().parent.parent  # python/
PACKAGE_FILES = ("*.py", "*.pyi", "py.typed")


def get_requires_for_build_wheel(config_settings: Optional[dict] = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict] = None) -> list[str]:
    return []


def build_sdist(sdist_directory: str, config_settings: Optional[dict] = None) -> str:
    raise NotImplementedError(
        "mallorn has no sdist: the extension builds from the C++ sources beside python/ in the "
        "repository; install with `pip install --no-build-isolation ./python` from a checkout"
    )


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[dict] = None) -> str:
    dist_info = Path(metadata_directory) / _dist_info()
    dist_info.mkdir(parents=True, exist_ok=True)
    for name, text in _metadata_files().items():
        (dist_info / name).write_text(text)
    return dist_info.name


def build_wheel(wheel_directory: str, config_settings: Optional[dict] = None,
                metadata_directory: Optional[str] = None) -> str:
    extension = _build_extension(_build_dir(config_settings))
    files = [(f"mallorn/{extension.name}", extension, 0o755)]
    for pattern in PACKAGE_FILES:
        for f in sorted((PROJECT_DIR / "mallorn").glob(pattern)):
            files.append((f"mallorn/{f.name}", f, 0o644))
    wheel = Path(wheel_directory) / f"{NAME}-{VERSION}-{_wheel_tag()}.whl"
    _write_wheel(wheel, files)
    return wheel.name


def _dist_info() -> str:
    return f"{NAME}-{VERSION}.dist-info"


def _wheel_tag() -> str:
    """cpXY-cpXY-<platform>: the extension is built for this interpreter's ABI only."""
    if sys.implementation.name != "cpython":
        raise RuntimeError(f"mallorn's extension is built for CPython, not {sys.implementation.name}")
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{python}-{python}-{platform}"


def _metadata_files() -> dict[str, str]:
    return {
        "METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: {SUMMARY}\n"
                    "Requires-Python: >=3.9\n",
        "WHEEL": f"Wheel-Version: 1.0\nGenerator: mallorn_build {VERSION}\nRoot-Is-Purelib: false\n"
                 f"Tag: {_wheel_tag()}\n",
        "top_level.txt": f"{NAME}\n",
    }


def _build_dir(config_settings: Optional[dict]) -> Path:
    chosen = os.environ.get("MALLORN_PY_BUILD_DIR") or (config_settings or {}).get("build-dir")
    return Path(chosen).resolve() if chosen else PROJECT_DIR / "build" / _wheel_tag()


def _build_extension(build_dir: Path) -> Path:
    """Configures python/ standalone (core + formats + the extension) for this interpreter."""
    package_dir = build_dir / "package"
    cmake = os.environ.get("CMAKE", "cmake")
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    # pip hides a build's output unless -v; send it to stderr so failures show what went wrong.
    run = dict(check=True, stdout=sys.stderr)
    subprocess.run([cmake, "-S", str(PROJECT_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
                    f"-DPython3_EXECUTABLE={sys.executable}", f"-DMALLORN_PYTHON_PACKAGE_DIR={package_dir}"], **run)
    subprocess.run([cmake, "--build", str(build_dir), "--target", "mallorn_pyext", "-j", jobs], **run)
    extension = package_dir / "mallorn" / f"_mallorn{sysconfig.get_config_var('EXT_SUFFIX')}"
    if not extension.is_file():
        raise RuntimeError(f"the build did not produce {extension} (built for another Python?)")
    return extension


def _write_wheel(wheel: Path, files: list[tuple[str, Path, int]]) -> None:
    records = []
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:

        def add(arcname: str, data: bytes, mode: int = 0o644) -> None:
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{arcname},sha256={digest},{len(data)}")

        for arcname, path, mode in files:
            add(arcname, path.read_bytes(), mode)
        for name, text in _metadata_files().items():
            add(f"{_dist_info()}/{name}", text.encode())
        records.append(f"{_dist_info()}/RECORD,,")
        record = "\n".join(records) + "\n"
        zf.writestr(zipfile.ZipInfo(f"{_dist_info()}/RECORD", date_time=(1980, 1, 1, 0, 0, 0)), record)
    os.replace(tmp, wheel)
