#!/usr/bin/env bash
# Creates target/pot-venv with POT (Python Optimal Transport) from PyPI for the Sinkhorn
# benchmark, once, and prints the path of its python.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/pot-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import ot, ot.batch" 2>/dev/null; then
  py="$(command -v python3.11 || command -v python3)"
  "$py" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q "pot==0.9.7.post1" "numpy>=1.26" >&2
fi
echo "$venv/bin/python"
