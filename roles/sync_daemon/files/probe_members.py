# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probe cluster members from a daemon host and tell why one cannot be reached.

Usage: python3 probe_members.py TIMEOUT "ROLE HOST:PORT" ...

Prints one JSON object: {"ROLE HOST:PORT": "ok" | "DNS: ..." | "REFUSED: ..." |
"TIMEOUT: ..." | "UNREACHABLE: ..."}. The role's preflight runs it on each
daemon host (the standard library only: it runs before anything is installed).
"""

import json
import socket
import sys


def split_member(member):
    """'[::1]:2181' or 'zk1:2181' -> (host, port)."""
    host, _sep, port = member.rpartition(':')
    return host.strip('[]'), int(port)


def probe(host, port, timeout):
    """'ok', or the reason a TCP connect to host:port fails, starting with its kind."""
    try:
        addresses = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return 'DNS: %s does not resolve (%s)' % (host, exc.strerror or exc)
    reason = 'UNREACHABLE: no address for %s' % host
    for family, kind, proto, _canonical, address in addresses:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return 'ok'
        except socket.timeout:
            reason = 'TIMEOUT: no answer from %s port %d within %gs (a firewall dropping packets?)' % (address[0], port, timeout)
        except ConnectionRefusedError:
            reason = 'REFUSED: %s port %d refused the connection (nothing listens there?)' % (address[0], port)
        except OSError as exc:
            reason = 'UNREACHABLE: %s port %d: %s' % (address[0], port, exc.strerror or exc)
        finally:
            sock.close()
    return reason


def main(argv):
    timeout = float(argv[1])
    results = {}
    for item in argv[2:]:
        member = item.split(' ', 1)[-1]
        try:
            host, port = split_member(member)
        except ValueError:
            results[item] = 'INVALID: %r is not host:port' % member
            continue
        results[item] = probe(host, port, timeout)
    print(json.dumps(results, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
