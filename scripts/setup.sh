#!/usr/bin/env bash
# Quick start, command 1: install the build dependencies, build, and run a command in a
# sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
make -j"$(nproc)" >/dev/null
echo "built build/gcc/agentcell; running a command in a fresh sandbox:"
./build/gcc/agentcell run -- sh -c 'echo "hello from $(hostname): $(id -un) sees $(ls /proc | grep -c "^[0-9]") processes"'
