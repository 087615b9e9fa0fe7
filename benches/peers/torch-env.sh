#!/usr/bin/env bash
# Creates target/torch-venv with PyTorch (CPU) from PyPI for the ENet benchmark and the
# ENet fixture script, once, and prints the path of its python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/torch-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, safetensors" 2>/dev/null; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --index-url https://download.pytorch.org/whl/cpu torch >&2 \
    || "$venv/bin/python" -m pip install -q torch >&2
  "$venv/bin/python" -m pip install -q numpy safetensors >&2
fi
echo "$venv/bin/python"
