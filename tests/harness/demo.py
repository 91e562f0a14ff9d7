# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make demo`: a whole migration on this machine, through playbooks/migrate.yml.

    demo.py run [--zk-version 3.8|3.9]
                    source (3 nodes, sample data, live ephemerals) and destination
                    (3 nodes) ZooKeeper ensembles with digest auth, two systemd
                    hosts for the sync daemons, an inventory under .cache/demo,
                    then migrate.yml through verify and cutover; prints the
                    verification summary
    demo.py down    stops the demo's hosts and clusters

Everything stays up after `run` (except the daemons, stopped by the cutover)
so it can be looked at; `make demo-down` removes it.
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.harness import hosts as hosts_harness  # noqa: E402
from tests.harness import zkcli  # noqa: E402
from tests.harness.migration_inventory import cluster_registration, wheelhouse_for, write_inventory  # noqa: E402
from tests.harness.zkharness import CACHE_DIR, SUPER_PASSWORD, SUPER_USER, load_sample_tree  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO_DIR = os.path.join(CACHE_DIR, 'demo')
HOST_SET = 'demo'
FIRST_ADDRESS = '127.0.0.51'
CLUSTERS = ('demo-source', 'demo-destination')
TASK = 'demo-app'
PATHS = ['/app', '/config']


def log(message):
    print('demo: %s' % message, flush=True)


def _super_client(hosts):
    from kazoo.client import KazooClient
    client = KazooClient(hosts=hosts, timeout=10, auth_data=[('digest', '%s:%s' % (SUPER_USER, SUPER_PASSWORD))])
    client.start(timeout=30)
    return client


def run(version='3.8'):
    source, created = zkcli.up(CLUSTERS[0], size=3, version=version, digest_auth=True, quiet=True)
    destination, _created = zkcli.up(CLUSTERS[1], size=3, version=version, digest_auth=True, quiet=True)
    log('source      (ZooKeeper %s, 3 nodes, digest auth): %s' % (version, source['plain_hosts']))
    log('destination (ZooKeeper %s, 3 nodes, digest auth): %s' % (version, destination['plain_hosts']))
    client = _super_client(source['plain_hosts'])
    # a live client's service registrations: ephemerals, which a migration never copies
    holder = _super_client(source['plain_hosts'])
    try:
        if created or not client.exists('/app'):
            summary = load_sample_tree(client, base='/app', services=4, ephemeral_holder=holder)
            client.ensure_path('/config/global')
            client.set('/config/global', b'{"feature_flags": ["a", "b"]}')
            log('loaded the sample tree: %d persistent znodes under /app and /config, %d ephemeral'
                % (summary['persistent'] + 2, summary['ephemeral']))
        log('booting two systemd hosts for the sync daemons (the first run also builds their Debian rootfs)')
        daemon_hosts = hosts_harness.up(2, set_name=HOST_SET, first_address=FIRST_ADDRESS, log=log)
        wheelhouse = wheelhouse_for(daemon_hosts[0], REPO_ROOT, log=log)
        inventory = write_inventory(
            os.path.join(DEMO_DIR, 'inventory'), daemon_hosts,
            cluster_registration('self-managed', source['plain_hosts'].split(',')),
            cluster_registration('managed', destination['plain_hosts'].split(',')),
            task=TASK, paths=PATHS, mode='one_way', wheelhouse_dir=wheelhouse,
            # The demo's migration identity is the servers' super user (it reads every ACL of the sample tree): the
            # freeze proof refuses a super user unless told that no application uses it, which is true here.
            extra_vars={'zk_migration_report_dir': os.path.join(DEMO_DIR, 'reports'), 'zk_migration_allow_shared_identity': True})
        log('inventory: %s' % inventory)
        command = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory,
                   os.path.join(REPO_ROOT, 'playbooks', 'migrate.yml'), '-e', 'zk_migration_cutover=true']
        log('running: %s' % ' '.join(command))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(CACHE_DIR, 'collections'), ANSIBLE_HOST_KEY_CHECKING='0',
                   ANSIBLE_PYTHON_INTERPRETER=sys.executable, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get('PATH', ''))
        result = subprocess.run(command, env=env, cwd=REPO_ROOT, check=False)
        if result.returncode != 0:
            log('migrate.yml failed (exit code %d); everything is still up for a look, `make demo-down` removes it'
                % result.returncode)
            return result.returncode
    finally:
        holder.stop()
        holder.close()
        client.stop()
        client.close()
    report_path = os.path.join(DEMO_DIR, 'reports', '%s-verify.json' % TASK)
    with open(report_path) as handle:
        report = json.load(handle)
    counts = report.get('counts', {})
    print('')
    print('Verification summary of task %s (%s)' % (TASK, report_path))
    print('  in sync: %s' % report.get('in_sync'))
    for key in ('source_nodes', 'destination_nodes', 'missing', 'extra', 'data_mismatch', 'acl_mismatch', 'type_mismatch',
                'counter_behind', 'ephemeral_skipped'):
        print('  %-18s %s' % (key, counts.get(key)))
    print('')
    print('The cutover is done: the source is frozen read-only and the sync daemons are stopped.')
    print('Look around:   .venv/bin/zk-shell --run-once "tree /app" %s' % destination['plain_hosts'].split(',')[0])
    print('Roll back:     ANSIBLE_COLLECTIONS_PATH=.cache/collections .venv/bin/ansible-playbook -i %s playbooks/rollback.yml'
          % os.path.relpath(inventory, REPO_ROOT))
    print('Remove it all: make demo-down')
    return 0


def down():
    hosts_harness.down(HOST_SET, log=log)
    for name in CLUSTERS:
        zkcli.down(name)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('command', choices=['run', 'down'])
    parser.add_argument('--zk-version', choices=['3.8', '3.9'], default='3.8',
                        help='ZooKeeper version of both ensembles (3.9: Debian trixie\'s 3.9.3, fetched on first use)')
    args = parser.parse_args(argv)
    return run(args.zk_version) if args.command == 'run' else down()


if __name__ == '__main__':
    sys.exit(main())
