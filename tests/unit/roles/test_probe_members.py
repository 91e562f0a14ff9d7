# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync_daemon role's member probe (roles/sync_daemon/files/probe_members.py) tells DNS, refused and timeout apart.

Real sockets on loopback: a listening socket (ok), a closed port (refused), a
name under .invalid (DNS, which resolves nowhere by RFC 6761), and a
listening socket whose accept queue is full (the kernel drops the SYN: timeout).
"""

import json
import os
import socket
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles', 'sync_daemon', 'files', 'probe_members.py')


def run(*members, timeout=1.0):
    output = subprocess.check_output([sys.executable, SCRIPT, str(timeout)] + list(members), timeout=60)
    return json.loads(output)


def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_ok_refused_dns_and_invalid_are_told_apart():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(8)
    try:
        port = listener.getsockname()[1]
        refused = closed_port()
        found = run('source 127.0.0.1:%d' % port, 'destination 127.0.0.1:%d' % refused, 'control zk1.example.invalid:2181',
                    'source no-port')
    finally:
        listener.close()
    assert found['source 127.0.0.1:%d' % port] == 'ok'
    assert found['destination 127.0.0.1:%d' % refused].startswith('REFUSED: 127.0.0.1 port %d refused' % refused)
    assert found['control zk1.example.invalid:2181'].startswith('DNS: zk1.example.invalid does not resolve')
    assert found['source no-port'].startswith('INVALID')


def test_a_dropped_connection_is_a_timeout():
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        # fill the accept queue (never accepted): the kernel then drops new SYNs, as a firewall would
        for _filler in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(('127.0.0.1', port))
            fillers.append(filler)
        found = run('source 127.0.0.1:%d' % port, timeout=1.0)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    reason = found['source 127.0.0.1:%d' % port]
    if reason == 'ok':
        pytest.skip('this kernel accepted a connection over a full accept queue: no timeout to observe')
    assert reason.startswith('TIMEOUT: no answer from 127.0.0.1 port %d within 1s' % port), reason
