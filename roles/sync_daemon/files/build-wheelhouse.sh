#!/usr/bin/env bash
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Build a wheelhouse of the sync daemon's Python dependencies
# (requirements/daemon.txt) on the controller, for the sync_daemon role's
# offline install (sync_daemon_wheelhouse_dir: the hosts then run
# `pip install --no-index --find-links`). It ships with the collection and
# runs from wherever the collection is: a clone, or an installed collection
# (ansible-galaxy collection install); it finds requirements/daemon.txt
# relative to itself. The test hosts install from it, so `make test`
# exercises the offline install for real, and `make install-check` runs it
# from an installed collection.
#
# Usage: build-wheelhouse.sh OUTPUT_DIR [REQUIREMENTS_FILE]
#   OUTPUT_DIR         where the wheels go (created; replaced as a whole)
#   REQUIREMENTS_FILE  default: the collection's requirements/daemon.txt
# Environment:
#   PYTHON                 the Python whose pip resolves the wheels (default:
#                          the clone's .venv/bin/python when there is one,
#                          else python3); any venv with pip does, e.g. the
#                          one Ansible runs from
#   TARGET_PYTHON_VERSION  build for the daemon hosts' Python instead of the
#   TARGET_PLATFORM        controller's, e.g. 3.9 and manylinux2014_x86_64
#                          (binary wheels only: pip download --only-binary).
#                          Needed when the hosts run another Python version or
#                          platform: PyYAML has compiled wheels.
#
# Re-running with unchanged inputs does nothing (a stamp holds their
# checksum); the output directory only ever holds one complete build.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || -z "$1" ]]; then
    echo "usage: build-wheelhouse.sh OUTPUT_DIR [REQUIREMENTS_FILE]" >&2
    exit 2
fi
# This file is roles/sync_daemon/files/build-wheelhouse.sh of the collection.
collection_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
output=$1
requirements=${2:-$collection_root/requirements/daemon.txt}
python=${PYTHON:-}
if [[ -z "$python" ]]; then
    if [[ -x "$collection_root/.venv/bin/python" ]]; then python=$collection_root/.venv/bin/python; else python=python3; fi
fi
target_version=${TARGET_PYTHON_VERSION:-}
target_platform=${TARGET_PLATFORM:-}

if [[ ! -f "$requirements" ]]; then
    echo "build-wheelhouse.sh: requirements file $requirements not found" >&2
    exit 2
fi
if ! "$python" -m pip --version >/dev/null 2>&1; then
    echo "build-wheelhouse.sh: $python has no pip; set PYTHON to a Python that has (e.g. the venv Ansible runs from)" >&2
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
