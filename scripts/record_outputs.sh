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
# Blank what differs between any two runs: timings (the run's and each model's) and the temporary folder.
python3 - "$out" "$work" <<'PY'
import csv, io, pathlib, re, sys

out, work = pathlib.Path(sys.argv[1]), sys.argv[2]
for f in out.iterdir():
    text = f.read_text().replace(work, "WORK")
    text = re.sub(r'"seconds": [0-9.]+', '"seconds": 0', text)
    text = re.sub(r"<th>seconds</th><td>[0-9.]+</td>", "<th>seconds</th><td>0</td>", text)
    text = re.sub(r'(name="seconds" value|time|timestamp)="[^"]*"', r'\1="0"', text)
    text = re.sub(r"trained in [0-9]+s", "trained in Ns", text)
    if f.suffix == ".csv" and text.startswith("name,"):
        rows = list(csv.reader(io.StringIO(text)))
        column = rows[0].index("seconds")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([rows[0]] + [r[:column] + ["0"] + r[column + 1 :] for r in rows[1:]])
        text = buffer.getvalue()
    f.write_text(text)
PY
rm -rf "$work"
echo "recorded in $out"
