#!/usr/bin/env bash
# GTA5 ("Playing for Data", Richter et al. 2016): 24,966 frames with Cityscapes label ids, the
# source domain of GTA5 -> Cityscapes. Downloaded in 10 parts of images and 10 of labels from
# https://download.visinf.tu-darmstadt.de/data/from_games/ (about 57 GB in all).
#
#   data-scripts/gta5.sh DIR [PARTS...]   download parts (default 01..10), unpack, verify
#   data-scripts/gta5.sh --verify DIR     only verify (writes nothing)
#
# Terms: see the dataset page (research use; images are from a commercial game).
set -euo pipefail

verify_only=0
if [ "${1:-}" = "--verify" ]; then verify_only=1; shift; fi
dir="${1:?usage: gta5.sh [--verify] DIR [PARTS...]}"
shift || true

verify() {
  local d="$1"
  local imgs labs unmatched=0
  imgs=$( { find "$d/images" -name '*.png' 2>/dev/null || true; } | wc -l)
  labs=$( { find "$d/labels" -name '*.png' 2>/dev/null || true; } | wc -l)
  while read -r img; do
    [ -f "$d/labels/$(basename "$img")" ] || unmatched=$((unmatched + 1))
  done < <(find "$d/images" -name '*.png' 2>/dev/null)
  printf 'images %5d  labels %5d  expected 24966  images without label %d\n' "$imgs" "$labs" "$unmatched"
  if [ "$imgs" = 24966 ] && [ "$labs" = 24966 ] && [ "$unmatched" = 0 ]; then echo "GTA5 OK: $d"
  else echo "GTA5 INCOMPLETE: $d (partial downloads are usable; rwt reads the pairs present)" >&2; return 1; fi
}

if [ "$verify_only" = 1 ]; then verify "$dir"; exit; fi

parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(01 02 03 04 05 06 07 08 09 10)
mkdir -p "$dir/images" "$dir/labels"
base="https://download.visinf.tu-darmstadt.de/data/from_games/data"
for p in "${parts[@]}"; do
  for kind in images labels; do
    z="$dir/${p}_${kind}.zip"
    if [ ! -f "$z" ]; then
      echo "downloading ${p}_${kind}.zip"
      curl -fL --retry 3 -C - -o "$z.part" "$base/${p}_${kind}.zip"
      mv "$z.part" "$z"
    fi
    unzip -tq "$z" >/dev/null || { echo "$z is corrupt: delete it and rerun" >&2; exit 1; }
    unzip -qn "$z" -d "$dir"
  done
done
verify "$dir"
