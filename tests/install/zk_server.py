# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real standalone ZooKeeper 3.8 server (digest auth) for ``make install-check``.

Starts one with the test harness (tests/harness/zkharness.py), writes the
variables the smoke playbook needs (its address and the superDigest
identity) as JSON to VARS_FILE, prints the address on stdout, and serves
until it is sent SIGTERM or SIGINT; the server and its data are removed on
the way out (and the harness kills its JVM at any interpreter exit).

Usage: zk_server.py VARS_FILE
Run with the project venv's Python; the collection under test never sees it.
"""

import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.harness.zkharness import ZkCluster  # noqa: E402  (needs the sys.path set above)


def main(vars_file):
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    cluster = ZkCluster('install-check', size=1, version='3.8', digest_auth=True)
    try:
        cluster.start(timeout=90)
        variables = {
            'zk_hosts': cluster.host_list,
            'zk_super_user': cluster.super_user,
            'zk_super_password': cluster.super_password,
        }
        with open(vars_file, 'w', encoding='utf-8') as handle:
            json.dump(variables, handle)
        print(cluster.hosts, flush=True)
        stop.wait()
    finally:
        cluster.destroy()


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
