#!/usr/bin/env bash
# Record the demo's score, rank and track reports in every format into OUT (default ./outputs), with run-dependent
# fields (timings, paths of temporary folders, versions) blanked, so that two versions of suscli can be diffed:
#   bash scripts/record_outputs.sh /tmp/before && (after a change) bash scripts/record_outputs.sh /tmp/after && diff -r /tmp/before /tmp/after
set -uo pipefail
out=$(realpath -m "${1:-outputs}")
work=$(mktemp -d)
mkdir -p "$out"
cd "$work"
suscli demo --small --out demo >"$out/demo.stdout" 2>"$out/demo.stderr"
# track: a run of per-epoch checkpoints, written by the tracker-free route (the demo's models as epochs 1..N).
mkdir -p run
i=1
for m in $(ls demo/models/*.safetensors | sort); do cp "$m" "run/epoch=$i.safetensors"; cp "${m%.safetensors}.json" "run/epoch=$i.json" 2>/dev/null; i=$((i + 1)); done
one=$(ls demo/models/*.safetensors | sort | head -1)
common=(--data demo/data/unlabeled --train-data demo/data/train --no-cache)
for fmt in table json csv markdown junit html; do
    suscli score "$one" "${common[@]}" -f "$fmt" >"$out/score.$fmt" 2>"$out/score.$fmt.stderr"; echo "exit $?" >>"$out/score.$fmt.stderr"
    suscli rank demo/models "${common[@]}" --results "rank-$fmt.jsonl" -f "$fmt" >"$out/rank.$fmt" 2>"$out/rank.$fmt.stderr"; echo "exit $?" >>"$out/rank.$fmt.stderr"
    suscli track run "${common[@]}" --results "track-$fmt.jsonl" -f "$fmt" >"$out/track.$fmt" 2>"$out/track.$fmt.stderr"; echo "exit $?" >>"$out/track.$fmt.stderr"
done
# Blank what differs between any two runs: timings, temporary paths, versions, timestamps.
sed -i -E \
    -e "s#$work#WORK#g" \
    -e 's/"seconds": [0-9.]+/"seconds": 0/g' \
    -e 's/time="[0-9.]+"/time="0"/g' \
    -e 's/timestamp="[^"]*"/timestamp="0"/g' \
    -e 's/[0-9]+(\.[0-9]+)?s\b/Ns/g' \
    "$out"/*
rm -rf "$work"
echo "recorded in $out"
