"""The examples of the seed's Python API page (shared/seeds/python-api.md), run as written.

Each test works in a fresh directory where the seed's file names (v1.tflite, model.tflite,
llama-7b-q4.gguf, ...) are copies of real models from shared/models; the code between the
`--- seed` markers is the seed's, unchanged. Only TensorFlow calls are left out (no TensorFlow
here): the integration example starts where the seed's mallorn code does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mallorn
from conftest import GGUF_PAIR, MODELS, copy, pair_files, sha256

TFLITE = MODELS / "pairs" / "coral-mnv1-025-quant_2020-to-2021a"


@pytest.fixture
def seed_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old, new = pair_files(TFLITE)
    gold, gnew = pair_files(GGUF_PAIR)
    for name, src in {
        "model_v1.tflite": old, "model_v2.tflite": new, "v1.tflite": old, "v2.tflite": new,
        "v1.gguf": gold, "v2.gguf": gnew, "llama-7b-q4.gguf": gold, "llama-7b-q4-finetuned.gguf": gnew,
        "model.tflite": old, "other_model.tflite": new, "model_a.tflite": old, "model_b.tflite": old,
        "wrong_model.tflite": new,
    }.items():
        copy(src, tmp_path / name)
    return tmp_path


def test_quick_start(seed_dir, capsys):
    # --- seed: Quick Start ---
    import mallorn

    # Create a patch
    stats = mallorn.create_patch(
        "model_v1.tflite",
        "model_v2.tflite",
        "update.tflp"
    )
    print(f"Patch size: {stats.patch_size} bytes ({stats.compression_ratio:.1f}x compression)")

    # Apply a patch
    result = mallorn.apply_patch(
        "model_v1.tflite",
        "update.tflp",
        "model_v2_restored.tflite"
    )
    print(f"Success: {result.is_valid()}")
    # --- end of seed ---
    out = capsys.readouterr().out
    assert f"Patch size: {os.path.getsize('update.tflp')} bytes" in out and "Success: True" in out
    assert Path("model_v2_restored.tflite").read_bytes() == Path("model_v2.tflite").read_bytes()


def test_generate_keypair_then_create_and_apply_examples(seed_dir, capsys):
    # --- seed: generate_keypair ---
    import mallorn

    public_key, private_key = mallorn.generate_keypair()

    # Save keys
    with open("mallorn.pub", "wb") as f:
        f.write(public_key)  # 32 bytes

    with open("mallorn.key", "wb") as f:
        f.write(private_key)  # 64 bytes
    # --- seed: create_patch ---
    # Basic usage
    stats = mallorn.create_patch("v1.tflite", "v2.tflite", "patch.tflp")

    # With options
    stats = mallorn.create_patch(
        "v1.gguf",
        "v2.gguf",
        "patch.ggup",
        compression_level=9,
        neural=True
    )

    # From bytes (useful for in-memory models)
    old_model = open("v1.tflite", "rb").read()
    new_model = open("v2.tflite", "rb").read()
    stats = mallorn.create_patch(old_model, new_model, "patch.tflp")

    # With signing
    private_key = open("mallorn.key", "rb").read()
    stats = mallorn.create_patch(
        "v1.tflite",
        "v2.tflite",
        "patch.tflp",
        private_key=private_key
    )
    # --- seed: apply_patch ---
    # Basic usage
    result = mallorn.apply_patch("v1.tflite", "patch.tflp", "v2.tflite")

    if result.is_valid():
        print("Patch applied successfully!")
    else:
        print(f"Error: {result.error}")

    # With signature verification
    public_key = open("mallorn.pub", "rb").read()
    result = mallorn.apply_patch(
        "v1.tflite",
        "patch.tflp",
        "v2.tflite",
        public_key=public_key
    )

    if not result.signature_valid:
        raise ValueError("Signature verification failed!")
    # --- seed: verify_patch ---
    result = mallorn.verify_patch("v1.tflite", "patch.tflp")

    print(f"Source valid: {result.source_valid}")
    print(f"Patch valid: {result.patch_valid}")
    print(f"Expected target: {result.expected_target.hex()}")
    # --- end of seed ---
    out = capsys.readouterr().out
    assert "Patch applied successfully!" in out
    assert f"Expected target: {sha256(pair_files(TFLITE)[1]).hex()}" in out
    assert "Source valid: True" in out and "Patch valid: True" in out
    assert len(Path("mallorn.pub").read_bytes()) == 32 and len(Path("mallorn.key").read_bytes()) == 64
    assert Path("v2.tflite").read_bytes() == pair_files(TFLITE)[1].read_bytes()
    assert mallorn.patch_info("patch.ggup").neural and mallorn.patch_info("patch.tflp").signed


def make_update_and_key():
    mallorn.create_patch("model_v1.tflite", "model_v2.tflite", "update.tflp")
    Path("mallorn.key").write_bytes(mallorn.generate_keypair()[1])


def test_patch_info_and_sign_patch_examples(seed_dir, capsys):
    make_update_and_key()
    # --- seed: patch_info ---
    import mallorn

    info = mallorn.patch_info("update.tflp")

    print(f"Format: {info.format}")
    print(f"Source hash: {info.source_hash.hex()}")
    print(f"Target hash: {info.target_hash.hex()}")
    print(f"Patch size: {info.patch_size} bytes")
    print(f"Tensors modified: {info.tensors_modified}")
    print(f"Tensors unchanged: {info.tensors_unchanged}")
    print(f"Compression: {info.compression}")
    print(f"Signed: {info.signed}")
    # --- seed: sign_patch ---
    private_key = open("mallorn.key", "rb").read()
    mallorn.sign_patch("update.tflp", private_key, "update.tflp.signed")
    # --- end of seed ---
    out = capsys.readouterr().out
    assert "Format: TFLite" in out and "Compression: zstd" in out and "Signed: False" in out
    assert f"Source hash: {sha256(Path('model_v1.tflite')).hex()}" in out
    assert info.patch_size == os.path.getsize("update.tflp")
    assert mallorn.patch_info("update.tflp.signed").signed


def test_fingerprint_examples(seed_dir, capsys):
    # --- seed: fingerprint ---
    import mallorn

    fp = mallorn.fingerprint("model.tflite")

    print(f"Size: {fp.file_size} bytes")
    print(f"Header hash: {fp.header_hash}")
    print(f"Tail hash: {fp.tail_hash}")
    print(f"Short ID: {fp.short()}")

    # Check if two fingerprints match
    fp2 = mallorn.fingerprint("other_model.tflite")
    if fp.matches(fp2):
        print("Models are the same version")
    # --- seed: compare_fingerprints ---
    # Quick version comparison
    if mallorn.compare_fingerprints("model_a.tflite", "model_b.tflite"):
        print("Same model version")
    else:
        print("Different versions - update needed")
    # --- end of seed ---
    out = capsys.readouterr().out
    assert f"Size: {os.path.getsize('model.tflite')} bytes" in out and f"Short ID: {fp.short()}" in out
    assert "Models are the same version" not in out  # old vs new model
    assert "Same model version" in out  # model_a and model_b are copies of one model


def test_tflite_and_gguf_workflow_examples(seed_dir, capsys):
    # --- seed: TensorFlow Lite Workflow, from "Create patch for OTA" (no TensorFlow here) ---
    import mallorn

    # Create patch for OTA
    stats = mallorn.create_patch(
        "model_v1.tflite",
        "model_v2.tflite",
        "update.tflp",
        neural=True
    )
    print(f"Update size: {stats.patch_size / 1024:.1f} KB")
    print(f"Savings: {(1 - stats.patch_size / stats.target_size) * 100:.1f}%")
    # --- seed: GGUF/llama.cpp Workflow ---
    # Create patch for quantized LLM update
    stats = mallorn.create_patch(
        "llama-7b-q4.gguf",
        "llama-7b-q4-finetuned.gguf",
        "update.ggup",
        compression_level=9
    )

    print(f"Original: {stats.target_size / 1e9:.1f} GB")
    print(f"Patch: {stats.patch_size / 1e6:.1f} MB")
    # --- end of seed ---
    out = capsys.readouterr().out
    assert "Update size: " in out and "Savings: 9" in out  # a real update saves >90 % here
    mallorn.apply_patch("llama-7b-q4.gguf", "update.ggup", "restored.gguf")
    assert Path("restored.gguf").read_bytes() == Path("llama-7b-q4-finetuned.gguf").read_bytes()
