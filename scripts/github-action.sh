#!/usr/bin/env bash
# The shell of action.yml (the suscli GitHub Action), kept here so that tests/test_action.py runs exactly what the
# action runs: install suscli in its own virtual environment, run `suscli rank` with the action's inputs, write the
# HTML and JUnit reports, and exit with suscli's code so that the job fails on the gate. suscli itself appends the
# table and the closing line to $GITHUB_STEP_SUMMARY. Inputs come as SUSCLI_* environment variables (action.yml).
set -euo pipefail

: "${SUSCLI_POOL:?the action needs the pool input}"
: "${SUSCLI_DATA:?the action needs the data input}"
action="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
report_dir="${SUSCLI_REPORT_DIR:-suscli-report}"
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/suscli-venv"
# Split at any whitespace, newlines included (a YAML block `args: |` puts each option on a line of its own); read
# stops at the end of its input with status 1.
read -r -d '' -a pip_args <<< "${SUSCLI_PIP_ARGS:-}" || true
read -r -d '' -a extra <<< "${SUSCLI_ARGS:-}" || true

echo "::group::install suscli"
# --system-site-packages: a torch the job installed before (CPU-only wheels, say) is used rather than fetched again.
python3 -m venv --system-site-packages "$venv"
"$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${pip_args[@]}" "${SUSCLI_INSTALL:-$action[plot]}"
echo "::endgroup::"

mkdir -p "$report_dir"
args=(rank "$SUSCLI_POOL" --data "$SUSCLI_DATA" --fail-on "${SUSCLI_FAIL_ON:-memorized}"
      --html "$report_dir/report.html" --junit "$report_dir/junit.xml")
if [ -n "${SUSCLI_TRAIN_DATA:-}" ]; then
    args+=(--train-data "$SUSCLI_TRAIN_DATA")
fi
if [ -n "${SUSCLI_VAL_DATA:-}" ]; then
    args+=(--val-data "$SUSCLI_VAL_DATA")
fi
code=0
"$venv/bin/suscli" "${args[@]}" "${extra[@]}" || code=$?
{
    echo "exit-code=$code"
    echo "report-dir=$report_dir"
    echo "html=$report_dir/report.html"
    echo "junit=$report_dir/junit.xml"
} >> "${GITHUB_OUTPUT:-/dev/null}"
case "$code" in
    0) ;;
    1) echo "::error title=suscli gate failed::see the step summary and the $report_dir artifact (report.html)" ;;
    *) echo "::error title=suscli could not audit the pool::exit code $code: see the message above" ;;
esac
exit "$code"
