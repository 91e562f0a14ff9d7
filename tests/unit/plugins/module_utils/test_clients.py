# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure parts of _clients.py, on answers captured from real 3.8 and 3.4.13 servers of the harness."""

from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils import _clients

CONS_38 = (' /127.0.0.1:41156[1](queued=0,recved=12,sent=12,sid=0x100017280d40000,lop=PING,est=1796479124973,to=10000,'
           'lcxid=0x7,lzxid=0x3,lresp=24294335,llat=0,minlat=0,avglat=4,maxlat=38)\n /127.0.0.1:36942[0](queued=0,recved=1,sent=0)\n\n')
CONS_34 = (' /127.0.0.1:51014[0](queued=0,recved=1,sent=0)\n /127.0.0.1:33624[1](queued=0,recved=12,sent=12,sid=0x1000173519b0000,'
           'lop=PING,est=1796479178330,to=10000,lcxid=0x7,lzxid=0x3,lresp=24347280,llat=1,minlat=0,avglat=1,maxlat=6)\n\n')
WCHC = '0x100017280d40000\n\t/w/x\n\t/w\n\n'
MNTR = 'zk_version\t3.8.0-x, built on 2024-12-29 17:54 UTC\nzk_server_state\tstandalone\nzk_num_alive_connections\t2\nzk_avg_latency\t4.6667\n'


def test_cons_of_both_versions():
    for text, session, port in ((CONS_38, '0x100017280d40000', 41156), (CONS_34, '0x1000173519b0000', 33624)):
        found = _clients.parse_cons(text)
        # the connection without a session (the one asking) is left out
        assert len(found) == 1
        assert found[0]['session'] == session and found[0]['host'] == '127.0.0.1' and found[0]['port'] == port
        assert found[0]['last_operation'] == 'PING' and found[0]['received'] == 12 and found[0]['timeout_ms'] == 10000
        assert found[0]['established_ms'] > 1700000000000


def test_ipv6_clients_and_watches_and_mntr():
    found = _clients.parse_cons(' /[0:0:0:0:0:0:0:1]:5000[1](queued=0,recved=1,sent=1,sid=0xabc,lop=GETD,est=1,to=4000)\n')
    assert found[0]['host'] == '0:0:0:0:0:0:0:1' and found[0]['session'] == '0xabc'
    assert _clients.parse_wchc(WCHC) == {'0x100017280d40000': ['/w/x', '/w']}
    values = _clients.parse_mntr(MNTR)
    assert values['zk_num_alive_connections'] == 2 and values['zk_avg_latency'] == 4.6667 and values['zk_server_state'] == 'standalone'


def test_a_refused_word_names_the_setting():
    assert '4lw.commands.whitelist' in _clients.refused('cons', 'cons is not executed because it is not in the whitelist.')
    assert _clients.refused('cons', CONS_38) is None


def test_allow_list_takes_addresses_and_networks():
    assert _clients.allowed('10.0.3.17', ['10.0.3.0/24'])
    assert _clients.allowed('10.0.3.17', ['10.0.3.17'])
    assert not _clients.allowed('10.0.4.1', ['10.0.3.0/24', 'monitor'])


SESSION = st.fixed_dictionaries({
    'session': st.sampled_from(['0x1', '0x2', '0x3', '0x4']),
    'host': st.sampled_from(['10.0.0.1', '10.0.0.2', '10.0.1.9']),
    'member': st.sampled_from(['zk1:2181', 'zk2:2181']),
    'last_operation': st.sampled_from(['PING', 'GETD', None]),
})


@given(sessions=st.lists(SESSION, max_size=12), own=st.lists(st.sampled_from(['0x1', '0x2']), max_size=2),
       allow=st.lists(st.sampled_from(['10.0.0.0/24', '10.0.1.9']), max_size=1))
def test_our_sessions_and_allowed_hosts_are_never_counted(sessions, own, allow):
    hosts = _clients.group_by_host(sessions, own=own, allow=allow)
    counted = set(session for entry in hosts.values() for session in entry['session_ids'])
    assert not counted & set(own)
    assert not any(_clients.allowed(host, allow) for host in hosts)
    expected = set((s['host'], s['session']) for s in sessions if s['session'] not in own and not _clients.allowed(s['host'], allow))
    assert sum(entry['sessions'] for entry in hosts.values()) == len(expected)


# The AdminServer's answers, captured from the harness' 3.8 server (admin.enableServer=true)
ADMIN_CONNECTIONS = {
    'connections': [{'remote_socket_address': '127.0.0.2:47104', 'interest_ops': 1, 'outstanding_requests': 0, 'packets_received': 3,
                     'packets_sent': 3, 'session_id': 72059834843725824, 'last_operation': 'GETC', 'established': 1796489035601,
                     'session_timeout': 10000, 'last_cxid': 2, 'last_zxid': 1}],
    'secure_connections': [{'remote_socket_address': '[0:0:0:0:0:0:0:1]:5000', 'session_id': 2748, 'last_operation': 'PING'}],
    'command': 'connections', 'error': None}
ADMIN_WATCHES = {'session_id_to_watched_paths': {'72059834843725824': ['/zookeeper', '/a']}, 'command': 'watches', 'error': None}
REFUSED = 'cons is not executed because it is not in the whitelist.'


def test_admin_server_answers_parse_like_cons_and_wchc():
    found = _clients.parse_admin_connections(ADMIN_CONNECTIONS)
    assert [(s['host'], s['port'], s['session'], s['last_operation']) for s in found] == [
        ('127.0.0.2', 47104, '0x1000209ba6f0000', 'GETC'), ('0:0:0:0:0:0:0:1', 5000, '0xabc', 'PING')]
    assert found[0]['received'] == 3 and found[0]['timeout_ms'] == 10000
    assert _clients.parse_admin_watches(ADMIN_WATCHES) == {'0x1000209ba6f0000': ['/a', '/zookeeper']}


class _Spec(object):
    name = 'src'
    hosts = ['zk1:2181', 'zk2:2181']
    tls = None


def test_a_member_refusing_cons_is_read_from_its_admin_server_when_the_port_is_registered():
    asked = []

    def ask(member, word, tls=None, timeout=None):
        return REFUSED.replace('cons', word) if member == 'zk1:2181' else CONS_38

    def ask_admin(member, port, command, timeout=None):
        asked.append((member, port, command))
        return ADMIN_WATCHES if command == 'watches' else ADMIN_CONNECTIONS

    report = _clients.list_clients(_Spec(), watches=True, ask=ask, admin_port=8080, ask_admin=ask_admin)
    assert report['complete'] and report['members']['zk1:2181'] == {'sessions': 2, 'via': 'admin'}
    assert report['members']['zk2:2181']['via'] == 'cons'
    assert ('zk1:2181', 8080, 'connections') in asked and ('zk1:2181', 8080, 'watches') in asked
    assert report['hosts']['127.0.0.2']['watches'] == ['/a', '/zookeeper']
    # without the port, the member is reported with the setting to change, and the others are still listed
    report = _clients.list_clients(_Spec(), ask=ask)
    assert not report['complete'] and 'admin_port' in report['members']['zk1:2181']['error']
    assert report['members']['zk2:2181']['sessions'] == 1


def test_connection_counts_fall_back_to_the_admin_server_monitor():
    def ask(member, word, tls=None, timeout=None):
        return REFUSED.replace('cons', word) if member == 'zk1:2181' else MNTR

    counts = _clients.connection_count(_Spec(), ask=ask, admin_port=8080,
                                       ask_admin=lambda member, port, command, timeout=None: {'num_alive_connections': 7})
    assert counts == {'zk1:2181': {'connections': 7}, 'zk2:2181': {'connections': 2}}
    assert 'mntr' in _clients.connection_count(_Spec(), ask=ask)['zk1:2181']['error']
