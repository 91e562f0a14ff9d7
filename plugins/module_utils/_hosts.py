# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Member addresses: the one parser of ``host:port`` (module options, registrations, the daemon's config).

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import re

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError

DEFAULT_PORT = 2181
_HOST_RE = re.compile(r'^[A-Za-z0-9_.\-]+$')


def parse_host(entry, what='hosts'):
    """Normalise one member address to ``host:port`` (``[v6]:port`` for IPv6).

    A missing port means 2181. Raises ``ConfigError`` on anything else.
    """
    if not isinstance(entry, str):
        raise ConfigError('%s: each member must be a "host:port" string, got %r' % (what, entry))
    text = entry.strip()
    if not text:
        raise ConfigError('%s: empty member address' % what)
    if any(ch.isspace() for ch in text) or '/' in text or '@' in text or ',' in text:
        raise ConfigError('%s: %r is not a valid host name or address: one "host:port" per entry (a chroot goes in chroot, '
                          'credentials in a credential)' % (what, entry))
    if text.startswith('['):
        close = text.find(']')
        if close < 0:
            raise ConfigError('%s: %r has an unclosed "[" (IPv6 addresses are written [addr]:port)' % (what, entry))
        host = text[1:close]
        rest = text[close + 1:]
        if rest and not rest.startswith(':'):
            raise ConfigError('%s: %r: expected ":port" after "]"' % (what, entry))
        port_text = rest[1:] if rest else ''
        if not host or not re.match(r'^[0-9A-Fa-f:.%a-zA-Z]+$', host):
            raise ConfigError('%s: %r is not a valid IPv6 address' % (what, entry))
        display = '[%s]' % host
    else:
        if text.count(':') > 1:
            raise ConfigError('%s: %r: write IPv6 addresses in brackets, e.g. [::1]:2181' % (what, entry))
        host, _sep, port_text = text.partition(':')
        if not host or not _HOST_RE.match(host):
            raise ConfigError('%s: %r is not a valid host name or address' % (what, entry))
        display = host
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError('%s: %r has an invalid port (1-65535)' % (what, entry))
        port = int(port_text)
    else:
        port = DEFAULT_PORT
    return '%s:%d' % (display, port)


def split_host_port(address):
    """``'host:port'`` (as ``parse_host`` makes it) -> ``(host, port)``; brackets stripped."""
    host, _sep, port = address.rpartition(':')
    if host.startswith('['):
        host = host[1:-1]
    return host, int(port)


__all__ = ['DEFAULT_PORT', 'parse_host', 'split_host_port']
