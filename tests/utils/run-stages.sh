#!/usr/bin/env bash
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Run make targets one after the other ("stages"), stop at the first one that
# fails, and print how long each took. `make test` calls this with its stage
# list (TEST_STAGES in the Makefile), so adding a stage there is all it takes.
#
# Usage: run-stages.sh STAGE...      (MAKE may name the make to call)
set -uo pipefail

make_cmd=${MAKE:-make}
stages_run=()
stage_seconds=()
failed_stage=""
failed_rc=0
started_all=$(date +%s.%N)

print_summary() {
    local i
    echo
    echo "==================== make test: stage timings ===================="
    for i in "${!stages_run[@]}"; do
        printf '  %-18s %8s s\n' "${stages_run[$i]}" "${stage_seconds[$i]}"
    done
    printf '  %-18s %8s s\n' "total" "$(elapsed_since "$started_all")"
    if [[ -n "$failed_stage" ]]; then
        echo "make test: FAILED in stage '${failed_stage}' (exit code ${failed_rc})"
    else
        echo "make test: all stages passed: $*"
    fi
}

elapsed_since() {
    awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'
}

for stage in "$@"; do
    echo
    echo "==================== stage: ${stage} ===================="
    started=$(date +%s.%N)
    "$make_cmd" --no-print-directory "$stage"
    rc=$?
    stages_run+=("$stage")
    stage_seconds+=("$(elapsed_since "$started")")
    if [[ $rc -ne 0 ]]; then
        failed_stage=$stage
        failed_rc=$rc
        break
    fi
done

print_summary "$@"
[[ -z "$failed_stage" ]]
