# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd test bed itself (tests/harness/hosts.py): real systemd hosts in systemd-nspawn.

Two hosts boot once for this module and are always torn down, also when a
test fails. The first test that runs on a fresh machine also builds the
cached Debian rootfs (mmdebstrap, 45 s to a few minutes depending on the
mirror): hence the module's long timeout.
"""

import os
import re
import socket

import pytest

from tests.harness import hosts as hosts_harness
from tests.harness.hosts import HostError, HostSet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# This module's own loopback addresses (molecule uses .21/.22, the end-to-end test others).
FIRST_ADDRESS = '127.0.0.31'
SPARE_ADDRESS = '127.0.0.35'


@pytest.fixture(scope='module')
def two_hosts():
    """Two booted hosts, removed at the end of the module whatever happened."""
    with HostSet('pytest-bed', count=2, first_address=FIRST_ADDRESS) as host_set:
        yield host_set


def _ssh_port_open(address):
    try:
        with socket.create_connection((address, hosts_harness.SSH_PORT), timeout=1):
            return True
    except OSError:
        return False


def _assert_gone(host):
    """Nothing of ``host`` is left: no process, mount, cgroup, disk or listening sshd."""
    assert not host.running
    assert not os.path.exists(host.directory)
    with open('/proc/self/mounts') as handle:
        assert host.merged not in handle.read()
    for root in hosts_harness._cgroup_roots():  # pylint: disable=protected-access
        assert not os.path.exists(os.path.join(root, host.cgroup_name))
    assert not _ssh_port_open(host.address)
    assert host.name not in [each.name for each in hosts_harness.hosts_in_state()]


def test_hosts_boot_systemd_and_answer_ssh(two_hosts):
    assert len(two_hosts) == 2
    for index, host in enumerate(two_hosts):
        assert host.address == '127.0.0.%d' % (31 + index)
        facts = host.ssh('cat /proc/1/comm; hostname; systemctl is-system-running; '
                         'python3 -c "import sys, venv; print(sys.version_info[:2] >= (3, 9))"; '
                         'sshd -T | grep -i "^listenaddress"; systemctl is-enabled systemd-networkd.service || true'
                         ).stdout.split()
        # systemd is PID 1 and booted cleanly; the host has the name and the
        # Python the role needs; sshd binds only this host's address; networkd is masked.
        assert facts[0] == 'systemd'
        assert facts[1] == host.name
        assert facts[2] == 'running'
        assert facts[3] == 'True'
        assert facts[4:6] == ['listenaddress', '%s:22' % host.address]
        assert facts[6] == 'masked'


def test_hosts_are_distinct_machines(two_hosts):
    first, second = two_hosts
    first.ssh('echo written-on-first > /root/marker')
    assert second.ssh('cat /root/marker', check=False).returncode != 0
    machine_ids = {host.ssh('cat /etc/machine-id').stdout.strip() for host in two_hosts}
    assert len(machine_ids) == 2


def test_hosts_reach_zookeeper_on_loopback(two_hosts, zk_standalone):
    address, port = zk_standalone.host_list[0].rsplit(':', 1)
    probe = ('python3 -c "import socket; s = socket.create_connection((\'%s\', %s), 5); s.sendall(b\'srvr\'); '
             'print(s.makefile().read())"' % (address, port))
    for host in two_hosts:
        assert 'Mode: standalone' in host.ssh(probe).stdout


def test_freeze_and_thaw(two_hosts):
    host = two_hosts[0]
    host.freeze()
    try:
        assert host.state == 'frozen'
        assert host.ssh('true', check=False, timeout=3).returncode != 0
    finally:
        host.thaw()
    assert host.state == 'running'
    assert host.ssh('systemctl is-system-running').stdout.strip() == 'running'


def test_crash_one_host_and_boot_it_again(two_hosts):
    crashed, survivor = two_hosts
    crashed.ssh('echo before-the-crash > /var/tmp/marker')
    boots_before = len(crashed.ssh('journalctl --list-boots --no-pager -q').stdout.strip().splitlines())
    old_pid1 = crashed.pid1
    crashed.crash()
    assert crashed.state == 'stopped'
    assert not os.path.exists('/proc/%d' % old_pid1)
    assert not _ssh_port_open(crashed.address)
    # the other host does not notice
    assert survivor.ssh('systemctl is-system-running').stdout.strip() == 'running'

    crashed.start()
    # A crash is a power failure, not a wipe: the disk survives the reboot.
    assert crashed.ssh('cat /var/tmp/marker').stdout.strip() == 'before-the-crash'
    boots = crashed.ssh('journalctl --list-boots --no-pager -q').stdout.strip().splitlines()
    assert len(boots) == boots_before + 1


def test_clean_stop(two_hosts):
    host = two_hosts[1]
    host.ssh('systemctl is-system-running')
    size_before = os.path.getsize(host.console_log)
    host.stop()
    assert host.state == 'stopped'
    assert not _ssh_port_open(host.address)
    with open(host.console_log, 'rb') as handle:
        handle.seek(size_before)
        shutdown_output = handle.read().decode('utf-8', 'replace')
    # systemd ran its shutdown sequence: a power-off, not a kill
    assert re.search(r'System Power Off|Halting system|Power-Off', shutdown_output), shutdown_output[-2000:]


def test_teardown_also_when_the_block_fails():
    host_set = HostSet('pytest-teardown', count=1, first_address=SPARE_ADDRESS)
    with pytest.raises(RuntimeError, match='test failure inside the block'):
        with host_set:
            host = host_set[0]
            assert host.ssh('true').returncode == 0
            raise RuntimeError('test failure inside the block')
    _assert_gone(host)


def test_address_clash_is_refused(two_hosts):
    with pytest.raises(HostError, match='already used by host pytest-bed-1'):
        hosts_harness.up(1, set_name='pytest-clash', first_address=FIRST_ADDRESS)
