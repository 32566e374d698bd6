"""Shared fixtures for the mallorn Python tests: real model pairs, the CLI, tampering helpers.

Environment (set by the ctest entries in tests/python/CMakeLists.txt):
  MALLORN_MODELS_DIR  the shared models (pairs/, singles/); default ../shared/models
  MALLORN_CLI         the mallorn command; default build/bin/mallorn
The package under test is whatever `import mallorn` finds (PYTHONPATH=build/python/package).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("MALLORN_MODELS_DIR", REPO.parent / "shared" / "models"))
CLI = Path(os.environ.get("MALLORN_CLI", REPO / "build" / "bin" / "mallorn"))

# Small real pairs, one per format family.
TFLITE_PAIR = MODELS / "pairs" / "coral-mnv1-025-quant_2020-to-2021a"
GGUF_PAIR = MODELS / "pairs" / "gguf-vocab-bert-bge_0508-to-0517"
SAFETENSORS_PAIR = MODELS / "pairs" / "m2v-test-model_f32-to-f16"


def pair_files(pair: Path) -> tuple[Path, Path]:
    old = next(pair.glob("old.*"))
    return old, pair / f"new{old.suffix}"


@pytest.fixture(scope="session")
def tflite_pair() -> tuple[Path, Path]:
    if not TFLITE_PAIR.is_dir():
        pytest.fail(f"real models missing: {TFLITE_PAIR} (set MALLORN_MODELS_DIR)")
    return pair_files(TFLITE_PAIR)


@pytest.fixture(scope="session")
def cli() -> Path:
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"the mallorn CLI is missing: {CLI} (build the `mallorn` target or set MALLORN_CLI)")
    return CLI


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def link(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)
    return dst


def patch_header_size(data: bytes) -> int:
    """Header size of a version 1 (u32 at offset 8) or version 2 or 3 (varint at offset 5) patch."""
    if data[4] == 1:
        return struct.unpack_from("<I", data, 8)[0]
    size, shift, at = 0, 0, 5
    while True:
        size |= (data[at] & 0x7F) << shift
        shift += 7
        at += 1
        if not data[at - 1] & 0x80:
            return size


def reseal(header_and_body: bytes, edit) -> bytes:
    """Applies edit(bytearray header) to an unsigned patch's header and recomputes its check
    bytes, so the header stays well-formed and only the edited field is wrong."""
    data = bytearray(header_and_body)
    header_size = patch_header_size(data)
    header = bytearray(data[:header_size])
    edit(header)
    header[-4:] = hashlib.sha256(bytes(header[:-4])).digest()[:4]
    return bytes(header) + bytes(data[header_size:])


def sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst
