"""Patches and keys made in Python work with the `mallorn` CLI, and the other way round."""

from __future__ import annotations

import json
import subprocess

import mallorn


def run(cli, *args):
    done = subprocess.run([str(cli), *map(str, args), "--json"], capture_output=True, text=True)
    return done.returncode, json.loads(done.stdout)


def test_python_patch_applies_with_the_cli(cli, tflite_pair, tmp_path):
    old, new = tflite_pair
    public_key, private_key = mallorn.generate_keypair()
    (tmp_path / "k.pub").write_bytes(public_key)
    stats = mallorn.create_patch(old, new, tmp_path / "p", compression_level=9, private_key=private_key,
                                 target_version=3)
    rc, info = run(cli, "info", tmp_path / "p")
    assert rc == 0 and info["signed"] and info["target_version"] == 3 and info["level"] == 9
    assert info["patch_size"] == stats.patch_size and info["tensors_unchanged"] == stats.tensors_unchanged
    py_info = mallorn.patch_info(tmp_path / "p")
    assert info["target_hash"] == py_info.target_hash.hex() and info["format"] == py_info.format
    rc, out = run(cli, "patch", old, tmp_path / "p", "-o", tmp_path / "out", "--pubkey", tmp_path / "k.pub")
    assert rc == 0 and out["signature_valid"] is True
    assert (tmp_path / "out").read_bytes() == new.read_bytes()
    # and the CLI refuses it from the wrong model, with the same error code Python raises
    rc, out = run(cli, "verify", new, tmp_path / "p")
    assert rc == 1 and out["error"]["code"] == mallorn.SourceHashMismatch.code
    assert out["error"]["code_num"] == mallorn.SourceHashMismatch.code_num


def test_cli_patch_and_keys_work_in_python(cli, tflite_pair, tmp_path):
    old, new = tflite_pair
    assert run(cli, "keygen", "-o", tmp_path / "release")[0] == 0
    rc, _ = run(cli, "diff", old, new, "-o", tmp_path / "p", "--sign", tmp_path / "release.key", "--neural")
    assert rc == 0
    public_key = (tmp_path / "release.pub").read_bytes()
    result = mallorn.apply_patch(old, tmp_path / "p", tmp_path / "out", public_key=public_key)
    assert result.is_valid() and result.signature_valid is True
    assert (tmp_path / "out").read_bytes() == new.read_bytes()
    assert mallorn.patch_info(tmp_path / "p").neural

    # Python signs a CLI patch with the CLI's private key file; the CLI checks it
    rc, _ = run(cli, "diff", old, new, "-o", tmp_path / "plain")
    mallorn.sign_patch(tmp_path / "plain", (tmp_path / "release.key").read_bytes(), tmp_path / "signed")
    rc, out = run(cli, "verify", old, tmp_path / "signed", "--pubkey", tmp_path / "release.pub")
    assert rc == 0 and out["signature_valid"] is True and out["actual_target"] == result.actual_target.hex()


def test_fingerprint_agrees_with_the_cli(cli, tflite_pair):
    for model in tflite_pair:
        rc, out = run(cli, "fingerprint", model)
        fp = mallorn.fingerprint(model)
        assert rc == 0
        assert (out["format"], out["file_size"], out["header_hash"], out["tail_hash"], out["combined_hash"],
                out["short_id"]) == (fp.format, fp.file_size, fp.header_hash, fp.tail_hash, fp.combined_hash,
                                     fp.short())
