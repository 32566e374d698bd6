"""Every public function on real model pairs, with str, pathlib.Path and bytes inputs."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import pytest

import mallorn
from conftest import GGUF_PAIR, MODELS, SAFETENSORS_PAIR, pair_files, sha256


@pytest.mark.parametrize("as_type", ["str", "path", "bytes"])
def test_create_then_apply_round_trips(tflite_pair, tmp_path, as_type):
    old, new = tflite_pair
    convert = {"str": str, "path": Path, "bytes": Path.read_bytes}[as_type]
    patch = tmp_path / "update.tflp"
    stats = mallorn.create_patch(convert(old), convert(new), patch if as_type == "path" else str(patch))
    assert isinstance(stats, mallorn.PatchStats)
    assert stats.source_size == old.stat().st_size and stats.target_size == new.stat().st_size
    assert stats.patch_size == patch.stat().st_size
    assert stats.compression_ratio == pytest.approx(stats.target_size / stats.patch_size)
    assert stats.format == "TFLite" and stats.tensors_unchanged > 0
    assert stats.patch_size < stats.target_size / 10

    out = tmp_path / "restored.tflite"
    patch_arg = patch.read_bytes() if as_type == "bytes" else convert(patch)
    result = mallorn.apply_patch(convert(old), patch_arg, out)
    assert result.is_valid() and result.error is None
    assert out.read_bytes() == new.read_bytes()
    assert result.expected_target == result.actual_target == sha256(new)
    assert (result.source_valid, result.patch_valid, result.signature_valid) == (True, True, None)


@pytest.mark.parametrize("pair", [GGUF_PAIR, SAFETENSORS_PAIR], ids=["gguf", "safetensors"])
def test_other_formats_round_trip(pair, tmp_path):
    old, new = pair_files(pair)
    stats = mallorn.create_patch(old, new, tmp_path / "p", compression_level=9, neural=True)
    assert stats.patch_size == (tmp_path / "p").stat().st_size
    info = mallorn.patch_info(tmp_path / "p")
    assert info.neural and info.level == 9 and info.format in ("GGUF", "safetensors")
    mallorn.apply_patch(old, tmp_path / "p", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == new.read_bytes()


def test_compression_level_and_generic_mode_change_the_patch(tflite_pair, tmp_path):
    old, new = tflite_pair
    fast = mallorn.create_patch(old, new, tmp_path / "1", compression_level=1)
    generic = mallorn.create_patch(old, new, tmp_path / "g", tensor_aware=False)
    assert mallorn.patch_info(tmp_path / "1").level == 1
    assert generic.tensors_unchanged == 0 and fast.tensors_unchanged > 0
    for p in ("1", "g"):
        mallorn.apply_patch(old, tmp_path / p, tmp_path / f"{p}.out")
        assert (tmp_path / f"{p}.out").read_bytes() == new.read_bytes()


def test_patch_info_reads_the_header(tflite_pair, tmp_path):
    old, new = tflite_pair
    patch = tmp_path / "p"
    mallorn.create_patch(old, new, patch, target_version=7)
    for arg in (patch, str(patch), patch.read_bytes()):
        info = mallorn.patch_info(arg)
        assert info.format == "TFLite" and info.version == 2 and info.compression == "zstd"
        assert info.source_hash == sha256(old) and info.target_hash == sha256(new)
        assert info.patch_size == patch.stat().st_size
        assert info.target_version == 7 and not info.signed and not info.neural
        assert info.source_size == old.stat().st_size and info.target_size == new.stat().st_size
        assert info.created_at is None  # the compact header stores a creation time only when given one
        assert info.tensors_modified + info.tensors_unchanged + info.tensors_added > 0
        assert all(isinstance(t, mallorn.TensorStat) for t in info.tensors)


def test_created_at_is_recorded(tflite_pair, tmp_path):
    old, new = tflite_pair
    mallorn.create_patch(old, new, tmp_path / "p", created_at=1_700_000_000)
    assert mallorn.patch_info(tmp_path / "p").created_at == 1_700_000_000


def test_verify_patch_writes_nothing_and_reports(tflite_pair, tmp_path):
    old, new = tflite_pair
    mallorn.create_patch(old, new, tmp_path / "p")
    listing = sorted(os.listdir(tmp_path))
    ok = mallorn.verify_patch(old, tmp_path / "p")
    assert ok.is_valid() and ok.actual_target == sha256(new)
    assert sorted(os.listdir(tmp_path)) == listing
    wrong = mallorn.verify_patch(new, (tmp_path / "p").read_bytes())
    assert not wrong.is_valid() and wrong.source_valid is False and wrong.actual_target is None
    assert wrong.error.startswith("SourceHashMismatch:")
    assert wrong.expected_target == sha256(new)


def test_keys_sign_and_verify(tflite_pair, tmp_path):
    old, new = tflite_pair
    public_key, private_key = mallorn.generate_keypair()
    assert len(public_key) == 32 and len(private_key) == 64 and private_key[32:] == public_key
    assert mallorn.generate_keypair()[0] != public_key
    mallorn.create_patch(old, new, tmp_path / "signed", private_key=private_key)
    assert mallorn.patch_info(tmp_path / "signed").signed
    result = mallorn.apply_patch(old, tmp_path / "signed", tmp_path / "out", public_key=public_key)
    assert result.signature_valid is True and result.signed and result.is_valid()

    mallorn.create_patch(old, new, tmp_path / "plain")
    mallorn.sign_patch(tmp_path / "plain", private_key, tmp_path / "later")
    assert mallorn.patch_info(tmp_path / "later").signed
    # the body is unchanged: only the header grows by the signature (and, in the compact header,
    # possibly by one byte of its own size varint)
    plain, later = (tmp_path / "plain").read_bytes(), (tmp_path / "later").read_bytes()
    assert len(plain) + 64 <= len(later) <= len(plain) + 65 and later.endswith(plain[-100:])
    assert mallorn.verify_patch(old, later, public_key).signature_valid is True
    # a signed patch checked without a key: nothing about the signature was verified
    assert mallorn.verify_patch(old, later).signature_valid is None


def test_sign_patch_from_bytes_with_32_byte_seed(tflite_pair, tmp_path):
    old, new = tflite_pair
    public_key, private_key = mallorn.generate_keypair()
    mallorn.create_patch(old, new, tmp_path / "p")
    mallorn.sign_patch((tmp_path / "p").read_bytes(), private_key[:32], str(tmp_path / "s"))
    assert mallorn.verify_patch(old, tmp_path / "s", public_key).is_valid()


def test_fingerprint_matches_its_definition(tflite_pair):
    old, new = tflite_pair
    data = old.read_bytes()
    fp = mallorn.fingerprint(old)
    head = hashlib.md5(data[:65536]).hexdigest()
    tail = hashlib.md5(data[-4096:]).hexdigest()
    combined = f"{int(head, 16) ^ int(tail, 16):032x}"
    assert fp == mallorn.Fingerprint("tflite", len(data), head, tail, combined)
    assert fp.short() == combined[:16]
    assert fp.matches(mallorn.fingerprint(str(old)))
    assert not fp.matches(mallorn.fingerprint(new))
    assert mallorn.fingerprint(MODELS / "singles" / "superpoint.gguf").format == "gguf"


def test_compare_fingerprints(tflite_pair, tmp_path):
    old, new = tflite_pair
    (tmp_path / "copy").write_bytes(old.read_bytes())
    assert mallorn.compare_fingerprints(str(old), str(tmp_path / "copy"))
    assert not mallorn.compare_fingerprints(old, new)


def test_dataclasses_have_the_seeds_fields_first():
    seed = {
        mallorn.Fingerprint: ["format", "file_size", "header_hash", "tail_hash", "combined_hash"],
        mallorn.PatchStats: ["source_size", "target_size", "patch_size", "compression_ratio", "tensors_modified",
                             "tensors_unchanged"],
        mallorn.PatchVerification: ["source_valid", "patch_valid", "signature_valid", "expected_target",
                                    "actual_target"],
        mallorn.PatchInfo: ["format", "version", "source_hash", "target_hash", "patch_size", "compression", "neural",
                            "tensors_modified", "tensors_unchanged", "signed", "created_at"],
    }
    for cls, fields in seed.items():
        assert dataclasses.is_dataclass(cls)
        assert [f.name for f in dataclasses.fields(cls)][: len(fields)] == fields
        assert cls.__module__ == "mallorn"


def test_bytearray_and_memoryview_inputs(tflite_pair, tmp_path):
    old, new = tflite_pair
    mallorn.create_patch(bytearray(old.read_bytes()), memoryview(new.read_bytes()), tmp_path / "p")
    mallorn.apply_patch(memoryview(old.read_bytes()), bytearray((tmp_path / "p").read_bytes()), tmp_path / "o")
    assert (tmp_path / "o").read_bytes() == new.read_bytes()


def test_wrong_argument_types_raise_type_error(tflite_pair, tmp_path):
    old, new = tflite_pair
    with pytest.raises(TypeError):
        mallorn.create_patch(old, new, 42)
    with pytest.raises(TypeError):
        mallorn.create_patch(old, new, tmp_path / "p", compression_level="9")
    with pytest.raises(TypeError):
        mallorn.apply_patch(old, None, tmp_path / "o")
    with pytest.raises(TypeError):
        mallorn.sign_patch(old, "not bytes", tmp_path / "o")
    with pytest.raises(TypeError):
        mallorn.fingerprint(old.read_bytes())
    assert not (tmp_path / "p").exists() and not (tmp_path / "o").exists()


def test_package_is_typed():
    package = Path(mallorn.__file__).parent
    assert (package / "py.typed").is_file() and (package / "_mallorn.pyi").is_file()


def test_stub_matches_the_extension():
    """_mallorn.pyi declares exactly the extension's functions, with its parameter names."""
    import ast
    import re

    from mallorn import _mallorn

    stub = ast.parse((Path(mallorn.__file__).parent / "_mallorn.pyi").read_text())
    declared = {f.name: [a.arg for a in f.args.args] for f in stub.body if isinstance(f, ast.FunctionDef)}
    actual = {}
    for name in dir(_mallorn):
        fn = getattr(_mallorn, name)
        if callable(fn) and not name.startswith("_"):
            params = re.match(rf"{name}\((.*?)\) ->", fn.__doc__.strip()).group(1)
            actual[name] = [p.split(":")[0].strip() for p in params.split(",") if p.strip()]
    assert declared == actual
