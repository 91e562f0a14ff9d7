# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An inventory for playbooks/migrate.yml over the harness's clusters and systemd hosts.

Laid out like the example inventories (playbooks/inventories/<env>): a
``hosts.yml`` with the ``zk_migration_daemons`` group and
``group_vars/all/main.yml`` with the ``zk_migration_*`` variables. The
end-to-end test and ``make demo`` both write theirs with ``write_inventory``.
The harness's secrets are test secrets, written in clear; real inventories
keep them in Ansible Vault.
"""

import json
import os

from tests.harness import hosts as hosts_harness
from tests.harness.zkharness import SUPER_PASSWORD, SUPER_USER

MIGRATOR_CREDENTIAL = 'migrator'
METRICS_PORT = 9464


def harness_credentials():
    """The credentials map for the harness's superDigest identity."""
    return {MIGRATOR_CREDENTIAL: {'type': 'digest', 'username': SUPER_USER, 'password': SUPER_PASSWORD}}


def cluster_registration(name, host_list, digest_auth=True):
    """A zk_migration_source/destination value for a harness cluster."""
    registration = {'name': name, 'hosts': list(host_list), 'session_timeout': 6}
    if digest_auth:
        registration['auth'] = {'scheme': 'digest', 'username': SUPER_USER, 'credential': MIGRATOR_CREDENTIAL}
    return registration


def write_inventory(directory, daemon_hosts, source, destination, task, paths, mode='one_way', wheelhouse_dir=None,
                    extra_vars=None):
    """Write the inventory into ``directory`` and return its path.

    ``daemon_hosts``: harness ``Host`` objects (tests/harness/hosts.py);
    ``source``/``destination``: ``cluster_registration`` dicts.
    """
    os.makedirs(os.path.join(directory, 'group_vars', 'all'), exist_ok=True)
    daemons = {}
    for host in daemon_hosts:
        host_vars = host.inventory_vars()
        # the hosts share the machine's network: each binds its own loopback address
        host_vars['sync_daemon_metrics_address'] = '%s:%d' % (host.address, METRICS_PORT)
        # one ssh round trip per task instead of three (the role runs ~80 tasks a host)
        host_vars['ansible_pipelining'] = True
        daemons[host.name] = host_vars
    inventory = {'all': {'children': {'zk_migration_daemons': {'hosts': daemons}}}}
    variables = {
        'zk_migration_task': task,
        'zk_migration_source': source,
        'zk_migration_destination': destination,
        'zk_migration_paths': list(paths),
        'zk_migration_mode': mode,
        'zk_migration_credentials': harness_credentials(),
        'zk_migration_poll_interval': 2,
        'zk_migration_verify_settle': 3,
        'zk_migration_report_dir': os.path.join(directory, 'reports'),
        'sync_daemon_require_ha': True,
        'sync_daemon_settings': {'status_interval': 1.0},
    }
    if wheelhouse_dir:
        variables['sync_daemon_wheelhouse_dir'] = wheelhouse_dir
    variables.update(extra_vars or {})
    # JSON is YAML: no YAML library needed on the controller side of the harness
    with open(os.path.join(directory, 'hosts.yml'), 'w') as handle:
        json.dump(inventory, handle, indent=2, sort_keys=True)
    with open(os.path.join(directory, 'group_vars', 'all', 'main.yml'), 'w') as handle:
        json.dump(variables, handle, indent=2, sort_keys=True)
    return directory


def wheelhouse_for(host, repo_root, log=None):
    """Build (or reuse) the wheelhouse of the daemon's dependencies for ``host``'s Python; return its path."""
    import subprocess
    import sys
    probe = host.ssh("python3 -c \"import platform, sys; print('%d.%d %s' % (sys.version_info[:2] + (platform.machine(),)))\"")
    version, machine = probe.stdout.split()
    wheelhouse = os.path.join(hosts_harness.CACHE_DIR, 'wheelhouse')
    env = dict(os.environ, PYTHON=sys.executable, TARGET_PYTHON_VERSION=version, TARGET_PLATFORM='manylinux2014_%s' % machine)
    result = subprocess.run([os.path.join(repo_root, 'roles', 'sync_daemon', 'files', 'build-wheelhouse.sh'), wheelhouse], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if result.returncode != 0:
        raise RuntimeError('building the wheelhouse failed:\n%s' % result.stdout[-3000:])
    if log:
        log(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else 'wheelhouse ready')
    return wheelhouse
