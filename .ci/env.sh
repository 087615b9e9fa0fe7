# Sourced by the project's scripts: where the venv, the Jupyter kernel and evcxr's cache live.
# All paths are absolute and inside the checkout (ignored by git), so one checkout never
# touches another's kernel or cache.
RWT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RWT_ROOT
export PATH="$HOME/.cargo/bin:$PATH"
# The project-local Jupyter path holds the "rust" kernel spec that .ci/setup writes.
export JUPYTER_PATH="$RWT_ROOT/.jupyter"
# evcxr: init.evcxr (with `:cache`) and a persistent build directory, so only the first
# notebook run compiles candle.
export EVCXR_CONFIG_DIR="$RWT_ROOT/.evcxr/config"
export EVCXR_TMPDIR="$RWT_ROOT/target/evcxr"
EVCXR_VERSION=0.22.0
VENV="$RWT_ROOT/.venv"
