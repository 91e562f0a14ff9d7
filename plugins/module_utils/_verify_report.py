# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A verification report people read: one self-contained HTML page per run, the JSON beside it.

This is a private module of the zookeeper.migration collection; it may change
without notice. It is pure: no Ansible, no kazoo, no network.

The input is the dict ``zk_verify`` builds for its JSON report
(``VerifyResult.to_dict(max_diffs=None)`` plus ``task`` and ``started_at``),
optionally with ``details``: both sides' stat, ACL and a short data prefix
of each listed path, as ``collect_details`` gathers them from two read
functions (the module hands it live reads).

* ``render_html(result, now)``: the page. Inline CSS, no external asset, no
  script (a Content-Security-Policy forbids them). Every value from a
  cluster goes through ``html.escape`` after ``display`` made control
  characters and lone surrogates visible, so a znode named
  ``<script>`` or ``"`` shows as text. Data is never shown raw: its size and
  the hex of its first bytes only. At most ``limit`` paths per category are
  listed, with "N more" after them, so a large mismatch stays a small page.
* ``write_report(directory, stem, result, now)``: ``<stem>-<UTC stamp>.html``
  and ``.json`` in ``directory`` (created mode 0700 when missing), each
  written to a temporary file and linked in place, mode 0600. An existing
  file is never replaced: when the name is taken (two runs in the same
  second), the stem gets a suffix (``-2``, ``-3``...).
"""

import datetime
import errno
import html
import json
import os
import re
import tempfile

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._files import fsync_directory

#: Paths listed per category in the HTML page (the JSON report has them all).
MAX_PATHS = 1000
#: Bytes of data shown (as hex) per side of a listed path.
DATA_PREFIX = 16
#: Paths read per call of a read function by ``collect_details``.
DETAIL_CHUNK = 256

#: The kinds of difference, in the order shown: (key in ``differences``, key in ``counts``, title, what it means).
CATEGORIES = (
    ('missing', 'missing', 'Missing on the destination', 'On the source, not on the destination.'),
    ('extra', 'extra', 'Extra on the destination', 'On the destination only (destination paths).'),
    ('data_mismatch', 'data_mismatch', 'Data differs', 'Byte-exact data comparison (by hash).'),
    ('acl_mismatch', 'acl_mismatch', 'ACL differs', 'ACLs compared as sets of entries.'),
    ('type_mismatch', 'type_mismatch', 'Node type differs', 'Ephemeral on one side, persistent on the other.'),
    ('counter_behind', 'counter_behind', 'Sequential counter behind',
     'Parents holding persistent sequential children whose destination counter (the suffix of the next sequential child) '
     'is behind the source\'s: a sequential create there could collide with a copied name.'),
    ('counter_behind_persistent', 'counter_behind_persistent', 'Counter behind, no child left',
     'Persistent parents with no child left on the source (ID generators, drained queues) whose destination counter is '
     'behind: a sequential create there would hand out a suffix the source already handed out.'),
    ('spot_check', 'spot_check_mismatch', 'Spot check mismatch', 'Znodes re-read live on both sides that differed.'),
)
#: Listed, but not differences (they do not make the clusters out of sync).
INFORMATION = (
    ('counter_behind_ephemeral', 'counter_behind_ephemeral', 'Counter behind, information only',
     'Parents holding ephemeral children (locks, registrations) or whose own children churned, with the destination '
     'counter behind. Information, not a difference.'),
)
#: Count keys that are not differences, with their labels.
COUNT_LABELS = (
    ('source_nodes', 'Persistent source znodes in scope'),
    ('destination_nodes', 'Persistent destination znodes in scope'),
    ('ephemeral_skipped', 'Ephemeral znodes left out (never migrated)'),
)

# zkCli's letters for the permission bits, in its order.
_PERMS = (('c', 4), ('d', 8), ('r', 1), ('w', 2), ('a', 16))
_MARKED = ('ephemeral', 'size', 'data_prefix')
_CONTROL = re.compile('[\x00-\x1f\x7f-\x9f]')
_UNSAFE_NAME = re.compile(r'[^A-Za-z0-9._-]+')

_CSS = '''
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em 2em; color: #1d2327; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ccd0d4; padding-bottom: 0.2em; }
.verdict { font-size: 3.2em; font-weight: 800; letter-spacing: 0.04em; margin: 0.2em 0 0.4em; }
.in-sync { color: #14772b; }
.not-in-sync { color: #b32d2e; }
.unknown { color: #8a6d00; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #dcdcde; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f0f0f1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.bad td { background: #fcf0f1; font-weight: 600; }
tr.info td { background: #fcf9e8; }
td.path { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; max-width: 38em; }
td.mono, span.mono { font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
td.differs { background: #fcf0f1; }
.note { color: #50575e; font-size: 0.9em; }
.more { font-weight: 600; color: #8a2424; }
ul.plain { margin: 0.2em 0; padding-left: 1.2em; }
'''


# ----------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------

def display(value):
    """``value`` as text a reader can see: control characters as ``\\xNN``, lone surrogates as ``\\udcNN``.

    Not escaped for HTML yet (``esc`` does both).
    """
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL.sub(lambda match: '\\x%02x' % ord(match.group()), text)
    return text.encode('utf-8', 'backslashreplace').decode('utf-8')


def esc(value):
    """``display(value)`` escaped for HTML text and attribute values."""
    return html.escape(display(value), quote=True)


def to_utc(moment):
    """An aware UTC datetime from a datetime (naive ones are taken as UTC) or epoch seconds."""
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is None:
            return moment.replace(tzinfo=datetime.timezone.utc)
        return moment.astimezone(datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(float(moment), tz=datetime.timezone.utc)


def utc_stamp(moment):
    """``20261205T120000Z``: the stamp of report file names."""
    return to_utc(moment).strftime('%Y%m%dT%H%M%SZ')


def utc_text(moment):
    """``2026-12-05 12:00:00 UTC``, or ``-`` when unknown."""
    if moment is None:
        return '-'
    try:
        return to_utc(moment).strftime('%Y-%m-%d %H:%M:%S UTC')
    except (TypeError, ValueError, OverflowError, OSError):
        return str(moment)


def mtime_text(milliseconds):
    """A znode's mtime (epoch milliseconds) as UTC time with milliseconds."""
    if milliseconds is None:
        return '-'
    try:
        moment = datetime.datetime.fromtimestamp(int(milliseconds) / 1000.0, tz=datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(milliseconds)
    return moment.strftime('%Y-%m-%d %H:%M:%S.') + '%03d UTC' % (moment.microsecond // 1000)


def perms_text(perms):
    """ZooKeeper permission bits as zkCli letters (``cdrwa``)."""
    try:
        perms = int(perms)
    except (TypeError, ValueError):
        return str(perms)
    letters = ''.join(letter for letter, bit in _PERMS if perms & bit)
    rest = perms & ~31
    return letters + ('+%d' % rest if rest else '') if letters or rest else '-'


def acl_text(acl):
    """ACL entries as sorted ``scheme:id:perms`` strings (digest ids are hashes already); None when not read."""
    if acl is None:
        return None
    entries = []
    for entry in acl:
        if isinstance(entry, dict):
            perms, scheme, ident = entry.get('perms'), entry.get('scheme'), entry.get('id')
        else:
            perms, scheme, ident = entry
        entries.append('%s:%s:%s' % (scheme, ident, perms_text(perms)))
    return sorted(entries)


def safe_stem(stem):
    """``stem`` made a plain file name part (letters, digits, ``.``, ``_``, ``-``); ``verify`` when nothing is left."""
    stem = _UNSAFE_NAME.sub('_', display(stem or '')).strip('._-')
    return stem[:100] or 'verify'


# ----------------------------------------------------------------------------
# details: both sides of each listed path
# ----------------------------------------------------------------------------

def node_summary(node, prefix=DATA_PREFIX):
    """What the report shows of one side of a path: stat fields, ACL and the hex of the first ``prefix`` bytes.

    ``node`` has the attributes of ``_snapshot.Node`` (``data``, ``data_length``,
    ``version``, ``cversion``, ``aversion``, ``ephemeral_owner``, ``num_children``,
    ``mtime``, ``acl``); None means the znode does not exist on that side.
    """
    if node is None:
        return None
    data = node.data or b''
    size = node.data_length if node.data_length is not None else len(data)
    summary = {
        'size': size,
        'version': node.version,
        'cversion': node.cversion,
        'aversion': node.aversion,
        'num_children': node.num_children,
        'ephemeral': bool(node.ephemeral_owner),
        'mtime': node.mtime,
        'acl': [list(entry) for entry in node.acl] if node.acl is not None else None,
    }
    if prefix:
        summary['data_prefix'] = bytes(data[:prefix]).hex()
    return summary


def _listed(result, limit):
    """[(category, [paths])] of every category with paths, at most ``limit`` sorted paths each."""
    differences = result.get('differences') or {}
    listed = []
    for key, _count, _title, _about in CATEGORIES:
        paths = sorted(differences.get(key) or ())
        if paths:
            listed.append((key, paths[:limit]))
    informational = sorted(result.get('counter_behind_ephemeral') or ())
    if informational:
        listed.append(('counter_behind_ephemeral', informational[:limit]))
    return listed


def collect_details(result, read_source, read_destination, to_destination=None, to_source=None, limit=MAX_PATHS,
                    prefix=DATA_PREFIX, chunk=DETAIL_CHUNK):
    """Both sides of the first ``limit`` paths of each category: ``{category: {path: entry}}``.

    ``read_source(paths)`` and ``read_destination(paths)`` return ``{path:
    node}`` for the paths that exist (see ``node_summary`` for a node's
    attributes); they are called with at most ``chunk`` paths at a time, so
    only that many nodes' data are held at once. ``to_destination`` and
    ``to_source`` map paths between the sides (default: the same path).
    ``extra`` lists destination paths, the other categories source paths.
    Each entry is ``{source_path, destination_path, source, destination}``
    where a side is ``node_summary(...)`` or None when the znode is absent.
    """
    to_destination = to_destination or (lambda path: path)
    to_source = to_source or (lambda path: path)
    wanted = []
    for category, paths in _listed(result, limit):
        for path in paths:
            if category == 'extra':
                wanted.append((category, path, to_source(path), path))
            else:
                wanted.append((category, path, path, to_destination(path)))
    source_paths = sorted(set(item[2] for item in wanted))
    destination_paths = sorted(set(item[3] for item in wanted))
    sides = []
    for read, paths in ((read_source, source_paths), (read_destination, destination_paths)):
        found = {}
        for start in range(0, len(paths), chunk):
            nodes = read(paths[start:start + chunk])
            for path in paths[start:start + chunk]:
                found[path] = node_summary(nodes.get(path), prefix)
        sides.append(found)
    details = {}
    for category, path, source_path, destination_path in wanted:
        details.setdefault(category, {})[path] = {
            'source_path': source_path,
            'destination_path': destination_path,
            'source': sides[0].get(source_path),
            'destination': sides[1].get(destination_path),
        }
    return details


# ----------------------------------------------------------------------------
# the page
# ----------------------------------------------------------------------------

def _row(cells, css=None):
    return '<tr%s>%s</tr>' % (' class="%s"' % css if css else '', ''.join(cells))


def _td(value, css=None, raw=False, attrs=''):
    return '<td%s%s>%s</td>' % (' class="%s"' % css if css else '', attrs, value if raw else esc(value))


def _th(value):
    return '<th>%s</th>' % esc(value)


def _kv_table(rows):
    return '<table>%s</table>' % ''.join(_row([_th(key), _td(value, raw=raw)]) for key, value, raw in rows)


def _listing(items, css='mono'):
    if not items:
        return '-'
    return '<ul class="plain">%s</ul>' % ''.join('<li class="%s">%s</li>' % (css, esc(item)) for item in items)


def _side_cells(side, other, prefix_shown):
    """The cells of one side of a path; values differing from ``other`` are marked."""
    if side is None:
        span = 9 if prefix_shown else 8
        return [_td('absent', css='differs' if other is not None else None, attrs=' colspan="%d"' % span)]
    other = other or {}

    def cell(key, text, css=''):
        # versions and mtimes are per cluster: only what a copy carries over is marked
        differs = key in _MARKED and other and side.get(key) != other.get(key)
        classes = ' '.join(name for name in (css, 'differs' if differs else '') if name)
        return _td(text, css=classes or None)

    acl = acl_text(side.get('acl'))
    cells = [
        cell('ephemeral', 'ephemeral' if side.get('ephemeral') else 'persistent'),
        cell('size', side.get('size'), 'num'),
    ]
    if prefix_shown:
        shown = side.get('data_prefix')
        if shown is None:
            text = '-'
        elif not shown:
            text = '(empty)'
        else:
            text = shown + (' ...' if len(shown) // 2 < (side.get('size') or 0) else '')
        cells.append(cell('data_prefix', text, 'mono'))
    cells += [
        cell('version', side.get('version'), 'num'),
        cell('cversion', side.get('cversion'), 'num'),
        cell('aversion', side.get('aversion'), 'num'),
        cell('num_children', side.get('num_children'), 'num'),
        cell('mtime', mtime_text(side.get('mtime'))),
    ]
    acl_differs = other and acl_text(other.get('acl')) != acl
    cells.append(_td(_listing(acl) if acl is not None else 'not read', css='mono differs' if acl_differs else 'mono', raw=True))
    return cells


def _path_note(result, category, path):
    """What else the report knows about one path of ``category`` (counters, spot-check reason)."""
    if category.startswith('counter_behind'):
        versions = (result.get('counter_versions') or {}).get(path)
        if versions:
            return 'sequential counter: source %s, destination %s' % (versions.get('source'), versions.get('destination'))
    if category == 'spot_check':
        reason = ((result.get('spot_check') or {}).get('details') or {}).get(path)
        if reason:
            return 'spot check: %s' % reason
    return None


def _category_section(result, category, count_key, title, about, limit, informational=False):
    listed = sorted((result.get('differences') or {}).get(category) or ()) if not informational \
        else sorted(result.get(category) or ())
    total = (result.get('counts') or {}).get(count_key)
    total = len(listed) if total is None else max(total, len(listed))
    parts = ['<h2 id="%s">%s: %d</h2>' % (esc(category), esc(title), total), '<p class="note">%s</p>' % esc(about)]
    if not total:
        parts.append('<p>None.</p>')
        return ''.join(parts)
    shown = listed[:limit]
    details = (result.get('details') or {}).get(category) or {}
    prefix_shown = any('data_prefix' in (entry.get(side) or {}) for entry in details.values() for side in ('source', 'destination'))
    if shown:
        header = ['path', 'side', 'type', 'data bytes']
        if prefix_shown:
            header.append('data (first bytes, hex)')
        header += ['version', 'cversion', 'aversion', 'children', 'mtime (UTC)', 'ACL']
        rows = ['<tr>%s</tr>' % ''.join(_th(name) for name in header)]
        for path in shown:
            entry = details.get(path)
            note = _path_note(result, category, path)
            cell = esc(path)
            if entry and entry.get('destination_path') not in (None, entry.get('source_path')):
                cell += '<br><span class="note">source %s<br>destination %s</span>' % (
                    esc(entry.get('source_path')), esc(entry.get('destination_path')))
            if note:
                cell += '<br><span class="note">%s</span>' % esc(note)
            if entry is None:
                rows.append(_row([_td(cell, css='path', raw=True), _td('not read', attrs=' colspan="%d"' % (len(header) - 1))]))
                continue
            source, destination = entry.get('source'), entry.get('destination')
            rows.append(_row([_td(cell, css='path', raw=True, attrs=' rowspan="2"'), _td('source')]
                             + _side_cells(source, destination, prefix_shown)))
            rows.append(_row([_td('destination')] + _side_cells(destination, source, prefix_shown)))
        parts.append('<table>%s</table>' % ''.join(rows))
    more = total - len(shown)
    if more > 0:
        parts.append('<p class="more">%d more not listed here (the JSON report beside this page lists them all).</p>' % more)
    return ''.join(parts)


def _counts_section(result):
    counts = result.get('counts') or {}
    rows = ['<tr>%s</tr>' % ''.join(_th(name) for name in ('what', 'count', 'key'))]
    for key, count_key, title, _about in CATEGORIES:
        count = counts.get(count_key, 0) or 0
        link = '<a href="#%s">%s</a>' % (esc(key), esc(title))
        rows.append(_row([_td(link, raw=True), _td(count, css='num'), _td(count_key, css='mono')], css='bad' if count else None))
    for key, count_key, title, _about in INFORMATION:
        count = counts.get(count_key, 0) or 0
        link = '<a href="#%s">%s</a>' % (esc(key), esc(title))
        rows.append(_row([_td(link, raw=True), _td(count, css='num'), _td(count_key, css='mono')], css='info' if count else None))
    for key, label in COUNT_LABELS:
        if key in counts:
            rows.append(_row([_td(label), _td(counts[key], css='num'), _td(key, css='mono')]))
    known = set(key for _k, key, _t, _a in CATEGORIES + INFORMATION) | set(key for key, _label in COUNT_LABELS)
    for key in sorted(set(counts) - known):
        rows.append(_row([_td(key), _td(counts[key], css='num'), _td(key, css='mono')]))
    return '<h2>Counts</h2><table>%s</table>' % ''.join(rows)


def _verdict(in_sync):
    if in_sync is True:
        return 'in-sync', 'IN SYNC'
    if in_sync is False:
        return 'not-in-sync', 'NOT IN SYNC'
    return 'unknown', 'NOT VERIFIED'


def render_html(result, now, limit=MAX_PATHS):
    """The HTML page of one verification ``result`` (see the module docstring), written at ``now``.

    ``now`` is a datetime or epoch seconds. At most ``limit`` paths are listed per category.
    """
    limit = max(0, int(limit))
    css, verdict = _verdict(result.get('in_sync'))
    task = result.get('task')
    source, destination = result.get('source'), result.get('destination')
    subject = task or '%s to %s' % (source, destination)
    pairs = result.get('paths') or []
    path_lines = ['%s -> %s' % (pair.get('source'), pair.get('destination')) if pair.get('source') != pair.get('destination')
                  else pair.get('source') for pair in pairs]
    elapsed = result.get('elapsed')
    header = _kv_table([
        ('task', esc(task) if task else '-', True),
        ('source', esc(source), True),
        ('destination', esc(destination), True),
        ('paths', _listing(path_lines), True),
        ('excluded', _listing(result.get('exclude') or []), True),
        ('compared', esc(', '.join(['structure'] + list(result.get('compare') or []))), True),
        ('started', esc(utc_text(result.get('started_at'))), True),
        ('report written', esc(utc_text(now)), True),
        ('took', esc('%s s' % elapsed if elapsed is not None else '-'), True),
    ])
    notes = []
    if 'acl' in (result.get('compare') or []) and result.get('acl_compared') is False:
        notes.append('ACLs were to be compared but none could be read on both sides.')
    if result.get('details'):
        notes.append('Sizes, versions, mtimes, ACLs and data prefixes were read live after the comparison; '
                     'a running sync may have changed them since. Types, sizes, data and ACLs that differ between the sides are highlighted.')
    if result.get('details_error'):
        notes.append('The details of the listed paths could not be read: %s' % result['details_error'])
    redacted = result.get('acl_redacted') or {}
    if any(redacted.values()):
        notes.append('Some digest ACL ids were masked by the server (user:x, no ADMIN permission): source %s, destination %s znodes.'
                     % (redacted.get('source', 0), redacted.get('destination', 0)))
    body = [
        '<h1>ZooKeeper verification: %s</h1>' % esc(subject),
        '<p class="verdict %s">%s</p>' % (css, verdict),
        header,
        ''.join('<p class="note">%s</p>' % esc(note) for note in notes),
        _counts_section(result),
    ]
    for key, count_key, title, about in CATEGORIES:
        body.append(_category_section(result, key, count_key, title, about, limit))
    for key, count_key, title, about in INFORMATION:
        body.append(_category_section(result, key, count_key, title, about, limit, informational=True))

    spot = result.get('spot_check') or {}
    body.append('<h2>Spot checks</h2>' + _kv_table([
        ('requested', esc(spot.get('requested', 0)), True),
        ('re-read live on both sides', esc(spot.get('checked', 0)), True),
        ('mismatched', esc(spot.get('mismatched', 0)), True),
    ]))
    settle = result.get('settle') or {}
    settled_paths = list(settle.get('settled_paths') or [])
    settled_more = max(0, (settle.get('settled') or 0) - min(len(settled_paths), limit))
    body.append('<h2>Settle</h2>' + _kv_table([
        ('delay', esc('%s s' % settle.get('seconds', 0)), True),
        ('re-check method', esc(settle.get('method') or '-'), True),
        ('differences at first', esc(settle.get('first_differences', 0)), True),
        ('settled (matched on re-check)', esc(settle.get('settled', 0)), True),
        ('settled paths', _listing(settled_paths[:limit]) + ('<p class="more">%d more</p>' % settled_more if settled_more else ''), True),
    ]))
    timings = [('elapsed', esc('%s s' % elapsed if elapsed is not None else '-'), True),
               ('znodes read', esc(result.get('nodes_read', '-')), True),
               ('rate', esc('%s znodes/s' % result.get('rate') if result.get('rate') is not None else '-'), True)]
    for key, value in sorted((result.get('timings') or {}).items()):
        timings.append((key, esc('%s s' % value), True))
    body.append('<h2>Timings</h2>' + _kv_table(timings))
    body.append('<p class="note">zookeeper.migration zk_verify report, written %s.</p>' % esc(utc_text(now)))
    return ('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<title>%s: %s</title>\n<style>%s</style>\n</head>\n<body>\n%s\n</body>\n</html>\n') % (
        esc(subject), verdict, _CSS, '\n'.join(body))


# ----------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------

def ensure_directory(directory):
    """Create ``directory`` (mode 0700) when missing; ``ConfigError`` when it cannot be or is not a directory."""
    if os.path.isdir(directory):
        return
    if os.path.lexists(directory):
        raise ConfigError('report_dir: %s exists and is not a directory' % directory)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise ConfigError('report_dir: cannot create %s (%s)' % (directory, exc.strerror or exc))


def _publish(path, data):
    """Write ``data`` to ``path`` (mode 0600) unless it exists; True when written, False when the name is taken.

    The data goes to a temporary file in the same directory first (fsync),
    then is hard-linked to ``path``, which fails rather than replace an
    existing file; where hard links are refused, ``path`` is reserved with
    O_EXCL and the temporary file renamed over that reservation.
    """
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(prefix='.zk-verify-report-', dir=directory)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
                raise
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        os.rename(temporary, path)
        return True
    finally:
        try:
            os.unlink(temporary)
        except OSError:
            pass


def report_names(directory, stem, now):
    """Yield ``(html path, json path)`` candidates: ``<stem>-<stamp>``, then ``-2``, ``-3``..."""
    base = '%s-%s' % (safe_stem(stem), utc_stamp(now))
    for attempt in range(1, 10000):
        name = base if attempt == 1 else '%s-%d' % (base, attempt)
        yield os.path.join(directory, name + '.html'), os.path.join(directory, name + '.json')


def planned_paths(directory, stem, now):
    """The ``{'html', 'json'}`` paths ``write_report`` would use now (check mode: nothing is written)."""
    directory = os.path.abspath(os.path.expanduser(directory))
    for html_path, json_path in report_names(directory, stem, now):
        if not os.path.lexists(html_path) and not os.path.lexists(json_path):
            return {'html': html_path, 'json': json_path}
    raise ConfigError('report_dir: no free report name for %s in %s' % (safe_stem(stem), directory))


def write_report(directory, stem, result, now, limit=MAX_PATHS):
    """Write ``<stem>-<UTC stamp>.html`` and ``.json`` of ``result`` into ``directory``; returns ``{'html', 'json'}``.

    The directory is created (mode 0700) when missing; each file is mode
    0600 and written atomically; no existing file is ever replaced (a taken
    name gets a suffix, for both files alike). ``ConfigError`` when the
    directory cannot be created or written.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    ensure_directory(directory)
    page = render_html(result, now, limit=limit).encode('utf-8', 'backslashreplace')
    document = (json.dumps(result, indent=2, sort_keys=True, default=str) + '\n').encode('utf-8')
    try:
        for html_path, json_path in report_names(directory, stem, now):
            if os.path.lexists(html_path) or os.path.lexists(json_path):
                continue
            if not _publish(json_path, document):
                continue
            if not _publish(html_path, page):
                os.unlink(json_path)
                continue
            fsync_directory(directory)
            return {'html': html_path, 'json': json_path}
    except OSError as exc:
        raise ConfigError('report_dir: cannot write in %s (%s)' % (directory, exc.strerror or exc))
    raise ConfigError('report_dir: no free report name for %s in %s' % (safe_stem(stem), directory))
