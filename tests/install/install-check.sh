#!/usr/bin/env bash
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# `make install-check`: install the built collection the way docs/install.md
# tells a user to, with nothing of this checkout in sight, and use it against
# a real ZooKeeper server.
#
#   1. a clean venv (INSTALL_CHECK_DIR/venv, re-created every run) with the
#      oldest supported ansible-core (ANSIBLE_CORE_SPEC);
#   2. `ansible-galaxy collection install TARBALL` into a collections path in
#      a scratch directory outside the checkout; `ansible-galaxy collection
#      list` must show it there, as a real directory (no link to the checkout);
#   3. `pip install -r` of the requirements/controller.txt the installed
#      collection ships (kazoo), ansible-core held to ANSIBLE_CORE_SPEC;
#   4. a standalone ZooKeeper 3.8 server (tests/install/zk_server.py, run by
#      the project venv's Python) and tests/install/smoke.yml, copied into the
#      scratch directory, run by that venv's ansible-playbook: zk_cluster and
#      zk_sync_info against the server, asserting their results; then the
#      collection's own playbooks by name (zookeeper.migration.migrate, ...,
#      --syntax-check);
#   5. the wheelhouse builder from the installed collection
#      (roles/sync_daemon/files/build-wheelhouse.sh);
#   6. when the checkout is a git repository, the git URL form
#      (git+file://...,HEAD: the committed tree) into a second path.
#
# No PYTHONPATH, ANSIBLE_* variable, ansible.cfg or collections path of the
# caller reaches the ansible commands: each runs under `env -i` with a
# scratch HOME, ANSIBLE_CONFIG and ANSIBLE_COLLECTIONS_PATH. pip steps keep
# the caller's environment (index, proxy and certificate settings) minus
# PYTHONPATH. Prints each step's time. The scratch directory is removed
# after a successful run and kept (its path printed) after a failure.
#
# Usage: install-check.sh TARBALL
# Environment:
#   ANSIBLE_CORE_SPEC   pip requirement for ansible-core (default: ansible-core>=2.16,<2.17)
#   INSTALL_CHECK_DIR   where the venv goes (default: <checkout>/.cache/install-check)
#   PYTHON              the Python the venv is made from (default: python3)
#   HARNESS_PYTHON      the Python that runs the ZooKeeper harness (default: <checkout>/.venv/bin/python)
set -euo pipefail
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV

if [[ $# -ne 1 ]]; then
    echo "usage: install-check.sh TARBALL" >&2
    exit 2
fi
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
tarball=$(realpath "$1")
ansible_core_spec=${ANSIBLE_CORE_SPEC:-ansible-core>=2.16,<2.17}
check_dir=${INSTALL_CHECK_DIR:-$repo_root/.cache/install-check}
python=${PYTHON:-python3}
harness_python=${HARNESS_PYTHON:-$repo_root/.venv/bin/python}
venv=$check_dir/venv

fail() {
    echo "install-check: $*" >&2
    exit 1
}

[[ -f "$tarball" ]] || fail "no tarball at $1 (make build makes it)"

# -- timings -------------------------------------------------------------------
step_names=()
step_seconds=()
started_all=$(date +%s.%N)
elapsed_since() {
    awk -v start="$1" -v now="$(date +%s.%N)" 'BEGIN { printf "%.1f", now - start }'
}
# step NAME COMMAND...: run COMMAND, record its time under NAME.
step() {
    local name=$1 started
    shift
    echo
    echo "---------- install-check: $name"
    started=$(date +%s.%N)
    "$@"
    step_names+=("$name")
    step_seconds+=("$(elapsed_since "$started")")
}
print_timings() {
    local i
    echo
    echo "==================== install-check: step timings ===================="
    for i in "${!step_names[@]}"; do
        printf '  %-40s %8s s\n' "${step_names[$i]}" "${step_seconds[$i]}"
    done
    printf '  %-40s %8s s\n' "total" "$(elapsed_since "$started_all")"
}

# -- scratch directory, server, clean-up ---------------------------------------
scratch=$(mktemp -d "${TMPDIR:-/tmp}/zkm-install-check.XXXXXX")
scratch=$(cd "$scratch" && pwd -P)
case "$scratch/" in
    "$repo_root"/*) fail "the scratch directory $scratch is inside the checkout" ;;
esac
collections=$scratch/collections
installed=$collections/ansible_collections/zookeeper/migration
zk_pid=""

finish() {
    local rc=$?
    if [[ -n "$zk_pid" ]]; then
        kill -TERM "$zk_pid" 2>/dev/null || true
        wait "$zk_pid" 2>/dev/null || true
    fi
    print_timings
    if [[ $rc -eq 0 ]]; then
        rm -rf "$scratch"
        echo "install-check: passed (ansible-core $("$venv/bin/python" -c 'import ansible; print(ansible.__version__)'), collection from $(basename "$tarball"))"
    else
        echo "install-check: FAILED (exit $rc); scratch directory kept: $scratch" >&2
    fi
    exit "$rc"
}
trap finish EXIT

mkdir -p "$scratch/home" "$scratch/work" "$scratch/ansible-home"
# An empty config file: no ansible.cfg of the caller's (cwd, ~, /etc/ansible) applies.
printf '[defaults]\n' > "$scratch/ansible.cfg"

# as_user COMMAND...: run an ansible command the way a user of the installed
# collection would, and nothing of this checkout's environment.
as_user() {
    (cd "$scratch/work" && env -i \
        HOME="$scratch/home" PATH="$venv/bin:/usr/local/bin:/usr/bin:/bin" LANG=C.UTF-8 LC_ALL=C.UTF-8 \
        TMPDIR="${TMPDIR:-/tmp}" \
        ANSIBLE_CONFIG="$scratch/ansible.cfg" ANSIBLE_HOME="$scratch/ansible-home" \
        ANSIBLE_COLLECTIONS_PATH="$collections" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 \
        "$@")
}

# -- the steps -----------------------------------------------------------------
make_venv() {
    rm -rf "$venv"
    mkdir -p "$check_dir"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "$ansible_core_spec"
    local version
    version=$("$venv/bin/ansible" --version)
    echo "${version%%$'\n'*}"
}

install_collection() {
    as_user ansible-galaxy collection install "$tarball"
    local listing
    listing=$(as_user ansible-galaxy collection list zookeeper.migration --format json)
    echo "$listing"
    as_user python - "$listing" "$collections" "$repo_root" <<'EOF'
import json, os, sys
listing, collections, repo_root = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
paths = [path for path, found in listing.items() if 'zookeeper.migration' in found]
assert paths == [os.path.join(collections, 'ansible_collections')], 'zookeeper.migration found at %s, expected only under %s' % (paths, collections)
installed = os.path.join(paths[0], 'zookeeper', 'migration')
assert os.path.isdir(installed) and not os.path.islink(installed), '%s is not a plain directory' % installed
real = os.path.realpath(installed)
assert not (real + os.sep).startswith(repo_root + os.sep), '%s resolves into the checkout (%s)' % (installed, real)
for link_root, dirs, files in os.walk(installed):
    for name in dirs + files:
        path = os.path.join(link_root, name)
        assert not os.path.islink(path), 'the installed collection holds a link: %s -> %s' % (path, os.readlink(path))
for shipped in ('MANIFEST.json', 'FILES.json', 'requirements/controller.txt', 'requirements/daemon.txt', 'playbooks/migrate.yml'):
    assert os.path.isfile(os.path.join(installed, shipped)), 'the installed collection lacks %s' % shipped
assert not os.path.exists(os.path.join(installed, 'tests')), 'the installed collection holds tests/'
builder = os.path.join(installed, 'roles', 'sync_daemon', 'files', 'build-wheelhouse.sh')
assert os.access(builder, os.X_OK), '%s is missing or not executable' % builder
print('installed at %s (a plain directory outside the checkout)' % installed)
EOF
}

install_requirements() {
    local constraints=$scratch/constraints.txt
    echo "$ansible_core_spec" > "$constraints"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$installed/requirements/controller.txt" -c "$constraints"
    "$venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null | grep -Ei '^(ansible-core|kazoo) '
}

check_isolation() {
    as_user python - "$repo_root" <<'EOF'
import os, sys
repo_root = sys.argv[1]
inside = [path for path in sys.path if path and (os.path.realpath(path) + os.sep).startswith(repo_root + os.sep) and
          not os.path.realpath(path).startswith(os.path.realpath(sys.prefix))]
assert not inside, 'the venv sees the checkout through sys.path: %s' % inside
try:
    import ansible_collections.zookeeper.migration  # noqa: F401
except ImportError:
    pass
else:
    raise AssertionError('the venv imports ansible_collections.zookeeper.migration without Ansible: from %s'
                         % ansible_collections.zookeeper.migration.__path__)
print('sys.path of the venv: nothing of %s' % repo_root)
EOF
    local doc
    doc=$(as_user ansible-doc --json zookeeper.migration.zk_cluster)
    as_user python - "$doc" "$installed" <<'EOF'
import json, sys
doc, installed = json.loads(sys.argv[1]), sys.argv[2]
filename = doc['zookeeper.migration.zk_cluster']['doc']['filename']
assert filename.startswith(installed + '/'), 'ansible-doc reads zk_cluster from %s, not from %s' % (filename, installed)
print('ansible-doc zookeeper.migration.zk_cluster: %s' % filename)
EOF
}

start_zookeeper() {
    local deadline=$((SECONDS + 120))
    "$harness_python" "$repo_root/tests/install/zk_server.py" "$scratch/zk-vars.json" > "$scratch/zk-server.log" 2>&1 &
    zk_pid=$!
    until [[ -s "$scratch/zk-vars.json" ]]; do
        if ! kill -0 "$zk_pid" 2>/dev/null; then
            cat "$scratch/zk-server.log" >&2
            zk_pid=""
            fail "the ZooKeeper server did not start"
        fi
        ((SECONDS < deadline)) || { cat "$scratch/zk-server.log" >&2; fail "the ZooKeeper server did not start within 120 s"; }
        sleep 0.2
    done
    echo "ZooKeeper 3.8 standalone at $(head -n 1 "$scratch/zk-server.log")"
}

run_smoke_playbook() {
    cp "$repo_root/tests/install/smoke.yml" "$scratch/work/smoke.yml"
    printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$venv/bin/python" > "$scratch/work/inventory"
    as_user ansible-playbook -i inventory smoke.yml -e "@$scratch/zk-vars.json" -e "control_root=/install-check-$$"
}

check_collection_playbooks() {
    local playbook
    for playbook in migrate rollback decommission; do
        as_user ansible-playbook -i inventory "zookeeper.migration.$playbook" --syntax-check
    done
}

build_wheelhouse() {
    # the caller's pip settings (index, certificates), the installed builder, the venv's pip
    PYTHON="$venv/bin/python" "$installed/roles/sync_daemon/files/build-wheelhouse.sh" "$scratch/wheelhouse"
    local wanted wheel found
    for wanted in kazoo prometheus_client pyyaml; do
        found=""
        for wheel in "$scratch"/wheelhouse/*.whl; do
            wheel=$(basename "$wheel")
            [[ "${wheel,,}" == "$wanted"-* ]] && found=$wheel
        done
        [[ -n "$found" ]] || fail "the wheelhouse holds no $wanted wheel"
    done
}

install_from_git() {
    local git_collections=$scratch/git-collections
    as_user ansible-galaxy collection install -p "$git_collections" "git+file://$repo_root/.git,HEAD"
    [[ -f "$git_collections/ansible_collections/zookeeper/migration/MANIFEST.json" ]] || fail "the git install has no MANIFEST.json"
    [[ ! -e "$git_collections/ansible_collections/zookeeper/migration/tests" ]] || fail "the git install holds tests/ (build_ignore not applied)"
    echo "git+file://$repo_root/.git,HEAD installed at $git_collections (the committed tree)"
}

step "venv ($ansible_core_spec)" make_venv
step "ansible-galaxy collection install" install_collection
step "pip install -r requirements" install_requirements
step "isolation from the checkout" check_isolation
step "start ZooKeeper 3.8" start_zookeeper
step "smoke.yml (zk_cluster, zk_sync_info)" run_smoke_playbook
step "collection playbooks by name" check_collection_playbooks
step "wheelhouse from the installed builder" build_wheelhouse
if git -C "$repo_root" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    step "ansible-galaxy install git+file://" install_from_git
else
    echo "install-check: $repo_root is not a git repository; the git URL install is not checked"
fi
