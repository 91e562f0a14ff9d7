#!/usr/bin/env bash
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Build a wheelhouse of the sync daemon's Python dependencies
# (requirements/daemon.txt) on the controller, for the sync_daemon role's
# offline install (sync_daemon_wheelhouse_dir: the hosts then run
# `pip install --no-index --find-links`). The test hosts install from it, so
# `make test` exercises the offline install for real.
#
# Usage: build-wheelhouse.sh [OUTPUT_DIR] [REQUIREMENTS_FILE]
#   OUTPUT_DIR         default: .cache/wheelhouse
#   REQUIREMENTS_FILE  default: requirements/daemon.txt
# Environment: PYTHON (default: .venv/bin/python, else python3): the pip that
# resolves the wheels. Pure-Python wheels suit every daemon host; a
# dependency with compiled parts needs a wheelhouse built for the hosts'
# Python version and platform (pip download --python-version/--platform).
#
# Re-running with an unchanged requirements file does nothing (a stamp holds
# its checksum); the output directory only ever holds this build's wheels.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
output=${1:-$repo_root/.cache/wheelhouse}
requirements=${2:-$repo_root/requirements/daemon.txt}
python=${PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x "$repo_root/.venv/bin/python" ]]; then python=$repo_root/.venv/bin/python; else python=python3; fi
fi

if [[ ! -f "$requirements" ]]; then
    echo "build-wheelhouse.sh: requirements file $requirements not found" >&2
    exit 2
fi

stamp="$output/.requirements.sha256"
want=$( (sha256sum "$requirements" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version_info[:2])') | sha256sum | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$output/*.whl" >/dev/null; then
    echo "wheelhouse up to date: $output ($(ls "$output"/*.whl | wc -l) wheels)"
    exit 0
fi

# Build into a fresh directory next to the output, then swap it in, so that a
# failed build never leaves a half-filled wheelhouse behind.
building="$output.building.$$"
rm -rf "$building"
mkdir -p "$building"
trap 'rm -rf "$building"' EXIT
"$python" -m pip wheel --disable-pip-version-check --quiet --wheel-dir "$building" -r "$requirements"
cp "$requirements" "$building/requirements.txt"
echo "$want" > "$building/.requirements.sha256"
rm -rf "$output"
mv "$building" "$output"
trap - EXIT
echo "wheelhouse built: $output ($(ls "$output"/*.whl | wc -l) wheels: $(cd "$output" && ls *.whl | tr '\n' ' '))"
