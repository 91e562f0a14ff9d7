# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the integration tests that run real sync daemons."""

import pytest

from tests.integration.sync_support import SyncEnv, cleanup_daemons


@pytest.fixture
def sync_env(zk_source, zk_dest, zk_path, tmp_path, zk_client_factory):
    """Both session clusters registered under a control root of the test's own; daemons started on demand (``env.daemon``)."""
    src = zk_client_factory(zk_source)
    dst = zk_client_factory(zk_dest)
    src.ensure_path(zk_path)
    env = SyncEnv(zk_source, zk_dest, zk_path, tmp_path, src, dst)
    yield env
    cleanup_daemons(env.daemons)
    print(env.logs())   # pytest shows captured teardown output only when the test failed


@pytest.fixture
def cutover_env(zk_source, zk_dest, zk_path, tmp_path, zk_client_factory):
    """``CutoverEnv`` (test_cutover_engine.py): a digest migration identity, a varied source tree, daemons on demand."""
    from tests.integration.test_cutover_engine import CutoverEnv
    environment = CutoverEnv(zk_source, zk_dest, zk_path, tmp_path, zk_client_factory)
    yield environment
    cleanup_daemons(environment.daemons)
    print(environment.logs())   # pytest shows captured teardown output only when the test failed
