#!/usr/bin/env bash
# The GPU check of rwt, run from the folder `make gpu-bundle` fills (target/gpu-bundle/):
#
#   bash target/gpu-bundle/run.sh             # on a GPU machine; results under $OUT
#   bash target/gpu-bundle/run.sh --dry-run   # here, without a GPU (make gpu-bundle runs it)
#
# 1. prints nvidia-smi and the bundle's build information;
# 2. checks that every file it needs is in the folder, and unpacks the binaries (bin.tar.xz);
# 3. finds the CUDA libraries the binaries are linked against (candle builds cudarc with
#    `dynamic-linking`: libcuda.so.1, libcudart.so.13, libcublas.so.13, libcublasLt.so.13,
#    libcurand.so.10, libnvrtc.so.13, and libnvrtc-builtins.so.13.0 that NVRTC loads) in
#    $RWT_CUDA_LIB_DIRS, the system's folders, and every Python's nvidia/*/lib (PyTorch's
#    wheels), and fails naming what is missing;
# 4. runs every CUDA test (bin/cuda-tests: GPU against CPU, RWT_REQUIRE_CUDA=1);
# 5. trains ENet for a few steps through the `rwt` CLI with RWT_DEVICE=cuda;
# 6. runs the CUDA benchmarks (losses, Sinkhorn, ENet and its layers), against PyTorch CUDA where
#    `python3 -c "import torch"` works;
# each step under a time limit, and all of them under a deadline (RWT_GPU_DEADLINE seconds,
# default 460), writing summary.md, run.log, tests.log, train.log, bench.log and bench.jsonl
# to $OUT (or out/ beside this script). The exit status is 0 when every step passed.
#
# --dry-run: no GPU is expected; the CUDA tests and benchmarks must say they skip and pass,
# the training runs on the CPU in quick mode, and the stub libcuda of .ci/cuda-toolkit may
# stand in for the driver (in $RWT_CUDA_LIB_DIRS). Without --dry-run a libcuda under a
# folder named stubs is never used.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1
out="${OUT:-$here/out}"
mkdir -p "$out"
: >"$out/run.log"
exec > >(tee -a "$out/run.log") 2>&1
tee_pid=$!
# Let tee write the last lines before the script's end hands $OUT back.
trap 'rm -rf "${work:-}"; exec >&- 2>&-; wait "$tee_pid" 2>/dev/null' EXIT
t0=$(date +%s)
deadline="${RWT_GPU_DEADLINE:-460}"
declare -a rows=()
failed=0

elapsed() { echo $(($(date +%s) - t0)); }
# Runs "$@" with at most $1 seconds (and never past the deadline), output to $out/$2 too.
step() {
  local limit=$1 logname=$2 name=$3
  shift 3
  local left=$((deadline - $(elapsed)))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$limit" -le 5 ]; then
    echo "== $name: not run, the ${deadline} s deadline is reached"
    rows+=("| $name | not run (deadline) | 0 |")
    failed=1
    return 1
  fi
  echo "== $name (limit ${limit} s)"
  local s rc
  s=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$out/$logname"
  rc=${PIPESTATUS[0]}
  local took=$(($(date +%s) - s))
  if [ "$rc" = 0 ]; then
    rows+=("| $name | passed | $took |")
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    rows+=("| $name | TIMED OUT after $limit s | $took |")
    failed=1
  else
    rows+=("| $name | FAILED (exit $rc) | $took |")
    failed=1
  fi
  return "$rc"
}

echo "== rwt GPU bundle: $here ($( [ $dry = 1 ] && echo dry run || echo GPU run ), $(date -u +%FT%TZ), $(uname -n))"
cat "$here/BUILD-INFO" 2>/dev/null
echo "== nvidia-smi"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt"
  nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1
else
  echo "nvidia-smi: not found"
  [ $dry = 1 ] || echo "WARNING: no nvidia-smi on a GPU run"
fi

echo "== files"
missing_files=0
while read -r sum file; do
  if [ ! -f "$here/$file" ]; then
    echo "missing: $file"
    missing_files=1
  elif [ "$(sha256sum "$here/$file" | cut -d' ' -f1)" != "$sum" ]; then
    echo "changed since the bundle was made: $file"
    missing_files=1
  fi
done <"$here/MANIFEST"
if [ $missing_files = 1 ]; then
  echo "the bundle is incomplete: run make gpu-bundle again"
  exit 2
fi
echo "all $(wc -l <"$here/MANIFEST") files of MANIFEST present and unchanged"
# The binaries travel as one xz archive (they share 45 MB of GPU code), unpacked into a
# temporary folder (removed at the end), not into the bundle.
work="$(mktemp -d "${TMPDIR:-/tmp}/rwt-gpu-bundle.XXXXXX")"
tar -C "$work" -xJf "$here/bin.tar.xz" 2>/dev/null ||
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/bin.tar.xz" "$work"
bin="$work/bin"
for exe in rwt cuda-tests cuda-bench; do
  [ -x "$bin/$exe" ] || { echo "bin.tar.xz has no executable $exe"; exit 2; }
done
echo "binaries unpacked into $bin"

echo "== CUDA libraries"
needed=(libcuda.so.1 libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libnvrtc-builtins.so.13.0)
candidates=()
IFS=: read -r -a extra <<<"${RWT_CUDA_LIB_DIRS:-}"
candidates+=("${extra[@]}")
candidates+=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /lib/x86_64-linux-gnu
  /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)
for d in /usr/local/cuda-13*/lib64 /usr/local/cuda-13*/targets/x86_64-linux/lib; do candidates+=("$d"); done
# Every Python's site-packages: PyTorch's CUDA 13 wheels keep the libraries in nvidia/cu13/lib
# (CUDA 12 wheels in nvidia/<library>/lib, with .so.12 names that do not fit these binaries).
pythons=(python3 /opt/torch/.venv/bin/python3 ${RWT_TORCH_PYTHON:-})
for py in "${pythons[@]}"; do
  command -v "$py" >/dev/null 2>&1 || continue
  while read -r site; do
    for d in "$site"/nvidia/cu13/lib "$site"/nvidia/*/lib "$site"/torch/lib; do candidates+=("$d"); done
  done < <("$py" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
done
declare -A found=()
ldpath=()
for lib in "${needed[@]}"; do
  for d in "${candidates[@]}"; do
    [ -n "$d" ] && [ -e "$d/$lib" ] || continue
    if [ "$lib" = libcuda.so.1 ] && [ $dry = 0 ] && [[ "$d" == */stubs* ]]; then continue; fi
    found[$lib]="$d"
    break
  done
  if [ -z "${found[$lib]:-}" ] && [ "$lib" = libcuda.so.1 ]; then
    # The driver may sit only in the loader's cache.
    p="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ {print $NF; exit}')"
    [ -n "$p" ] && found[$lib]="$(dirname "$p")"
  fi
  if [ -n "${found[$lib]:-}" ]; then
    echo "  $lib: ${found[$lib]}"
    case ":$(IFS=:; echo "${ldpath[*]:-}"):" in *":${found[$lib]}:"*) ;; *) ldpath+=("${found[$lib]}") ;; esac
  fi
done
missing_libs=()
for lib in "${needed[@]}"; do [ -n "${found[$lib]:-}" ] || missing_libs+=("$lib"); done
if [ ${#missing_libs[@]} -gt 0 ]; then
  echo "MISSING CUDA libraries: ${missing_libs[*]}"
  echo "  libcuda.so.1 comes with the NVIDIA driver; the others with a CUDA 13 toolkit or PyTorch's"
  echo "  CUDA 13 wheels (nvidia-cuda-runtime, nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc)."
  echo "  Searched: ${candidates[*]} and the loader's cache. Name more folders in RWT_CUDA_LIB_DIRS."
  {
    echo "# rwt GPU check: libraries missing"
    echo
    echo "Missing: ${missing_libs[*]} (see run.log)."
  } >"$out/summary.md"
  exit 2
fi
LD_LIBRARY_PATH="$(IFS=:; echo "${ldpath[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if ldd "$bin/cuda-tests" | grep -q 'not found'; then
  ldd "$bin/cuda-tests" | grep 'not found'
  echo "the loader still misses libraries (above)"
  exit 2
fi
ldd "$bin/cuda-tests" | grep -E 'libcuda|libcublas|libcurand|libnvrtc|libcudart'

export RWT_ROOT="$here"
if [ $dry = 1 ]; then
  unset RWT_REQUIRE_CUDA
else
  export RWT_REQUIRE_CUDA=1
fi

# 4. Every CUDA test, one at a time (each compares the GPU with the CPU in one process).
: >"$out/tests.log"
step 200 tests.log "CUDA tests (GPU vs CPU)" "$bin/cuda-tests" --test-threads=1 --nocapture
if [ $dry = 1 ] && ! grep -q 'skipped: no CUDA device' "$out/tests.log"; then
  echo "dry run: the CUDA tests did not say that they skip"
  failed=1
fi

# 5. A few training steps of ENet through the CLI: CamVid-sized frames on the GPU, a quick
# run on the CPU in the dry run.
: >"$out/train.log"
runs="$(mktemp -d)"
if [ $dry = 1 ]; then
  step 120 train.log "rwt train (CPU, quick)" \
    env RWT_DEVICE=cpu "$bin/rwt" train --config "$here/configs/gpu-enet-steps.toml" --out "$runs/train" --quick
else
  step 90 train.log "rwt train (RWT_DEVICE=cuda)" \
    env RWT_DEVICE=cuda "$bin/rwt" train --config "$here/configs/gpu-enet-steps.toml" --out "$runs/train"
fi
[ -f "$runs/train/history.json" ] && cp "$runs/train/history.json" "$out/train-history.json"
rm -rf "$runs"

# 6. The CUDA benchmarks, each with its own limit.
: >"$out/bench.log"
: >"$out/bench.jsonl"
export RWT_BENCH_JSON="$out/bench.jsonl"
step 60 bench.log "bench: exact W vs fused CE" "$bin/cuda-bench" --bench losses
step 90 bench.log "bench: soft-target Sinkhorn W" "$bin/cuda-bench" --bench sinkhorn
step 120 bench.log "bench: ENet" "$bin/cuda-bench" --bench enet
step 60 bench.log "bench: ENet's first-stage layers" "$bin/cuda-bench" --bench enet-parts
# The ENet benchmark again from the build with candle's `cudnn` feature, when the bundle has it
# (RWT_GPU_BUNDLE_CUDNN=1) and libcudnn.so.9 is found (PyTorch's nvidia/cudnn/lib).
if [ -x "$bin/cuda-bench-cudnn" ]; then
  # PyTorch's own cuDNN first (the version it was built with), then the system's.
  cudnn_dir=""
  for d in $(printf '%s\n' "${candidates[@]}" | grep '/nvidia/cudnn/lib$') "${candidates[@]}"; do
    [ -n "$d" ] && [ -e "$d/libcudnn.so.9" ] && { cudnn_dir="$d"; break; }
  done
  if [ -n "$cudnn_dir" ]; then
    echo "  libcudnn.so.9: $cudnn_dir"
    # NVIDIA_TF32_OVERRIDE=0: cuDNN's default math may round f32 convolutions' inputs to TF32;
    # the PyTorch peer turns TF32 off too (cudnn.allow_tf32 = False), so both stay f32. The
    # peer ran in the step above (RWT_BENCH_NO_PEER=1).
    step 120 bench.log "bench: ENet, cuDNN build" \
      env NVIDIA_TF32_OVERRIDE=0 RWT_BENCH_NO_PEER=1 LD_LIBRARY_PATH="$cudnn_dir:$LD_LIBRARY_PATH" "$bin/cuda-bench-cudnn" --bench enet
  else
    echo "== bench: ENet, cuDNN build: skipped, no libcudnn.so.9 found"
    rows+=("| bench: ENet, cuDNN build | skipped (no libcudnn.so.9) | 0 |")
  fi
fi

# Summary.
total=$(elapsed)
{
  echo "# rwt GPU check ($( [ $dry = 1 ] && echo 'dry run, no GPU' || echo 'GPU run'), $(date -u +%FT%TZ))"
  echo
  sed 's/^/    /' "$here/BUILD-INFO"
  echo
  [ -f "$out/nvidia-smi.txt" ] && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /'
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo "| whole run.sh | $( [ $total -lt 480 ] && echo 'under 8 minutes' || echo 'OVER 8 MINUTES') | $total |"
  echo
  echo "Tests: $(grep -E '^test result:' "$out/tests.log" | head -1)"
  # Each failed test and its message (the line after "panicked at").
  grep -A1 --no-group-separator 'panicked at' "$out/tests.log" | grep -v '^ *[0-9]*: \|^ *at ' | head -24 | sed 's/^/    /'
  echo
  echo "Figures (bench.log):"
  echo
  grep -E '^W / CE|^ratio|^rwt \(|speed-up|^PyTorch|skipped|^\| rwt|^\| PyTorch|^== ENet|^\| (3x3|1x1|batch-norm|one element-wise)' "$out/bench.log" | sed 's/^/    /'
  echo
  echo "Targets: every CUDA test passes; W <= 1.1x CE; ENet forward+backward ratio (PyTorch time / rwt time) >= 1; run.sh under 480 s."
} >"$out/summary.md"
echo
cat "$out/summary.md"
exit $failed
