# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who still uses a cluster: the client sessions of every member, from the ``cons`` four-letter word.

This is a private module of the zookeeper.migration collection; it may change
without notice.

``cons`` lists each member's connections, one line each::

     /10.0.3.17:41156[1](queued=0,recved=12,sent=12,sid=0x100017280d40000,lop=PING,est=1796479124973,to=10000,...)

(3.4.13, 3.8 and 3.9 alike). Lines without ``sid`` are connections with no
session yet, such as the one asking. ``wchc`` lists the paths each session
watches. Where the words are not whitelisted and the registration names the
AdminServer's port (``admin_port``, 3.5+), its ``connections`` and
``watches`` commands answer the same as JSON. The migration's own sessions (the module's, the daemons' as their
task status records them) are left out, and the rest is grouped by client
host, minus an allow-list of known tools. A member that does not answer,
or refuses the word (``4lw.commands.whitelist``), is reported, not an error.
"""

import ipaddress
import re

from ansible_collections.zookeeper.migration.plugins.module_utils._client import admin_command, four_letter_word
from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError, ZkMigrationError
from ansible_collections.zookeeper.migration.plugins.module_utils._registration import resolve_registered

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


def parse_admin_connections(answer):
    """``parse_cons`` records of the AdminServer's ``connections`` answer (plain and TLS connections)."""
    out = []
    for entry in list(answer.get('connections') or ()) + list(answer.get('secure_connections') or ()):
        if not isinstance(entry, dict) or entry.get('session_id') in (None, ''):
            continue
        address, _sep, port = str(entry.get('remote_socket_address') or '').lstrip('/').rpartition(':')
        host = address.strip('[]')
        out.append({
            'client': '%s:%s' % (address, port), 'host': host, 'port': _int(port),
            'session': '0x%x' % _int(str(entry['session_id'])), 'last_operation': entry.get('last_operation'),
            'established_ms': _int(str(entry.get('established'))), 'received': _int(str(entry.get('packets_received'))),
            'sent': _int(str(entry.get('packets_sent'))), 'timeout_ms': _int(str(entry.get('session_timeout'))),
        })
    return out


def parse_admin_watches(answer):
    """{session: [paths]} of the AdminServer's ``watches`` answer (session ids as ``0x...``, like ``wchc``)."""
    out = {}
    for session, paths in (answer.get('session_id_to_watched_paths') or {}).items():
        number = _int(str(session))
        if number is not None:
            out['0x%x' % number] = sorted(paths or ())
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
        return ('the member does not answer %s: add it to 4lw.commands.whitelist in zoo.cfg, or enable the AdminServer '
                '(admin.enableServer, 3.5+) and set admin_port in the cluster registration' % word)
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


def list_clients(spec, own=(), allow=(), watches=False, timeout=3.0, ask=four_letter_word, admin_port=None, ask_admin=admin_command):
    """Who is connected to every member of ``spec`` (a ``ClusterSpec``); returns a report dict.

    ``{'hosts': group_by_host(...), 'clients': N, 'members': {member: {'sessions': n, 'via'} or {'error': reason}},
    'complete': every member answered, 'notes': [...]}``. ``watches`` adds
    each session's watched paths (``wchc``). A member that refuses ``cons``
    is asked its AdminServer on ``admin_port`` when one is given.
    """
    if not spec.hosts:
        raise ConfigError('cluster %s has no hosts to ask' % spec.name)
    sessions = []
    members = {}
    notes = []
    for member in spec.hosts:
        try:
            found, via = _member_sessions(member, spec, timeout, ask, admin_port, ask_admin)
        except ZkMigrationError as exc:
            members[member] = {'error': str(exc)}
            continue
        if watches:
            note = _add_watches(found, member, via, spec, timeout, ask, admin_port, ask_admin)
            if note:
                notes.append('%s: %s' % (member, note))
        for session in found:
            session['member'] = member
        sessions.extend(found)
        members[member] = {'sessions': len(found), 'via': via}
    if len(spec.hosts) == 1:
        notes.append('the cluster is registered with one address (%s): if it is a load balancer, only the member behind it that '
                     'answered was asked, and clients of the other members are not listed' % spec.hosts[0])
    hosts = group_by_host(sessions, own=own, allow=allow)
    return {'hosts': hosts, 'clients': sum(entry['sessions'] for entry in hosts.values()), 'members': members,
            'complete': all('error' not in found for found in members.values()), 'notes': notes,
            'summary': describe(hosts)}


class _Refused(ZkMigrationError):
    """A member refused a four-letter word (not whitelisted)."""


def _member_sessions(member, spec, timeout, ask, admin_port, ask_admin):
    """(sessions, 'cons' or 'admin') of one member; raises ZkMigrationError with the reason it could not be read."""
    text = ask(member, 'cons', tls=spec.tls, timeout=timeout)
    reason = refused('cons', text)
    if not reason:
        return parse_cons(text), 'cons'
    if not admin_port:
        raise _Refused(reason)
    try:
        return parse_admin_connections(ask_admin(member, admin_port, 'connections', timeout=timeout)), 'admin'
    except ZkMigrationError as exc:
        raise _Refused('%s; its AdminServer on port %s was tried instead: %s' % (reason.split(':', 1)[0], admin_port, exc))


def _add_watches(found, member, via, spec, timeout, ask, admin_port, ask_admin):
    """Set each session's ``watches`` from ``wchc`` (or the AdminServer's ``watches``); returns a note when they cannot be read."""
    try:
        if via == 'admin':
            by_session = parse_admin_watches(ask_admin(member, admin_port, 'watches', timeout=timeout))
        else:
            watched = ask(member, 'wchc', tls=spec.tls, timeout=timeout)
            reason = refused('wchc', watched)
            if reason and admin_port:
                by_session = parse_admin_watches(ask_admin(member, admin_port, 'watches', timeout=timeout))
            elif reason:
                return reason
            else:
                by_session = parse_wchc(watched)
    except ZkMigrationError as exc:
        return 'watches not read (%s)' % exc
    for session in found:
        session['watches'] = by_session.get(session['session'], [])
    return None


def connection_count(spec, timeout=3.0, ask=four_letter_word, admin_port=None, ask_admin=admin_command):
    """{member: {'connections': zk_num_alive_connections} or {'error'}} from ``mntr`` (or the AdminServer's ``monitor``).

    MSE and other managed services may answer neither: that is reported, not raised.
    """
    out = {}
    for member in spec.hosts:
        try:
            text = ask(member, 'mntr', tls=spec.tls, timeout=timeout)
            reason = refused('mntr', text)
            values = parse_mntr(text)
            if reason and admin_port:
                values = dict(('zk_%s' % key, value) for key, value in ask_admin(member, admin_port, 'monitor', timeout=timeout).items())
                reason = None
        except ZkMigrationError as exc:
            out[member] = {'error': str(exc)}
            continue
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
    """``list_clients`` of a registered cluster, the migration's own sessions (daemons', the control store's when it lives
    on that cluster, and ``own``) left out."""
    spec, admin_port = _registered(store, cluster, credentials, 'cluster')
    own = list(own) + migration_sessions(store, cluster) + [session for session in (store.session_id(),) if session]
    report = list_clients(spec, own=own, allow=allow, watches=watches, admin_port=admin_port)
    report['cluster'] = cluster
    return report


def connections_of(store, cluster, credentials, role='cluster'):
    """``connection_count`` of a registered cluster (its AdminServer where the registration names ``admin_port``)."""
    spec, admin_port = _registered(store, cluster, credentials, role)
    return connection_count(spec, admin_port=admin_port)


def _registered(store, cluster, credentials, role):
    """(``ClusterSpec``, ``admin_port``) of the cluster registered as ``cluster``."""
    spec, _acl = resolve_registered(store, cluster, credentials, role)
    return spec, (store.get_cluster(cluster) or {}).get('admin_port')


def _int(value):
    try:
        return int(value, 16) if value and value.lower().startswith('0x') else int(value)
    except (TypeError, ValueError):
        return None


__all__ = ['parse_cons', 'parse_wchc', 'parse_admin_connections', 'parse_admin_watches', 'parse_mntr', 'refused', 'allowed',
           'group_by_host', 'list_clients', 'connection_count', 'describe', 'migration_sessions', 'clients_of', 'connections_of']
