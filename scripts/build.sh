#!/usr/bin/env bash
# Configures and builds qforge with a CMake preset (default: release) into build/<preset>.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET="${1:-release}"
cmake --preset "$PRESET" >/dev/null
cmake --build --preset "$PRESET" -j "$(nproc)"
