#!/usr/bin/env python3
"""Writes the small seed corpora of the fuzz targets that take structured input
(tests/fuzz/corpus/<target>/seed-*). Run from anywhere; the seeds are checked in, so this only
documents (and can redo) how they were made. The model-parser seeds are tiny hand-made files;
tflite_fuzz/seed-hello-world-int8.tflite is ../shared/models/pairs/tfm-hello-world-int8/old.tflite
and patch_applier_fuzz/seed-raw-patch is `mallorn diff` of 4096 x 0x42 against a 3500-byte edit
of it (the old model patch_applier_fuzz.cpp applies against)."""
import json, struct
from pathlib import Path

here = Path(__file__).parent
sha = "ab" * 32


def put(target, name, data):
    d = here / target
    d.mkdir(exist_ok=True)
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


# agent_answer_fuzz: selector byte, then the input.
offer = {"model": "hello", "current_version": "1", "target_version": "2", "target_sha256": sha, "target_size": 2704,
         "target_rank": 2, "full_url": "/model/hello/2", "full_size": 2704, "patch_id": "cd" * 32,
         "patch_url": "/patch/" + "cd" * 32, "patch_size": 500, "patch_sha256": "ef" * 32, "signed": True,
         "update_available": True, "status": "ready"}
put("agent_answer_fuzz", "ready", b"\x00" + json.dumps(offer).encode())
full_only = dict(offer, current_version=None, patch_id=None, patch_url=None, patch_size=None, patch_sha256=None,
                 status="full_only")
put("agent_answer_fuzz", "full-only", b"\x00" + json.dumps(full_only).encode())
put("agent_answer_fuzz", "up-to-date", b"\x00" + json.dumps({"update_available": False, "status": "up_to_date"}).encode())
put("agent_answer_fuzz", "content-range", b"\x01bytes 100-2703/2704")
put("agent_answer_fuzz", "head-206", b"\x02" + struct.pack("<QQ", 100, 2704) + b"\x01" + b"2604\nbytes 100-2703/2704")
put("agent_answer_fuzz", "head-200", b"\x02" + struct.pack("<QQ", 0, 2704) + b"\x00" + b"2704")
put("agent_answer_fuzz", "retry-after", b"\x0330")

# proto_codec_fuzz: selector byte (0 announce, 1 offer, 2 status, 3 block request, 4 block,
# 5 radio frame, 6 fragments), then the payload.
put("proto_codec_fuzz", "announce", b"\x00" + json.dumps(
    {"model": "hello", "sha256": sha, "version": "1", "free_ram": 65536, "max_block": 1024}).encode())
put("proto_codec_fuzz", "offer", b"\x01" + json.dumps(
    {"status": "ready", "session": 7, "model": "hello", "target_version": "2", "target_sha256": sha,
     "patch_id": "cd" * 32, "patch_sha256": "ef" * 32, "target_size": 2704, "patch_size": 500, "block_size": 256,
     "blocks": 2, "signed": True}).encode())
put("proto_codec_fuzz", "offer-wait", b"\x01" + json.dumps({"status": "wait", "retry_after": 5}).encode())
put("proto_codec_fuzz", "status", b"\x02" + json.dumps(
    {"session": 7, "state": "failed", "received": 2, "error": "patch_hash_mismatch"}).encode())
put("proto_codec_fuzz", "bitmap-request", b"\x03" + bytes([0x01]) + struct.pack("<IIH", 7, 0, 10) + b"\xff\x03")
put("proto_codec_fuzz", "range-request", b"\x03" + bytes([0x02]) + struct.pack("<III", 7, 100, 300))
put("proto_codec_fuzz", "block", b"\x04" + bytes([0x81]) + struct.pack("<II", 7, 1) + bytes(range(64)))
put("proto_codec_fuzz", "radio-announce", b"\x05" + bytes([0x10]) + struct.pack("<I", 0x1234) + bytes(32)
    + struct.pack("<IH", 65536, 200))
put("proto_codec_fuzz", "radio-request", b"\x05" + bytes([0x11]) + struct.pack("<IIHHIH", 0x1234, 7, 1, 0, 0, 16)
    + b"\xff\xff")
put("proto_codec_fuzz", "radio-more", b"\x05" + bytes([0x12]) + struct.pack("<IIHHH", 0x1234, 7, 1, 3, 9))
put("proto_codec_fuzz", "radio-status", b"\x05" + bytes([0x13]) + struct.pack("<IIBIB", 0x1234, 7, 2, 500, 0))
put("proto_codec_fuzz", "radio-offer", b"\x05" + bytes([0x20]) + struct.pack("<IBIIHB", 0x1234, 0, 7, 500, 256, 32)
    + bytes(32))
put("proto_codec_fuzz", "radio-fragment", b"\x05" + bytes([0x21]) + struct.pack("<IHH", 0x1234, 1, 3) + bytes(range(32)))
put("proto_codec_fuzz", "radio-ack", b"\x05" + bytes([0x22]) + struct.pack("<II", 0x1234, 7))
frags = b"".join(struct.pack("<H", i) + bytes([i * 7 % 256] * 8) for i in (1, 3, 5, 6, 7))
put("proto_codec_fuzz", "fragments", b"\x06" + bytes([3, 7]) + frags)

# http_range_fuzz: selector byte, 8-byte resource size, then the text.
size = struct.pack("<Q", 2704)
for i, r in enumerate(["bytes=100-", "bytes=0-99", "bytes=-500", "bytes=5-1,7-9", "bytes=99999-"]):
    put("http_range_fuzz", f"range-{i}", b"\x80" + size + r.encode())
put("http_range_fuzz", "if-range", b"\x01" + size + b'"' + b"ab" * 32 + b'"\n"' + b"ab" * 32 + b'"')
put("http_range_fuzz", "if-none-match", b"\x81" + size + b'W/"x", "y"\n"y"')
put("http_range_fuzz", "target", b"\x02" + size + b"/model/hello/2?channel=beta&x=%41+b")
put("http_range_fuzz", "target-dots", b"\x02" + size + b"/model/%2e%2e/2")
put("http_range_fuzz", "decode", b"\x43" + size + b"a%20b+c%00")
# Framing (selector 4): each line a Transfer-Encoding field; 0x20 adds Content-Length, 0x10 HTTP/1.0.
put("http_range_fuzz", "framing-chunked", b"\x04" + size + b"chunked")
put("http_range_fuzz", "framing-gzip", b"\x04" + size + b"gzip, chunked")
put("http_range_fuzz", "framing-twice", b"\x04" + size + b"chunked\nChunked")
put("http_range_fuzz", "framing-cl-te", b"\x24" + size + b"chunked")
put("http_range_fuzz", "framing-http10", b"\x14" + size + b"chunked")

# router_fuzz: "METHOD TARGET\nheaders\n\nbody".
old_sha = "a587da596f929ee4a4008022e90b7b44f5d6c155186864e37ea180a0f5cda557"  # tfm-hello-world-int8 old.tflite
put("router_fuzz", "check-update", "POST /check-update\ncontent-type: application/json\n\n" + json.dumps(
    {"sha256": old_sha, "model": "hello", "device_id": "d1"}))
put("router_fuzz", "check-update-short", "POST /check-update\n\n" + json.dumps({"short_id": "0123456789abcdef"}))
put("router_fuzz", "report", "POST /report\n\n" + json.dumps(
    {"device_id": "d1", "model": "hello", "from_version": "1", "to_version": "2", "state": "failed",
     "error": "x\u001b", "bytes_downloaded": 5, "at": 1700000000}))
put("router_fuzz", "model-range", "GET /model/hello/2\nrange: bytes=100-\nif-range: \"" + "ab" * 32 + "\"\n\n")
put("router_fuzz", "patch", "GET /patch/" + "cd" * 32 + "\nif-none-match: *\n\n")
put("router_fuzz", "manifest", "GET /manifest\n\n")
put("router_fuzz", "fingerprint", "GET /fingerprint/hello/1\n\n")
put("router_fuzz", "create-patch", "POST /create-patch?model=hello&source_version=1&target_version=2\n"
    "authorization: Bearer fuzz-admin-token\n\n")
put("router_fuzz", "devices", "GET /admin/devices\nauthorization: Bearer fuzz-admin-token\n\n")
put("router_fuzz", "head", "HEAD /model/hello/1\n\n")

# The model parsers: minimal valid files.
st_header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
put("safetensors_fuzz", "tiny", struct.pack("<Q", len(st_header)) + st_header + bytes(8))
put("gguf_fuzz", "empty", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
put("onnx_fuzz", "ir-version", bytes([0x08, 0x07, 0x12, 0x04]) + b"test")
