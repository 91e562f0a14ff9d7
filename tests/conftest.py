# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pytest fixtures: real ZooKeeper clusters, started once per session.

Cluster fixtures are session-scoped and started lazily (a run that needs no
TLS server never starts one); each test gets its own base path through
``zk_path`` so tests share clusters without seeing each other's nodes. Tests
that kill or restart members use ``zk_cluster_factory`` for clusters of
their own. When any test fails, the server logs of every cluster are kept
under ``tests/output/zk-logs``.
"""

import importlib
import os
import re
import sys
import itertools

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')
COLLECTION_LINK = os.path.join(COLLECTIONS_DIR, 'ansible_collections', 'zookeeper', 'migration')


def _ensure_collection_importable():
    """Make ``ansible_collections.zookeeper.migration`` importable from this checkout."""
    if not os.path.islink(COLLECTION_LINK) and not os.path.exists(COLLECTION_LINK):
        os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
        os.symlink(REPO_ROOT, COLLECTION_LINK)
        # PYTHONPATH may name .cache/collections from before it existed: the import system remembered it as empty.
        importlib.invalidate_caches()
    for path in (COLLECTIONS_DIR, REPO_ROOT):
        if path not in sys.path:
            sys.path.insert(0, path)


_ensure_collection_importable()

from tests.harness.zkharness import ZkCluster  # noqa: E402  (needs the sys.path set above)

LOG_DIR = os.path.join(REPO_ROOT, 'tests', 'output', 'zk-logs')
_failed_tests = []
_path_counter = itertools.count(1)


def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and call.when in ('setup', 'call'):
        _failed_tests.append(item.nodeid)


class _ClusterPool(object):
    """Session clusters by name, started on first use and destroyed at session end."""

    def __init__(self):
        self.clusters = {}

    def get(self, name, **options):
        if name not in self.clusters:
            cluster = ZkCluster(name, **options)
            try:
                cluster.start()
            except Exception:
                cluster.destroy(keep_logs_in=LOG_DIR)
                raise
            self.clusters[name] = cluster
        return self.clusters[name]

    def destroy_all(self, keep_logs):
        for cluster in self.clusters.values():
            cluster.destroy(keep_logs_in=LOG_DIR if keep_logs else None)
        self.clusters.clear()


@pytest.fixture(scope='session')
def zk_pool():
    pool = _ClusterPool()
    yield pool
    pool.destroy_all(keep_logs=bool(_failed_tests))


@pytest.fixture(scope='session')
def zk_standalone(zk_pool):
    """ZooKeeper 3.8 standalone server."""
    return zk_pool.get('standalone')


@pytest.fixture(scope='session')
def zk_source(zk_pool):
    """3-node ZooKeeper 3.8 ensemble playing the migration source."""
    return zk_pool.get('source', size=3)


@pytest.fixture(scope='session')
def zk_dest(zk_pool):
    """3-node ZooKeeper 3.8 ensemble playing the migration destination."""
    return zk_pool.get('destination', size=3)


@pytest.fixture(scope='session')
def zk_auth(zk_pool):
    """3.8 standalone with a superDigest identity (``.super_user`` / ``.super_password``)."""
    return zk_pool.get('digest', digest_auth=True)


@pytest.fixture(scope='session')
def zk_tls(zk_pool):
    """3.8 standalone serving TLS on ``.hosts`` (client cert required: ``.ca_file``, ``.cert_file``, ``.key_file``)."""
    return zk_pool.get('tls', tls=True)


@pytest.fixture(scope='session')
def zk_ext(zk_pool):
    """3.8 standalone with extendedTypesEnabled (TTL nodes) and a 1 s container check interval."""
    return zk_pool.get('extended', extended_types=True, container_check_ms=1000)


@pytest.fixture(scope='session')
def zk_34(zk_pool):
    """ZooKeeper 3.4.13 standalone (the jar from Debian bullseye)."""
    return zk_pool.get('zk34', version='3.4')


@pytest.fixture(scope='session')
def zk_39(zk_pool):
    """ZooKeeper 3.9.3 standalone (Debian trixie's jars)."""
    return zk_pool.get('zk39', version='3.9')


@pytest.fixture
def zk_cluster_factory():
    """Make clusters owned by one test (for tests that kill, freeze or restart members)."""
    made = []

    def make(name='private', **options):
        cluster = ZkCluster(name, **options)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.destroy(keep_logs_in=LOG_DIR if _failed_tests else None)


@pytest.fixture
def zk_path(request):
    """A base path unique to this test, e.g. ``/t/test_copy_binary_12``."""
    name = re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)[:80]
    return '/t/%s_%d' % (name, next(_path_counter))


@pytest.fixture
def zk_client_factory():
    """Started kazoo clients for a cluster, stopped and closed after the test."""
    clients = []

    def make(cluster, auth=True, **overrides):
        client = cluster.client(auth=auth, **overrides)
        clients.append(client)
        return client

    yield make
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:  # pylint: disable=broad-except
            pass
