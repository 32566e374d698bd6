"""Each MallornError subtype, raised by a real failure; a failed call leaves no output behind."""

from __future__ import annotations

import os
import struct

import pytest

import mallorn
from conftest import reseal, sha256


@pytest.fixture
def made(tflite_pair, tmp_path):
    old, new = tflite_pair
    patch = tmp_path / "update.tflp"
    mallorn.create_patch(old, new, patch, target_version=5)
    return old, new, patch


def assert_nothing_written(tmp_path, before):
    assert sorted(os.listdir(tmp_path)) == before, "a failed call left files behind"


def test_hierarchy_and_codes():
    subtypes = [mallorn.InvalidPatch, mallorn.SourceHashMismatch, mallorn.TargetHashMismatch, mallorn.SignatureError,
                mallorn.IoError, mallorn.UnsupportedVersion, mallorn.MalformedModel, mallorn.InvalidArgument,
                mallorn.DowngradeRefused]
    assert [cls.code_num for cls in subtypes] == list(range(1, 10))
    for cls in subtypes:
        assert issubclass(cls, mallorn.MallornError)
        assert cls.code == cls.__name__
    assert issubclass(mallorn.IoError, OSError) and issubclass(mallorn.InvalidArgument, ValueError)
    # the same names and numbers as the C++ core's errc (what the CLI prints in --json)
    from mallorn import _mallorn

    assert _mallorn.error_names() == {cls.code_num: cls.code for cls in subtypes}


def test_source_hash_mismatch(made, tmp_path):
    old, new, patch = made
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(mallorn.SourceHashMismatch) as e:
        mallorn.apply_patch(new, patch, tmp_path / "out")
    assert e.value.verification.source_valid is False and e.value.verification.actual_target is None
    assert "SourceHashMismatch" in e.value.verification.error
    assert_nothing_written(tmp_path, before)
    # same size, different bytes: the hash, not the size, catches it
    same_size = bytearray(old.read_bytes())
    same_size[len(same_size) // 2] ^= 0xFF
    with pytest.raises(mallorn.SourceHashMismatch):
        mallorn.apply_patch(bytes(same_size), patch, tmp_path / "out")
    assert_nothing_written(tmp_path, before)


def test_target_hash_mismatch(made, tmp_path):
    old, new, patch = made
    # a well-formed header promising another target: the body decodes, the result does not match
    data = patch.read_bytes()
    at = data.index(sha256(new))  # the target hash, wherever the header version puts it
    lying = reseal(data, lambda h: h.__setitem__(at, h[at] ^ 1))
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(mallorn.TargetHashMismatch) as e:
        mallorn.apply_patch(old, lying, tmp_path / "out")
    v = e.value.verification
    assert v.source_valid is True and v.patch_valid is False and v.actual_target != v.expected_target
    assert_nothing_written(tmp_path, before)
    assert mallorn.verify_patch(old, lying).error.startswith("TargetHashMismatch:")


def test_invalid_patch(made, tmp_path):
    old, new, patch = made
    data = patch.read_bytes()
    with pytest.raises(mallorn.InvalidPatch):
        mallorn.patch_info(b"not a patch at all")
    with pytest.raises(mallorn.InvalidPatch):
        mallorn.patch_info(data[:100])
    broken_body = bytearray(data)
    broken_body[-10] ^= 0x55
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(mallorn.InvalidPatch) as e:
        mallorn.apply_patch(old, bytes(broken_body), tmp_path / "out")
    assert e.value.verification.patch_valid is False
    with pytest.raises(mallorn.InvalidPatch):
        mallorn.sign_patch(bytes(broken_body), mallorn.generate_keypair()[1], tmp_path / "signed")
    assert_nothing_written(tmp_path, before)
    garbage = mallorn.verify_patch(old, b"MLRN" + bytes(300))
    assert garbage.patch_valid is False and garbage.expected_target == b"" and not garbage.is_valid()


def test_signature_error(made, tmp_path):
    old, new, patch = made
    public_key, private_key = mallorn.generate_keypair()
    other_public, _ = mallorn.generate_keypair()
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(mallorn.SignatureError):  # unsigned patch, key required
        mallorn.apply_patch(old, patch, tmp_path / "out", public_key=public_key)
    mallorn.sign_patch(patch, private_key, tmp_path / "signed")
    before.append("signed")
    with pytest.raises(mallorn.SignatureError) as e:  # signed by someone else
        mallorn.apply_patch(old, tmp_path / "signed", tmp_path / "out", public_key=other_public)
    assert e.value.verification.signature_valid is False and e.value.verification.source_valid is None
    with pytest.raises(mallorn.SignatureError):
        mallorn.create_patch(old, new, tmp_path / "x", private_key=b"short")
    with pytest.raises(mallorn.SignatureError):  # second half is not the seed's public key
        mallorn.sign_patch(patch, private_key[:32] + other_public, tmp_path / "x")
    with pytest.raises(mallorn.SignatureError):
        mallorn.verify_patch(old, patch, public_key=b"\x00" * 31)
    assert_nothing_written(tmp_path, sorted(before))
    assert mallorn.verify_patch(old, tmp_path / "signed", other_public).signature_valid is False


def test_io_error(made, tmp_path):
    old, new, patch = made
    missing = tmp_path / "missing.tflite"
    for call in (
        lambda: mallorn.create_patch(missing, new, tmp_path / "p2"),
        lambda: mallorn.apply_patch(missing, patch, tmp_path / "out"),
        lambda: mallorn.apply_patch(old, patch, tmp_path / "no-such-dir" / "out"),
        lambda: mallorn.verify_patch(old, missing),
        lambda: mallorn.patch_info(missing),
        lambda: mallorn.sign_patch(missing, mallorn.generate_keypair()[1], tmp_path / "s"),
        lambda: mallorn.fingerprint(missing),
        lambda: mallorn.compare_fingerprints(old, missing),
    ):
        with pytest.raises(mallorn.IoError):
            call()
    with pytest.raises(OSError):
        mallorn.fingerprint(missing)
    assert not (tmp_path / "p2").exists() and not (tmp_path / "out").exists()


def test_unsupported_version(made, tmp_path):
    old, new, patch = made
    future = reseal(patch.read_bytes(), lambda h: h.__setitem__(4, 0x7F))  # no such container version
    with pytest.raises(mallorn.UnsupportedVersion):
        mallorn.patch_info(future)
    with pytest.raises(mallorn.UnsupportedVersion):
        mallorn.apply_patch(old, future, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_malformed_model(tflite_pair, tmp_path):
    """The differ never fails on a model it cannot parse: it falls back to a binary delta of the
    raw bytes (formats/src/model_layout.cpp, parse_model non-strict). So no public function
    raises MalformedModel today; the code still maps to its subtype."""
    old, new = tflite_pair
    broken = bytearray(new.read_bytes()[:4096])  # TFLite magic, root table far outside the file
    struct.pack_into("<I", broken, 0, 0x7FFFFFF0)
    stats = mallorn.create_patch(old, bytes(broken), tmp_path / "p")
    assert stats.format == "raw"
    mallorn.apply_patch(old, tmp_path / "p", tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == bytes(broken)
    from mallorn._errors import error_from_code

    err = error_from_code(7, "tflite: bad root offset")
    assert type(err) is mallorn.MalformedModel and err.message == "tflite: bad root offset"


def test_invalid_argument(tflite_pair, tmp_path):
    old, new = tflite_pair
    for level in (0, 23, -1):
        with pytest.raises(mallorn.InvalidArgument):
            mallorn.create_patch(old, new, tmp_path / "p", compression_level=level)
    with pytest.raises(ValueError):
        mallorn.create_patch(old, new, tmp_path / "p", target_version=-1)
    assert not (tmp_path / "p").exists()


def test_downgrade_refused(made, tmp_path):
    old, new, patch = made  # target_version 5
    mallorn.apply_patch(old, patch, tmp_path / "ok", min_version=5)
    with pytest.raises(mallorn.DowngradeRefused) as e:
        mallorn.apply_patch(old, patch, tmp_path / "out", min_version=6)
    assert e.value.verification.target_version == 5 and e.value.verification.source_valid is None
    assert not (tmp_path / "out").exists()
    assert mallorn.verify_patch(old, patch, min_version=6).error.startswith("DowngradeRefused:")


def test_the_seeds_error_handling_example(made, tmp_path, monkeypatch, capsys):
    old, new, patch = made
    monkeypatch.chdir(tmp_path)
    os.symlink(new, "wrong_model.tflite")
    os.symlink(patch, "patch.tflp")
    # --- seed: Error Handling ---
    import mallorn
    from mallorn import MallornError

    try:
        mallorn.apply_patch("wrong_model.tflite", "patch.tflp", "output.tflite")
    except MallornError as e:
        print(f"Patch failed: {e}")
    # ---
    assert capsys.readouterr().out.startswith("Patch failed: old model is ")
    assert not os.path.exists("output.tflite")
