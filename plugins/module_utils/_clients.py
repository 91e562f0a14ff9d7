# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who still uses a cluster: the client sessions of every member, from the ``cons`` four-letter word.

This is a private module of the zookeeper.migration collection; it may change
without notice.

``cons`` lists each member's connections, one line each::

     /10.0.3.17:41156[1](queued=0,recved=12,sent=12,sid=0x100017280d40000,lop=PING,est=1796479124973,to=10000,...)

(3.4.13 and 3.8 alike). Lines without ``sid`` are connections with no
session yet, such as the one asking. ``wchc`` lists the paths each session
watches. The migration's own sessions (the module's, the daemons' as their
task status records them) are left out, and the rest is grouped by client
host, minus an allow-list of known tools. A member that does not answer,
or refuses the word (``4lw.commands.whitelist``), is reported, not an error.
"""

import ipaddress
import re

from ansible_collections.zookeeper.migration.plugins.module_utils._client import four_letter_word
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, ZkMigrationError

_CONNECTION = re.compile(r'^\s*/(?P<address>\[?[0-9A-Fa-f:.]+\]?):(?P<port>\d+)\[\d+\]\((?P<fields>[^)]*)\)\s*$')
NOT_ALLOWED = 'is not executed because it is not in the whitelist'


def parse_cons(text):
    """[{'client', 'host', 'port', 'session', 'last_operation', 'established_ms', 'received', 'sent', 'timeout_ms'}] of a ``cons`` answer.

    Connections without a session (``sid``) are left out.
    """
    out = []
    for line in (text or '').splitlines():
        match = _CONNECTION.match(line)
        if not match:
            continue
        fields = dict(part.split('=', 1) for part in match.group('fields').split(',') if '=' in part)
        if 'sid' not in fields:
            continue
        host = match.group('address').strip('[]')
        out.append({
            'client': '%s:%s' % (match.group('address'), match.group('port')), 'host': host, 'port': int(match.group('port')),
            'session': fields['sid'].lower(), 'last_operation': fields.get('lop'), 'established_ms': _int(fields.get('est')),
            'received': _int(fields.get('recved')), 'sent': _int(fields.get('sent')), 'timeout_ms': _int(fields.get('to')),
        })
    return out


def parse_wchc(text):
    """{session: [paths]} of a ``wchc`` answer (a session line, then its paths indented)."""
    out = {}
    session = None
    for line in (text or '').splitlines():
        if not line.strip():
            continue
        if line[0] in ' \t':
            if session is not None:
                out[session].append(line.strip())
        else:
            session = line.strip().lower()
            out.setdefault(session, [])
    return out


def parse_mntr(text):
    """{key: value} of a ``mntr`` answer (numbers as numbers)."""
    out = {}
    for line in (text or '').splitlines():
        key, sep, value = line.partition('\t')
        if not sep:
            continue
        value = value.strip()
        try:
            out[key.strip()] = int(value)
        except ValueError:
            try:
                out[key.strip()] = float(value)
            except ValueError:
                out[key.strip()] = value
    return out


def refused(word, text):
    """The message for a four-letter word the member refuses, or None when it answered."""
    if text and NOT_ALLOWED in text:
        return ('the member does not answer %s: add it to 4lw.commands.whitelist in zoo.cfg (or read the AdminServer\'s '
                '"connections" command, on 3.5+)' % word)
    return None


def allowed(host, allow):
    """True when ``host`` is in ``allow`` (addresses, CIDR networks or names)."""
    for entry in allow or ():
        if entry == host:
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def group_by_host(sessions, own=(), allow=()):
    """{host: {'sessions', 'members', 'session_ids', 'last_operations', 'watches'}} of the sessions not ours nor allowed.

    ``own`` holds the migration's session ids (``0x...``); ``allow`` client
    hosts (addresses, CIDR networks) whose sessions are known tools.
    """
    own = set(session.lower() for session in own or ())
    hosts = {}
    for session in sessions:
        if session['session'] in own or allowed(session['host'], allow):
            continue
        entry = hosts.setdefault(session['host'], {'sessions': 0, 'members': [], 'session_ids': [], 'last_operations': [],
                                                   'watches': []})
        if session['session'] not in entry['session_ids']:
            entry['sessions'] += 1
            entry['session_ids'].append(session['session'])
        if session['member'] not in entry['members']:
            entry['members'].append(session['member'])
        if session.get('last_operation') and session['last_operation'] not in entry['last_operations']:
            entry['last_operations'].append(session['last_operation'])
        for path in session.get('watches') or ():
            if path not in entry['watches']:
                entry['watches'].append(path)
    return hosts


def describe(hosts):
    """'10.0.3.17: 4 session(s) on zk1:2181 (last operations PING)' lines, for messages."""
    return ['%s: %d session(s) on %s (last operations %s)%s' % (
        host, entry['sessions'], ', '.join(entry['members']), ', '.join(entry['last_operations']) or 'none',
        '; watching %s' % ', '.join(entry['watches'][:5]) if entry['watches'] else '') for host, entry in sorted(hosts.items())]


def list_clients(spec, own=(), allow=(), watches=False, timeout=3.0, ask=four_letter_word):
    """Who is connected to every member of ``spec`` (a ``ClusterSpec``); returns a report dict.

    ``{'hosts': group_by_host(...), 'clients': N, 'members': {member: {'sessions': n} or {'error': reason}},
    'complete': every member answered, 'notes': [...]}``. ``watches`` adds
    each session's watched paths (``wchc``).
    """
    if not spec.hosts:
        raise ConfigError('cluster %s has no hosts to ask' % spec.name)
    sessions = []
    members = {}
    notes = []
    for member in spec.hosts:
        try:
            text = ask(member, 'cons', tls=spec.tls, timeout=timeout)
        except ZkMigrationError as exc:
            members[member] = {'error': str(exc)}
            continue
        reason = refused('cons', text)
        if reason:
            members[member] = {'error': reason}
            continue
        found = parse_cons(text)
        if watches:
            try:
                watched = ask(member, 'wchc', tls=spec.tls, timeout=timeout)
                reason = refused('wchc', watched)
                if reason:
                    notes.append('%s: %s' % (member, reason))
                else:
                    by_session = parse_wchc(watched)
                    for session in found:
                        session['watches'] = by_session.get(session['session'], [])
            except ZkMigrationError as exc:
                notes.append('%s: watches not read (%s)' % (member, exc))
        for session in found:
            session['member'] = member
        sessions.extend(found)
        members[member] = {'sessions': len(found)}
    if len(spec.hosts) == 1:
        notes.append('the cluster is registered with one address (%s): if it is a load balancer, only the member behind it that '
                     'answered was asked, and clients of the other members are not listed' % spec.hosts[0])
    hosts = group_by_host(sessions, own=own, allow=allow)
    return {'hosts': hosts, 'clients': sum(entry['sessions'] for entry in hosts.values()), 'members': members,
            'complete': all('error' not in found for found in members.values()), 'notes': notes,
            'summary': describe(hosts)}


def connection_count(spec, timeout=3.0, ask=four_letter_word):
    """{member: zk_num_alive_connections or {'error'}} from ``mntr`` (MSE and others may not answer: reported)."""
    out = {}
    for member in spec.hosts:
        try:
            text = ask(member, 'mntr', tls=spec.tls, timeout=timeout)
        except ZkMigrationError as exc:
            out[member] = {'error': str(exc)}
            continue
        reason = refused('mntr', text)
        values = parse_mntr(text)
        if reason or 'zk_num_alive_connections' not in values:
            out[member] = {'error': reason or 'the member answered mntr without zk_num_alive_connections'}
        else:
            out[member] = {'connections': values['zk_num_alive_connections']}
    return out


def migration_sessions(store, cluster):
    """The session ids the sync daemons hold on ``cluster`` (a registration name), from every task's status."""
    own = []
    for name, spec in store.list_tasks().items():
        for side in ('source', 'destination'):
            if spec.get(side) != cluster:
                continue
            status = store.get_status(name) or {}
            for session in ((status.get('details') or {}).get('sessions') or {}).get(side) or ():
                if session not in own:
                    own.append(session)
    return own


def clients_of(store, cluster, credentials, allow=(), watches=False, own=()):
    """``list_clients`` of a registered cluster, the migration's own sessions (daemons' and ``own``) left out."""
    from ansible_collections.zookeeper.migration.plugins.module_utils._task import resolve_cluster
    spec, _acl = resolve_cluster(store, cluster, credentials, 'cluster')
    report = list_clients(spec, own=list(own) + migration_sessions(store, cluster), allow=allow, watches=watches)
    report['cluster'] = cluster
    return report


def _int(value):
    try:
        return int(value, 16) if value and value.lower().startswith('0x') else int(value)
    except (TypeError, ValueError):
        return None


__all__ = ['parse_cons', 'parse_wchc', 'parse_mntr', 'refused', 'allowed', 'group_by_host', 'list_clients', 'connection_count',
           'describe', 'migration_sessions', 'clients_of']
