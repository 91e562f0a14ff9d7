# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A short chaos run (tests/harness/chaos.py) in `make test`: the long ones are `make chaos`.

Two 3-node ensembles, two daemons, writers on both clusters in disjoint key
spaces and a shared one; while the writers run, the leading daemon is
killed -9, frozen past its session timeout, cut off from one of its
servers and restarted, and the leader of each ensemble restarted. Every
acknowledged operation must hold.
"""

import pytest

from tests.harness.chaos import ChaosRun, summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEDULE = ['kill_leader', 'restart_source_leader', 'freeze_leader', 'restart_destination_leader', 'freeze_leader_server',
            'restart_leader']


@pytest.mark.timeout(420)
def test_short_chaos_run_keeps_every_acknowledged_write(tmp_path):
    chaos = ChaosRun(duration=75.0, daemons=2, seed=20261205, rate=100, fault_every=11.0, schedule=SCHEDULE,
                     output=str(tmp_path / 'chaos'))
    figures = chaos.run()
    print(summary(figures))
    hit = dict((fault['fault'], fault) for fault in figures['fault_log'] if not fault.get('skipped'))
    # the faults this run is about all happened: a crash, a pause past the session, an ensemble leader restarted
    assert {'kill_leader', 'freeze_leader', 'restart_source_leader', 'restart_destination_leader'} <= set(hit), figures['fault_log']
    assert '(leader)' in hit['restart_source_leader']['detail'] + hit['restart_destination_leader']['detail'], figures['fault_log']
    assert figures['leader_changes'] >= 2, figures['leadership_terms']
    assert figures['undone_writes'] == 0, figures['examples']['undone']
    assert figures['conflicts_disjoint'] == 0, figures['examples']['disjoint_conflicts']
    assert figures['final_state_wrong'] == 0, figures['examples']['wrong']
    assert not figures['writers_crashed'], figures['writers_crashed']
    assert figures['trees_equal'], figures.get('tree_diff')
    for writer, counts in figures['operations'].items():
        assert counts['ok'] > 0, writer
    assert figures['passed']
