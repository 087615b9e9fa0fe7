#!/usr/bin/env bash
# Cityscapes (19 classes, 2975/500/1525 images) in its official layout: leftImg8bit/ and gtFine/.
#
# Cityscapes needs an account (https://www.cityscapes-dataset.com/register/) and may not be
# redistributed. Either
#   - set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD and run `cityscapes.sh DIR`: the script
#     logs in and downloads gtFine_trainvaltest.zip (packageID=1) and
#     leftImg8bit_trainvaltest.zip (packageID=3) into DIR; or
#   - download those two zips yourself from the website into DIR and run `cityscapes.sh DIR`.
# Then the zips are tested (CRC of every member), checked against DIR/expected.md5 when you put
# the MD5 sums the download page shows there, unpacked, and the layout is verified: images and
# label-id maps per split, every image with its label. A SHA256SUMS manifest of the zips is
# written so later runs can check nothing changed.
#
#   data-scripts/cityscapes.sh DIR
#   data-scripts/cityscapes.sh --verify DIR   only verify the unpacked layout (writes nothing)
set -euo pipefail

verify_only=0
if [ "${1:-}" = "--verify" ]; then verify_only=1; shift; fi
dir="${1:?usage: cityscapes.sh [--verify] DIR}"

verify() {
  local d="$1" ok=1
  for pair in train:2975 val:500 test:1525; do
    local split="${pair%%:*}" want="${pair##*:}"
    local imgs labs unmatched=0
    imgs=$( { find "$d/leftImg8bit/$split" -name '*_leftImg8bit.png' 2>/dev/null || true; } | wc -l)
    labs=$( { find "$d/gtFine/$split" -name '*_gtFine_labelIds.png' 2>/dev/null || true; } | wc -l)
    while read -r img; do
      local rel="${img#"$d"/leftImg8bit/}"
      local lab="$d/gtFine/${rel%_leftImg8bit.png}_gtFine_labelIds.png"
      [ -f "$lab" ] || { unmatched=$((unmatched + 1)); [ "$unmatched" -le 3 ] && echo "MISSING $lab"; }
    done < <(find "$d/leftImg8bit/$split" -name '*_leftImg8bit.png' 2>/dev/null)
    printf '%-5s images %4d  labelIds %4d  expected %4d  images without label %d\n' "$split" "$imgs" "$labs" "$want" "$unmatched"
    [ "$imgs" = "$want" ] && [ "$labs" = "$want" ] && [ "$unmatched" = 0 ] || ok=0
  done
  if [ "$ok" = 1 ]; then echo "Cityscapes OK: $d"; else echo "Cityscapes INCOMPLETE: $d" >&2; return 1; fi
}

if [ "$verify_only" = 1 ]; then verify "$dir"; exit; fi

mkdir -p "$dir"
zips=(gtFine_trainvaltest.zip leftImg8bit_trainvaltest.zip)
ids=(1 3)
if [ -n "${CITYSCAPES_USERNAME:-}" ] && [ -n "${CITYSCAPES_PASSWORD:-}" ]; then
  jar="$(mktemp)"
  trap 'rm -f "$jar"' EXIT
  curl -fsS -c "$jar" -d "username=$CITYSCAPES_USERNAME" --data-urlencode "password=$CITYSCAPES_PASSWORD" -d "submit=Login" \
    https://www.cityscapes-dataset.com/login/ >/dev/null
  for i in 0 1; do
    [ -f "$dir/${zips[$i]}" ] && continue
    echo "downloading ${zips[$i]}"
    curl -fL --retry 3 -b "$jar" -o "$dir/${zips[$i]}.part" "https://www.cityscapes-dataset.com/file-handling/?packageID=${ids[$i]}"
    mv "$dir/${zips[$i]}.part" "$dir/${zips[$i]}"
  done
fi
for z in "${zips[@]}"; do
  if [ ! -f "$dir/$z" ]; then
    cat >&2 <<MSG
$dir/$z is missing. Cityscapes needs your login: register at https://www.cityscapes-dataset.com,
then either set CITYSCAPES_USERNAME and CITYSCAPES_PASSWORD and rerun, or download
gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip into $dir yourself and rerun.
MSG
    exit 1
  fi
done
( cd "$dir"
  echo "testing the zips"
  for z in "${zips[@]}"; do unzip -tq "$z" >/dev/null || { echo "$z is corrupt" >&2; exit 1; }; done
  if [ -f expected.md5 ]; then md5sum -c expected.md5; fi
  if [ -f SHA256SUMS ]; then sha256sum -c SHA256SUMS; else sha256sum "${zips[@]}" >SHA256SUMS; fi
  for z in "${zips[@]}"; do unzip -qn "$z"; done )
verify "$dir"
