#!/usr/bin/env bash
# Benchmark of the device delivery protocol (docs/protocol.md):
#   - LoRa: bytes and frames on the air per update (downlink from mallorn-lora-gateway, uplink from
#     the simulated device, lost frames included: they were transmitted) at 0%, 10% and 30% frame
#     loss, against the patch size (target: <= 1.25x at 10% loss), with time on air and the time
#     an EU868 1% duty cycle would stretch it to;
#   - MQTT: updates per minute through one Mosquitto broker and one mallornd (N devices at once),
#     next to the same N devices updating over HTTP with curl + `mallorn patch` in the same run.
# Everything is real: Mosquitto, mallornd with its MQTT bridge, the gateway, the device simulator
# as processes, real tflite-micro model pairs. Prints a table and writes it into docs/benchmarks.md
# between <!-- proto-bench:begin --> and <!-- proto-bench:end -->.
#
# usage: scripts/bench-proto.sh
# environment: PAIRS ("tfm-mnist-lstm tfm-custom-model-rf-keras tfm-retinaface_a-to-b"),
#   LOSSES ("0 0.1 0.3"), LORA_DEVICES (devices per setting, default 3), FLEET (MQTT/HTTP devices,
#   default 30), PAIRS_DIR (../shared/models/pairs), BENCH_NO_DOCS=1 (print only).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '[bench-proto] %s\n' "$*" >&2; }
./scripts/deps.sh
log "building mallornd, mallorn, mallorn-mcu-sim, mallorn-lora-gateway (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target mallornd mallorn mallorn-mcu-sim mallorn-lora-gateway >/dev/null
export ROOT PAIRS_DIR=${PAIRS_DIR:-$ROOT/../shared/models/pairs}
export PAIRS=${PAIRS:-"tfm-mnist-lstm tfm-custom-model-rf-keras tfm-retinaface_a-to-b"}
export LOSSES=${LOSSES:-"0 0.1 0.3"} LORA_DEVICES=${LORA_DEVICES:-3} FLEET=${FLEET:-30}
export BENCH_NO_DOCS=${BENCH_NO_DOCS:-0}
exec python3 "$ROOT/scripts/bench_proto.py"
