# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _hosts.py: the one parser of member addresses (options, registrations, the daemon's config)."""

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _errors as errors
from ansible_collections.zookeeper.migration.plugins.module_utils._hosts import parse_host, split_host_port


@pytest.mark.parametrize('entry, expected', [
    ('zk1:2181', 'zk1:2181'),
    ('zk1', 'zk1:2181'),
    (' 10.0.0.1:2182 ', '10.0.0.1:2182'),
    ('[::1]:2181', '[::1]:2181'),
    ('[fe80::1]', '[fe80::1]:2181'),
    ('slb-endpoint.example.internal:2181', 'slb-endpoint.example.internal:2181'),
])
def test_parse_host_normalises(entry, expected):
    assert parse_host(entry) == expected


@pytest.mark.parametrize('entry, fragment', [
    ('', 'empty'),
    ('zk1:0', 'invalid port'),
    ('zk1:65536', 'invalid port'),
    ('zk1:abc', 'invalid port'),
    ('::1:2181', 'brackets'),
    ('[::1', 'unclosed'),
    ('zk 1:2181', 'not a valid host'),
    (2181, 'must be a "host:port" string'),
])
def test_parse_host_rejects(entry, fragment):
    with pytest.raises(errors.ConfigError) as info:
        parse_host(entry)
    assert fragment in str(info.value)


@pytest.mark.parametrize('entry, fragment', [
    ('zk1:2181/chroot', 'a chroot goes in chroot'),
    ('user@zk1:2181', 'credentials in a credential'),
    ('zk1:2181,zk2:2181', 'one "host:port" per entry'),
])
def test_a_registration_mistake_is_named(entry, fragment):
    with pytest.raises(errors.ConfigError) as info:
        parse_host(entry, 'cluster \'c\': hosts[0]')
    assert fragment in str(info.value) and "hosts[0]" in str(info.value)


def test_split_host_port_takes_the_brackets_off():
    assert split_host_port('[::1]:2181') == ('::1', 2181)
    assert split_host_port(parse_host('zk1')) == ('zk1', 2181)
