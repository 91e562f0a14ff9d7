# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command line for the ZooKeeper harness: local clusters that outlive the command.

    zkcli.py up NAME [--size N] [--version 3.4|3.8|3.9] [--digest-auth] [--tls]
    zkcli.py status                what runs, with connect strings
    zkcli.py down [NAME]           stop and remove one cluster, or all of them

State lives in ``.cache/clusters/state.json``; data and logs under
``.cache/clusters/<name>``.
"""

import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.harness.statefile import load_json_state, save_json_state  # noqa: E402
from tests.harness.zkharness import CACHE_DIR, ZkCluster, four_letter_word  # noqa: E402

STATE_DIR = os.path.join(CACHE_DIR, 'clusters')
STATE_FILE = os.path.join(STATE_DIR, 'state.json')


def _load_state():
    return load_json_state(STATE_FILE)


def _save_state(state):
    save_json_state(STATE_FILE, state)


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _cluster_up(entry):
    return any(pid and _alive(pid) for pid in entry.get('pids', []))


def up(name, size=1, version='3.8', digest_auth=False, tls=False, quiet=False):
    """Start a detached cluster (or report the running one) and record it in the state file."""
    state = _load_state()
    if name in state and _cluster_up(state[name]) and state[name].get('version', '3.8') != version:
        # another version asked for: the running one goes (its data with it)
        down(name, quiet=True)
        state = _load_state()
    if name in state and _cluster_up(state[name]):
        if not quiet:
            print('%s already running: %s' % (name, state[name]['hosts']))
        return state[name], False
    if name in state:
        down(name, quiet=True)
        state = _load_state()
    cluster = ZkCluster(name, size=size, version=version, base_dir=STATE_DIR, digest_auth=digest_auth, tls=tls,
                        track_processes=False)
    cluster.start()
    entry = cluster.describe()
    entry['client_spec'] = cluster.client_spec()
    state[name] = entry
    _save_state(state)
    if not quiet:
        print('%s up: %s' % (name, entry['hosts']))
    return entry, True


def down(name=None, quiet=False):
    """Stop one cluster (or every recorded one) and remove its data."""
    state = _load_state()
    names = [name] if name else list(state)
    for each in names:
        entry = state.pop(each, None)
        if entry is None:
            continue
        for pid in entry.get('pids', []):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and any(pid and _alive(pid) for pid in entry.get('pids', [])):
            time.sleep(0.1)
        for pid in entry.get('pids', []):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        directory = entry.get('directory')
        if directory and directory.startswith(STATE_DIR):
            import shutil
            shutil.rmtree(directory, ignore_errors=True)
        if not quiet:
            print('%s stopped' % each)
    _save_state(state)


def status():
    state = _load_state()
    if not state:
        print('no clusters recorded')
    for name, entry in sorted(state.items()):
        modes = []
        for host in entry['plain_hosts'].split(','):
            address, port = host.rsplit(':', 1)
            answer = four_letter_word(address, int(port), 'srvr')
            mode = [line.split(':', 1)[1].strip() for line in answer.splitlines() if line.startswith('Mode:')]
            modes.append('%s=%s' % (host, mode[0] if mode else 'down'))
        print('%-12s %s' % (name, ' '.join(modes)))
    return state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    p_up = sub.add_parser('up', help='start a cluster')
    p_up.add_argument('name')
    p_up.add_argument('--size', type=int, default=1)
    p_up.add_argument('--version', choices=['3.8', '3.4', '3.9'], default='3.8')
    p_up.add_argument('--digest-auth', action='store_true')
    p_up.add_argument('--tls', action='store_true')
    p_down = sub.add_parser('down', help='stop a cluster (all when no name)')
    p_down.add_argument('name', nargs='?')
    sub.add_parser('status', help='list clusters and member modes')
    sub.add_parser('json', help='print the state file (connect strings, pids)')
    args = parser.parse_args(argv)
    if args.command == 'up':
        up(args.name, size=args.size, version=args.version, digest_auth=args.digest_auth, tls=args.tls)
    elif args.command == 'down':
        down(args.name)
    elif args.command == 'status':
        status()
    elif args.command == 'json':
        print(json.dumps(_load_state(), indent=2, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
