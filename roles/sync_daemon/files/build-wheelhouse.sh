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
# Environment:
#   PYTHON                 the Python whose pip resolves the wheels
#                          (default: .venv/bin/python, else python3)
#   TARGET_PYTHON_VERSION  build for the daemon hosts' Python instead of the
#   TARGET_PLATFORM        controller's, e.g. 3.9 and manylinux2014_x86_64
#                          (binary wheels only: pip download --only-binary).
#                          Needed when the hosts run another Python version or
#                          platform: PyYAML has compiled wheels.
#
# Re-running with unchanged inputs does nothing (a stamp holds their
# checksum); the output directory only ever holds one complete build.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
output=${1:-$repo_root/.cache/wheelhouse}
requirements=${2:-$repo_root/requirements/daemon.txt}
python=${PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x "$repo_root/.venv/bin/python" ]]; then python=$repo_root/.venv/bin/python; else python=python3; fi
fi
target_version=${TARGET_PYTHON_VERSION:-}
target_platform=${TARGET_PLATFORM:-}

if [[ ! -f "$requirements" ]]; then
    echo "build-wheelhouse.sh: requirements file $requirements not found" >&2
    exit 2
fi

wheels_in() {
    local dir=$1 wheel names=()
    for wheel in "$dir"/*.whl; do
        [[ -e "$wheel" ]] && names+=("$(basename "$wheel")")
    done
    echo "${#names[@]} wheels: ${names[*]}"
}

# What the build depends on: the requirements, and the Python and platform it is for.
want=$( (sha256sum "$requirements" | cut -d' ' -f1
         "$python" -c 'import sys, sysconfig; print(sys.version_info[:2], sysconfig.get_platform())'
         echo "target=${target_version}/${target_platform}") | sha256sum | cut -d' ' -f1)
stamp="$output/.requirements.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && compgen -G "$output/*.whl" >/dev/null; then
    echo "wheelhouse up to date: $output ($(wheels_in "$output"))"
    exit 0
fi

# Build into a fresh directory next to the output, then swap it in, so that a
# failed build never leaves a half-filled wheelhouse behind.
building="$output.building.$$"
rm -rf "$building"
mkdir -p "$building"
trap 'rm -rf "$building"' EXIT
if [[ -n "$target_version$target_platform" ]]; then
    target_args=(--only-binary=:all: --implementation cp)
    [[ -n "$target_version" ]] && target_args+=(--python-version "$target_version")
    [[ -n "$target_platform" ]] && target_args+=(--platform "$target_platform")
    "$python" -m pip download --disable-pip-version-check --quiet --dest "$building" "${target_args[@]}" -r "$requirements"
else
    "$python" -m pip wheel --disable-pip-version-check --quiet --wheel-dir "$building" -r "$requirements"
fi
cp "$requirements" "$building/requirements.txt"
echo "$want" > "$building/.requirements.sha256"
rm -rf "$output"
mv "$building" "$output"
trap - EXIT
echo "wheelhouse built: $output ($(wheels_in "$output"))"
