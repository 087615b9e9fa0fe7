# Sourced by the project's scripts: where the venv, the Jupyter kernel and evcxr's cache live.
# All paths are absolute and inside the checkout (ignored by git), so one checkout never
# touches another's kernel or cache.
RWT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RWT_ROOT
export PATH="$HOME/.cargo/bin:$PATH"
# The project-local Jupyter path holds the "rust" kernel spec that .ci/setup writes.
export JUPYTER_PATH="$RWT_ROOT/.jupyter"
# evcxr: init.evcxr (with `:cache`, a cache of compiled dependencies in ~/.cache/evcxr) and
# persistent build folders target/evcxr/0, 1, ...: each running kernel takes one no other
# kernel holds (.ci/kernel.py), so notebooks run side by side and only the first run compiles
# candle.
export EVCXR_CONFIG_DIR="$RWT_ROOT/.evcxr/config"
export RWT_EVCXR_SLOTS="$RWT_ROOT/target/evcxr"
# The project's Jupyter server settings (.ci/jupyter: new notebooks default to the Rust
# kernel); the user's own ~/.jupyter still comes first.
export JUPYTER_CONFIG_PATH="$RWT_ROOT/.ci/jupyter${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
EVCXR_VERSION=0.22.0
VENV="$RWT_ROOT/.venv"
