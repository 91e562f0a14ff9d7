# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The daemon's credentials: secrets only from the credentials file, re-read on SIGHUP, never logged.

The destination is the digest-auth server (superDigest identity); the
control root lives on the source so the daemon can start before it has the
destination's secret.
"""

import json
import os
import signal

import pytest

from kazoo.security import make_digest_acl

from tests.integration.sync_support import (
    DaemonProcess,
    cleanup_daemons,
    make_store,
    put_task,
    task_status,
    wait_for,
    wait_streaming,
    wait_trees_equal,
)

pytestmark = pytest.mark.integration


def _write_credentials(path, mapping):
    with open(path, 'w') as handle:
        json.dump(mapping, handle)
    os.chmod(path, 0o600)


def test_sighup_reloads_credentials_and_refuses_a_bad_file(zk_source, zk_auth, zk_path, tmp_path, zk_client_factory):
    src = zk_client_factory(zk_source)
    dst = zk_client_factory(zk_auth)           # authenticated as the super identity
    root = '/zkm' + zk_path.replace('/', '-')
    store = make_store(src, root)
    store.put_cluster({'name': 'src', 'hosts': zk_source.host_list, 'session_timeout': 4})
    store.put_cluster({'name': 'dst', 'hosts': zk_auth.host_list, 'session_timeout': 4,
                       'auth': {'scheme': 'digest', 'username': zk_auth.super_user, 'credential': 'dst-admin'}})
    src.ensure_path(zk_path)
    src.create(zk_path + '/config', b'secret config')
    src.create(zk_path + '/open', b'open config')
    # on the destination the task path admits only an 'app' identity: writing under it needs the super credential
    dst.create(zk_path, b'', acl=[make_digest_acl('app', 'app-password', all=True)], makepath=True)
    task = put_task(store, 'creds', [zk_path], mode='one_way')
    credentials = str(tmp_path / 'credentials.json')
    _write_credentials(credentials, {'unrelated': {'type': 'digest', 'username': 'someone', 'password': 'x'}})
    daemon = DaemonProcess(str(tmp_path), 'd1', {'hosts': zk_source.host_list}, root, credentials_file=credentials).start()
    try:
        # without the destination's credential the task reports a clear error and retries
        status = wait_for(lambda: task_status(store, task['name']) if task_status(store, task['name']).get('phase') == 'error' else None,
                          what='the task in error')
        assert "credential 'dst-admin' is not defined" in status['last_error']
        _write_credentials(credentials, {'dst-admin': {'type': 'digest', 'username': zk_auth.super_user, 'password': zk_auth.super_password}})
        daemon.signal(signal.SIGHUP)
        wait_streaming(store, task['name'])
        tree = wait_trees_equal(src, dst, zk_path)
        assert tree[zk_path + '/config'] == b'secret config'
        # a broken file on SIGHUP is refused; the previous credentials stay in force
        with open(credentials, 'w') as handle:
            handle.write('{"dst-admin": {"type": "digest", "username": "super"')
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: 'was not reloaded' in daemon.log_text(), what='the refused reload logged')
        src.set(zk_path + '/open', b'changed after the bad reload')
        wait_trees_equal(src, dst, zk_path)
        assert daemon.alive()
        text = daemon.log_text()
        assert zk_auth.super_password not in text and 'app-password' not in text
        assert daemon.stop() == 0
    finally:
        cleanup_daemons([daemon])
        print(daemon.tail(80))
