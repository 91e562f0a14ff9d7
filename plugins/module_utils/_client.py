# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster specs, connections, error translation and capability probing.

This is a private module of the zookeeper.migration collection; it may change
without notice.

* ``ClusterSpec`` describes how to reach one cluster (hosts, chroot, timeouts,
  digest or SASL authentication, TLS). It is built from the plain dict that
  modules, the control store and the daemon configuration hold, validated
  with ``ConfigError`` messages an operator understands, and it never shows a
  secret (``to_dict()`` and ``repr()`` redact).
* ``connect()`` / ``connected()`` turn a spec into a started kazoo client.
  Failures become ``ClusterUnreachableError`` naming every member tried and
  why (refused, timeout, DNS, TLS), or ``AuthFailedError``.
* ``translate_error()`` / ``zk_errors()`` map kazoo exceptions onto the
  engine's error classes.
* ``probe_capabilities()``, ``probe_extended_types()``, ``member_modes()``
  find out what a server supports by trying the operations themselves: the
  ``envi`` four-letter word kazoo's ``server_version()`` relies on is not
  whitelisted by default since ZooKeeper 3.5.

A note on digest authentication: ZooKeeper accepts *any* digest credential at
connect time. The server just derives the identity ``user:base64(sha1(user:password))``
from what the client sends, so a wrong password is not an error until the
client touches a znode whose ACL wants the right identity, which then fails
with NoAuth. ``prove_identity()`` shows a password right or wrong from what
the cluster knows of it (its superDigest user, ACLs naming the user);
``connect(..., auth_check_path=...)`` reads a path the identity must be able
to read to surface a wrong password at connect time, and ``translate_error()``
words NoAuth so that a wrong password is the first thing an operator checks.
SASL authentication, by contrast, fails at connect.
"""

import base64
import contextlib
import hashlib
import json
import os
import select
import socket
import ssl
import threading
import time
import traceback
from urllib.error import HTTPError, URLError
from urllib.request import ProxyHandler, build_opener

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import (
    AuthFailedError,
    ClusterUnreachableError,
    ConfigError,
    NoNodeError,
    NodeExistsError,
    NotEmptyError,
    TooLargeError,
    UnsupportedByServerError,
    VersionConflictError,
    ZkMigrationError,
)

try:
    from kazoo.client import KazooClient
    from kazoo import exceptions as kazoo_exceptions
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.protocol.states import KeeperState
    HAS_KAZOO = True
    KAZOO_IMPORT_ERROR = None
except ImportError:
    HAS_KAZOO = False
    KAZOO_IMPORT_ERROR = traceback.format_exc()

try:
    from kazoo.protocol.connection import PURESASL_AVAILABLE
except ImportError:
    PURESASL_AVAILABLE = False

# Request classes kazoo 2.11 lacks (the capability probes send them).
from ansible_collections.zookeeper.migration.plugins.module_utils import _protocol
from ansible_collections.zookeeper.migration.plugins.module_utils._hosts import parse_host, split_host_port


DEFAULT_SESSION_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0
# jute.maxbuffer default (0xfffff): a request larger than this makes the server
# drop the connection instead of answering, which kazoo reports as ConnectionLoss.
DEFAULT_MAX_REQUEST_BYTES = 0xfffff
REDACTED = '********'

_SPEC_ATTR = '_zkm_spec'   # the ClusterSpec a client of ``connect`` was made from
_SPEC_KEYS = frozenset(['name', 'hosts', 'chroot', 'session_timeout', 'connect_timeout', 'read_only', 'auth', 'tls'])
_AUTH_KEYS = frozenset(['scheme', 'username', 'password', 'credential', 'mechanism', 'service', 'principal'])
_TLS_KEYS = frozenset(['enabled', 'ca_file', 'cert_file', 'key_file', 'key_password', 'credential', 'verify', 'check_hostname'])
_AUTH_SCHEMES = ('digest', 'sasl')
_SASL_MECHANISMS = ('DIGEST-MD5', 'GSSAPI')
_TRUE_STRINGS = ('true', 'yes', 'on', '1')
_FALSE_STRINGS = ('false', 'no', 'off', '0')
# OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_HOSTNAME_MISMATCH_CODES = (62, 64)


# --------------------------------------------------------------------------
# Cluster spec
# --------------------------------------------------------------------------

def _as_bool(value, what):
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE_STRINGS:
            return True
        if lowered in _FALSE_STRINGS:
            return False
    raise ConfigError('%s must be a boolean, got %r' % (what, value))


def _as_seconds(value, what, default, maximum):
    if value is None:
        return float(default)
    if isinstance(value, bool):
        raise ConfigError('%s must be a number of seconds, got %r' % (what, value))
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ConfigError('%s must be a number of seconds, got %r' % (what, value))
    if not 0 < seconds <= maximum:
        raise ConfigError('%s must be more than 0 and at most %s seconds, got %s' % (what, maximum, value))
    return seconds


def _as_text(value, what, required=False):
    if value is None or value == '':
        if required:
            raise ConfigError('%s is required' % what)
        return None
    if not isinstance(value, str):
        raise ConfigError('%s must be a string, got a %s' % (what, type(value).__name__))
    return value


def _check_keys(given, allowed, what):
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ConfigError('%s: unknown option(s) %s (known: %s)' % (what, ', '.join(unknown), ', '.join(sorted(allowed))))


def _parse_chroot(value, what):
    chroot = _as_text(value, what)
    if chroot is None or chroot == '/':
        return None
    if not chroot.startswith('/'):
        raise ConfigError('%s must be an absolute path starting with "/", got %r' % (what, chroot))
    chroot = chroot.rstrip('/')
    if '//' in chroot or any(part in ('.', '..') for part in chroot.split('/')[1:]):
        raise ConfigError('%s %r is not a valid znode path' % (what, chroot))
    return chroot


class AuthSpec(object):
    """How a connection authenticates: digest, or SASL (DIGEST-MD5 or GSSAPI).

    ``password`` is a secret: it is resolved from a named credential or given
    inline, and never shown by ``to_dict(redact=True)`` or ``repr()``.
    """

    __slots__ = ('scheme', 'username', 'password', 'credential', 'mechanism', 'service', 'principal')

    def __init__(self, scheme, username=None, password=None, credential=None, mechanism=None, service=None, principal=None):
        self.scheme = scheme
        self.username = username
        self.password = password
        self.credential = credential
        self.mechanism = mechanism
        self.service = service
        self.principal = principal

    @classmethod
    def from_dict(cls, data, credentials, what):
        """Validate an ``auth`` dict; ``credentials`` maps names to {username, password, ...}."""
        if not isinstance(data, dict):
            raise ConfigError('%s must be a dict, got a %s' % (what, type(data).__name__))
        _check_keys(data, _AUTH_KEYS, what)
        scheme = (_as_text(data.get('scheme'), what + '.scheme') or 'digest').lower()
        if scheme not in _AUTH_SCHEMES:
            raise ConfigError('%s.scheme must be one of %s, got %r' % (what, ', '.join(_AUTH_SCHEMES), scheme))
        username = _as_text(data.get('username'), what + '.username')
        password = data.get('password')
        if password is not None and not isinstance(password, str):
            raise ConfigError('%s.password must be a string' % what)
        password = password or None
        credential = _as_text(data.get('credential'), what + '.credential')
        if credential is not None:
            if password is not None:
                raise ConfigError('%s: give either password or credential, not both' % what)
            found = _lookup_credential(credentials, credential, what)
            if username is None:
                username = _as_text(found.get('username'), 'credential %r username' % credential)
            elif found.get('username') not in (None, '', username):
                raise ConfigError('%s: username %r differs from the username of credential %r' % (what, username, credential))
            password = found.get('password')
            if password is not None and not isinstance(password, str):
                raise ConfigError('credential %r: password must be a string' % credential)
            password = password or None
        mechanism = _as_text(data.get('mechanism'), what + '.mechanism')
        service = _as_text(data.get('service'), what + '.service')
        principal = _as_text(data.get('principal'), what + '.principal')
        if scheme == 'digest':
            if mechanism or service or principal:
                raise ConfigError('%s: mechanism, service and principal apply to scheme sasl only' % what)
            if username is None:
                raise ConfigError('%s: digest authentication needs a username (or a credential that has one)' % what)
            if ':' in username:
                raise ConfigError('%s.username must not contain ":" (digest identities are user:password)' % what)
            if password is None:
                raise ConfigError('%s: digest authentication needs a password (or a credential that has one)' % what)
        else:
            mechanism = (mechanism or 'DIGEST-MD5').upper()
            if mechanism not in _SASL_MECHANISMS:
                raise ConfigError('%s.mechanism must be one of %s, got %r' % (what, ', '.join(_SASL_MECHANISMS), mechanism))
            if mechanism == 'DIGEST-MD5' and (username is None or password is None):
                raise ConfigError('%s: SASL DIGEST-MD5 needs a username and a password (or a credential that has them)' % what)
            if mechanism == 'GSSAPI' and password is not None:
                raise ConfigError('%s: SASL GSSAPI takes no password (it uses the Kerberos ticket cache)' % what)
        return cls(scheme, username, password, credential, mechanism if scheme == 'sasl' else None, service, principal)

    def kazoo_args(self):
        """Keyword arguments for ``KazooClient`` (they hold the secret)."""
        if self.scheme == 'digest':
            return {'auth_data': [('digest', '%s:%s' % (self.username, self.password))]}
        options = {'mechanism': self.mechanism}
        if self.username is not None:
            options['username'] = self.username
        if self.password is not None:
            options['password'] = self.password
        if self.service:
            options['service'] = self.service
        if self.principal:
            options['principal'] = self.principal
        return {'sasl_options': options}

    def to_dict(self, redact=True):
        result = {'scheme': self.scheme}
        for key in ('username', 'credential', 'mechanism', 'service', 'principal'):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        # A password that came from a named credential is never written back:
        # the name is what gets stored, the secret stays in the credentials file.
        if not redact and self.password is not None and self.credential is None:
            result['password'] = self.password
        return result

    def describe(self):
        """A short, secret-free description for messages."""
        if self.scheme == 'digest':
            return 'digest user %r' % self.username
        who = self.username or self.principal or 'ticket cache'
        return 'SASL %s (%s)' % (self.mechanism, who)

    def __repr__(self):
        secret = ', password=%s' % REDACTED if self.password is not None else ''
        return 'AuthSpec(%s%s)' % (', '.join('%s=%r' % item for item in sorted(self.to_dict().items())), secret)


class TlsSpec(object):
    """TLS settings; ``key_password`` is a secret (inline or from a named credential)."""

    __slots__ = ('enabled', 'ca_file', 'cert_file', 'key_file', 'key_password', 'credential', 'verify', 'check_hostname')

    def __init__(self, enabled=False, ca_file=None, cert_file=None, key_file=None, key_password=None, credential=None,
                 verify=True, check_hostname=None):
        self.enabled = enabled
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.key_password = key_password
        self.credential = credential
        self.verify = verify
        # Host names are checked whenever the certificate is verified, unless turned off explicitly.
        self.check_hostname = verify if check_hostname is None else check_hostname

    @classmethod
    def from_dict(cls, data, credentials, what):
        """Validate a ``tls`` dict. ``enabled`` defaults to true when any file is given."""
        if isinstance(data, bool):
            data = {'enabled': data}
        if not isinstance(data, dict):
            raise ConfigError('%s must be a dict, got a %s' % (what, type(data).__name__))
        _check_keys(data, _TLS_KEYS, what)
        ca_file = _as_text(data.get('ca_file'), what + '.ca_file')
        cert_file = _as_text(data.get('cert_file'), what + '.cert_file')
        key_file = _as_text(data.get('key_file'), what + '.key_file')
        if data.get('enabled') is None:
            enabled = bool(ca_file or cert_file or key_file)
        else:
            enabled = _as_bool(data.get('enabled'), what + '.enabled')
        verify = True if data.get('verify') is None else _as_bool(data.get('verify'), what + '.verify')
        # On by default wherever the certificate is verified (it needs verify): off only when asked for.
        check_hostname = verify if data.get('check_hostname') is None else _as_bool(data.get('check_hostname'), what + '.check_hostname')
        if bool(cert_file) != bool(key_file):
            raise ConfigError('%s: cert_file and key_file go together (a client certificate needs its key)' % what)
        if check_hostname and not verify:
            raise ConfigError('%s: check_hostname needs verify (a hostname is only checked in a verified certificate)' % what)
        key_password = data.get('key_password')
        if key_password is not None and not isinstance(key_password, str):
            raise ConfigError('%s.key_password must be a string' % what)
        key_password = key_password or None
        credential = _as_text(data.get('credential'), what + '.credential')
        if credential is not None:
            if key_password is not None:
                raise ConfigError('%s: give either key_password or credential, not both' % what)
            key_password = _lookup_credential(credentials, credential, what).get('key_password') or None
            if key_password is not None and not isinstance(key_password, str):
                raise ConfigError('credential %r: key_password must be a string' % credential)
        if key_password is not None and not key_file:
            raise ConfigError('%s: key_password given without key_file' % what)
        return cls(enabled, ca_file, cert_file, key_file, key_password, credential, verify, check_hostname)

    def check_files(self, what):
        """Raise ``ConfigError`` when a configured file is missing on this host."""
        for key in ('ca_file', 'cert_file', 'key_file'):
            path = getattr(self, key)
            if path and not os.path.isfile(path):
                raise ConfigError('%s.%s %s does not exist on this host' % (what, key, path))
            if path and not os.access(path, os.R_OK):
                raise ConfigError('%s.%s %s is not readable by this process' % (what, key, path))

    def ssl_context(self):
        """The ``ssl.SSLContext`` of every TLS connection to the cluster (sessions and four-letter words).

        Unlike kazoo's own set-up, the system's CAs are trusted only when no
        ``ca_file`` is given: with one, a server certificate must chain up to
        it. Host names are checked (``check_hostname``) against the DNS or IP
        subjectAltNames of the certificate; an IP address only matches an
        iPAddress SAN.
        """
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.options |= ssl.OP_NO_SSLv2
        context.options |= ssl.OP_NO_SSLv3
        if self.ca_file:
            context.load_verify_locations(self.ca_file)
        else:
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        context.check_hostname = self.check_hostname
        context.verify_mode = ssl.CERT_REQUIRED if self.verify else ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(certfile=self.cert_file, keyfile=self.key_file, password=self.key_password)
        return context

    def kazoo_args(self):
        if not self.enabled:
            return {}
        return {'use_ssl': True, 'ca': self.ca_file, 'certfile': self.cert_file, 'keyfile': self.key_file,
                'keyfile_password': self.key_password, 'verify_certs': self.verify, 'check_hostname': self.check_hostname}

    def to_dict(self, redact=True):
        result = {'enabled': self.enabled, 'verify': self.verify, 'check_hostname': self.check_hostname}
        for key in ('ca_file', 'cert_file', 'key_file', 'credential'):
            value = getattr(self, key)
            if value is not None:
                result[key] = value
        if not redact and self.key_password is not None and self.credential is None:
            result['key_password'] = self.key_password
        return result

    def __repr__(self):
        secret = ', key_password=%s' % REDACTED if self.key_password is not None else ''
        return 'TlsSpec(%s%s)' % (', '.join('%s=%r' % item for item in sorted(self.to_dict().items())), secret)


def _lookup_credential(credentials, name, what):
    if not credentials or name not in credentials:
        raise ConfigError('%s: credential %r is not defined in the credentials given to this host' % (what, name))
    found = credentials[name]
    if not isinstance(found, dict):
        raise ConfigError('credential %r must be a dict (username, password, ...)' % name)
    return found


class ClusterSpec(object):
    """How to reach one ZooKeeper cluster.

    Build it with ``ClusterSpec.from_dict(d, credentials=None)``; ``d`` holds
    ``hosts`` (a list of ``host:port`` or a comma-separated connect string; a
    load balancer endpoint is just one host; port 2181 when omitted),
    ``chroot``, ``session_timeout`` and ``connect_timeout`` in seconds,
    ``read_only``, ``auth`` and ``tls`` (see ``AuthSpec`` / ``TlsSpec``) and
    an optional ``name`` used in messages.
    """

    __slots__ = ('name', 'hosts', 'chroot', 'session_timeout', 'connect_timeout', 'read_only', 'auth', 'tls')

    def __init__(self, hosts, name=None, chroot=None, session_timeout=DEFAULT_SESSION_TIMEOUT,
                 connect_timeout=DEFAULT_CONNECT_TIMEOUT, read_only=False, auth=None, tls=None):
        self.hosts = list(hosts)
        self.chroot = chroot
        self.session_timeout = session_timeout
        self.connect_timeout = connect_timeout
        self.read_only = read_only
        self.auth = auth
        self.tls = tls if tls is not None else TlsSpec()
        self.name = name or self.connect_string()

    @classmethod
    def from_dict(cls, data, credentials=None, strict=True):
        """Validate a plain dict into a spec; raises ``ConfigError`` with the offending option.

        ``credentials`` maps credential names (what registrations store) to
        dicts with ``username``/``password`` (and ``key_password`` for TLS).
        With ``strict`` (the default) unknown keys are an error, which catches
        typos; callers that keep extra keys beside the spec pass ``strict=False``.
        """
        if isinstance(data, ClusterSpec):
            return data
        if not isinstance(data, dict):
            raise ConfigError('a cluster spec must be a dict, got a %s' % type(data).__name__)
        name = _as_text(data.get('name'), 'cluster name')
        what = 'cluster %s' % name if name else 'cluster'
        if strict:
            _check_keys(data, _SPEC_KEYS, what)
        hosts_value = data.get('hosts')
        connect_string_chroot = None
        if isinstance(hosts_value, str):
            text = hosts_value.strip()
            if '/' in text:
                text, _sep, chroot_part = text.partition('/')
                connect_string_chroot = '/' + chroot_part
            entries = text.split(',')
        elif isinstance(hosts_value, (list, tuple)):
            entries = list(hosts_value)
        elif hosts_value is None:
            raise ConfigError('%s: hosts is required (a list of "host:port")' % what)
        else:
            raise ConfigError('%s: hosts must be a list of "host:port" or a comma-separated string' % what)
        hosts = []
        for entry in entries:
            address = parse_host(entry, '%s hosts' % what)
            if address not in hosts:
                hosts.append(address)
        if not hosts:
            raise ConfigError('%s: hosts is empty' % what)
        chroot = _parse_chroot(data.get('chroot'), '%s chroot' % what)
        if connect_string_chroot is not None:
            from_hosts = _parse_chroot(connect_string_chroot, '%s chroot (in hosts)' % what)
            if chroot is not None and from_hosts != chroot:
                raise ConfigError('%s: the connect string names chroot %s but chroot is %s' % (what, from_hosts, chroot))
            chroot = from_hosts
        session_timeout = _as_seconds(data.get('session_timeout'), '%s session_timeout' % what, DEFAULT_SESSION_TIMEOUT, 3600)
        connect_timeout = _as_seconds(data.get('connect_timeout'), '%s connect_timeout' % what, DEFAULT_CONNECT_TIMEOUT, 3600)
        read_only = False if data.get('read_only') is None else _as_bool(data.get('read_only'), '%s read_only' % what)
        auth = None
        # Control-store registrations spell "no authentication" as scheme none.
        auth_data = data.get('auth')
        if auth_data and not (isinstance(auth_data, dict) and str(auth_data.get('scheme', '')).lower() == 'none'):
            auth = AuthSpec.from_dict(auth_data, credentials, '%s auth' % what)
        tls = TlsSpec()
        if data.get('tls') is not None:
            tls = TlsSpec.from_dict(data['tls'], credentials, '%s tls' % what)
        return cls(hosts, name=name, chroot=chroot, session_timeout=session_timeout, connect_timeout=connect_timeout,
                   read_only=read_only, auth=auth, tls=tls)

    def connect_string(self, with_chroot=False):
        """``host1:port,host2:port`` (plus the chroot when asked)."""
        hosts = ','.join(self.hosts)
        if with_chroot and self.chroot:
            hosts += self.chroot
        return hosts

    def kazoo_args(self):
        """Keyword arguments for ``KazooClient``. They hold secrets: never log them."""
        args = {'hosts': self.connect_string(with_chroot=True), 'timeout': self.session_timeout, 'read_only': self.read_only}
        if self.auth is not None:
            args.update(self.auth.kazoo_args())
        args.update(self.tls.kazoo_args())
        return args

    def to_dict(self, redact=True):
        """The spec as a plain dict that ``from_dict`` accepts again.

        With ``redact`` (the default) no secret is included. Secrets that came
        from a named credential are never included: the name stands for them.
        """
        result = {'name': self.name, 'hosts': list(self.hosts), 'chroot': self.chroot,
                  'session_timeout': self.session_timeout, 'connect_timeout': self.connect_timeout,
                  'read_only': self.read_only}
        if self.auth is not None:
            result['auth'] = self.auth.to_dict(redact=redact)
        if self.tls.enabled or self.tls.ca_file or self.tls.cert_file:
            result['tls'] = self.tls.to_dict(redact=redact)
        return result

    def describe(self):
        """One line for messages: name, members, chroot, auth kind, TLS; no secrets."""
        text = self.name
        if self.name != self.connect_string():
            text += ' (%s)' % self.connect_string()
        if self.chroot:
            text += ' chroot %s' % self.chroot
        return text

    def __repr__(self):
        return 'ClusterSpec(name=%r, hosts=%r, chroot=%r, session_timeout=%r, connect_timeout=%r, read_only=%r, auth=%r, tls=%r)' % (
            self.name, self.hosts, self.chroot, self.session_timeout, self.connect_timeout, self.read_only, self.auth, self.tls)

    def __eq__(self, other):
        if not isinstance(other, ClusterSpec):
            return NotImplemented
        return self.to_dict(redact=False) == other.to_dict(redact=False) and self._secrets() == other._secrets()

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None

    def _secrets(self):
        return (self.auth.password if self.auth else None, self.tls.key_password)


# --------------------------------------------------------------------------
# Probing members (why a connection failed; member modes)
# --------------------------------------------------------------------------

def _describe_ssl_error(exc, tls=None):
    """An operator-readable reason for a TLS failure (never includes key material)."""
    text = str(exc)
    upper = text.upper()
    reason = getattr(exc, 'reason', None) or ''
    has_client_cert = tls is not None and bool(tls.cert_file)
    if isinstance(exc, ssl.SSLCertVerificationError) or 'CERTIFICATE_VERIFY_FAILED' in upper:
        detail = getattr(exc, 'verify_message', None) or reason or text
        if getattr(exc, 'verify_code', None) in _HOSTNAME_MISMATCH_CODES or 'MISMATCH' in detail.upper():
            return ('TLS handshake failed: host name mismatch, the server certificate was not issued for the host name or'
                    ' address this connection uses (%s). Connect with a name the certificate lists (its subjectAltNames;'
                    ' an IP address only matches an IP SAN), or set tls.check_hostname: false to skip this check (the'
                    ' certificate is still verified against tls.ca_file)' % detail)
        where = 'tls.ca_file (when it is given, only it is trusted)' if tls is not None and tls.ca_file else \
            'tls.ca_file (without it, the system\'s CAs are trusted)'
        return 'TLS handshake failed: the server certificate was not accepted (%s); check %s' % (detail, where)
    if 'CERTIFICATE_REQUIRED' in upper or (not has_client_cert and ('BAD_CERTIFICATE' in upper or 'HANDSHAKE_FAILURE' in upper)):
        return 'TLS rejected by the server: it requires a client certificate (set tls.cert_file and tls.key_file)'
    if 'WRONG_VERSION_NUMBER' in upper or 'UNKNOWN_PROTOCOL' in upper:
        return 'TLS handshake failed: the port does not speak TLS (is it the plain client port?)'
    if 'UNKNOWN_CA' in upper or 'BAD_CERTIFICATE' in upper:
        return 'TLS rejected by the server: it does not accept our client certificate (%s)' % (reason or text)
    return 'TLS error: %s' % (reason or text)


class _ProbeFailed(Exception):
    """A member probe failed; ``reason`` says at which step and why."""

    def __init__(self, reason):
        super(_ProbeFailed, self).__init__(reason)
        self.reason = reason


def _exchange(address, payload, tls, timeout):
    """Connect to ``address`` (plain or TLS), send ``payload`` and read until the server closes.

    Returns the bytes read; raises ``_ProbeFailed`` naming the step that failed
    (DNS, TCP connect, TLS handshake, reading the answer).
    """
    host, port = split_host_port(address)
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _ProbeFailed('DNS lookup of %s failed: %s' % (host, exc.strerror or exc))
    family, socktype, proto, _canon, sockaddr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(sockaddr)
        except socket.timeout:
            raise _ProbeFailed('TCP connect timed out after %gs (host down or port filtered?)' % timeout)
        except ConnectionRefusedError:
            raise _ProbeFailed('connection refused (nothing listens on that port)')
        except OSError as exc:
            raise _ProbeFailed('TCP connect failed: %s' % (exc.strerror or exc))
        use_tls = tls is not None and tls.enabled
        if use_tls:
            try:
                sock = tls.ssl_context().wrap_socket(sock, server_hostname=host)
            except socket.timeout:
                raise _ProbeFailed('TLS handshake timed out after %gs' % timeout)
            except ssl.SSLError as exc:
                raise _ProbeFailed(_describe_ssl_error(exc, tls))
            except OSError as exc:
                raise _ProbeFailed('TLS handshake failed: %s' % (exc.strerror or exc))
        chunks = []
        try:
            if payload:
                sock.sendall(payload)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            if chunks:
                return b''.join(chunks)
            hint = '' if use_tls else ' (does the port expect TLS? set tls.enabled)'
            raise _ProbeFailed('the member accepted the connection but did not answer within %gs%s' % (timeout, hint))
        except ssl.SSLError as exc:
            raise _ProbeFailed(_describe_ssl_error(exc, tls))
        except OSError as exc:
            if chunks:
                return b''.join(chunks)
            raise _ProbeFailed('connection failed while reading the answer: %s' % (exc.strerror or exc))
        return b''.join(chunks)
    finally:
        sock.close()


def four_letter_word(address, word='srvr', tls=None, timeout=2.0):
    """Send a four-letter word to one member (over TLS when ``tls.enabled``) and return its answer as text.

    Raises ``ClusterUnreachableError`` (with ``failures``) when the member cannot be asked.
    """
    try:
        return _exchange(address, word.encode('ascii'), tls, timeout).decode('utf-8', 'replace')
    except _ProbeFailed as exc:
        raise ClusterUnreachableError('cannot ask %s: %s' % (address, exc.reason), failures={address: exc.reason})


def admin_command(address, port, command, timeout=3.0):
    """Run ``command`` on the AdminServer of the member at ``address`` (``host:port`` of its client port) and return its JSON.

    The AdminServer (``admin.enableServer``, ZooKeeper 3.5+) answers over HTTP
    on ``port`` of the same host (``/commands/<command>``); it is the way in
    where four-letter words are not whitelisted. Raises
    ``ClusterUnreachableError`` when it cannot be asked or answers with an error.
    """
    host, _port = split_host_port(address)
    url = 'http://%s:%d/commands/%s' % ('[%s]' % host if ':' in host else host, int(port), command)
    try:
        # straight to the member: an http_proxy of the controller's environment must not carry it
        handle = build_opener(ProxyHandler({})).open(url, timeout=timeout)
        try:
            answer = json.loads(handle.read().decode('utf-8', 'replace'))
        finally:
            handle.close()
    except HTTPError as exc:
        reason = 'the AdminServer at %s answered HTTP %d' % (url, exc.code)
        raise ClusterUnreachableError('cannot ask %s: %s' % (address, reason), failures={address: reason})
    except (URLError, socket.error, ValueError) as exc:
        reason = 'the AdminServer at %s did not answer (%s)' % (url, getattr(exc, 'reason', exc))
        raise ClusterUnreachableError('cannot ask %s: %s' % (address, reason), failures={address: reason})
    if not isinstance(answer, dict) or answer.get('error'):
        reason = 'the AdminServer at %s refused %s: %s' % (url, command, answer.get('error') if isinstance(answer, dict) else answer)
        raise ClusterUnreachableError('cannot ask %s: %s' % (address, reason), failures={address: reason})
    return answer


def parse_srvr(text):
    """Parse a ``srvr`` answer into {'version', 'mode', 'zxid', 'node_count'} (missing keys left out)."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if not sep:
            continue
        key = key.strip().lower()
        value = value.strip()
        if key == 'zookeeper version':
            result['version'] = value.split(',', 1)[0].strip()
        elif key == 'mode':
            result['mode'] = value
        elif key == 'zxid':
            try:
                result['zxid'] = int(value, 16) if value.lower().startswith('0x') else int(value)
            except ValueError:
                pass
        elif key == 'node count':
            try:
                result['node_count'] = int(value)
            except ValueError:
                pass
    return result


def _srvr_verdict(text, tls_enabled):
    """(mode or None, reason or None) from a srvr answer that may be a refusal."""
    if not text:
        hint = '' if tls_enabled else ' (does the port expect TLS? set tls.enabled)'
        return None, 'the member closed the connection without answering srvr%s' % hint
    if 'not in the whitelist' in text:
        return None, 'srvr four-letter word is not whitelisted (4lw.commands.whitelist)'
    if 'not currently serving requests' in text:
        return None, 'up but not serving requests (no quorum?)'
    info = parse_srvr(text)
    if 'mode' in info:
        return info['mode'], None
    return None, 'unexpected srvr answer: %r' % text[:80]


def _ask_srvr(address, tls, timeout):
    """``{'mode', 'version', 'zxid', 'node_count', 'error'}`` of one member (mode None when it cannot say)."""
    status = {'mode': None, 'version': None, 'error': None}
    try:
        text = _exchange(address, b'srvr', tls, timeout).decode('utf-8', 'replace')
    except _ProbeFailed as exc:
        status['error'] = exc.reason
        return status
    status.update(parse_srvr(text))
    status['mode'], status['error'] = _srvr_verdict(text, tls is not None and tls.enabled)
    return status


def member_status(spec, timeout=2.0):
    """Ask each member separately (``srvr``) how it is doing.

    Returns ``{host:port: {'mode': ..., 'version': ..., 'zxid': ..., 'node_count': ..., 'error': reason}}``;
    ``mode`` is None and ``error`` set where a member cannot say. Members are
    asked concurrently, so this takes at most about ``timeout`` seconds.
    """
    spec = ClusterSpec.from_dict(spec)
    results = {}
    lock = threading.Lock()

    def ask(address):
        status = _ask_srvr(address, spec.tls, timeout)
        with lock:
            results[address] = status

    _for_each_member(spec.hosts, ask)
    return results


def member_modes(spec, timeout=2.0):
    """``{host:port: 'leader'|'follower'|'observer'|'standalone'|'read-only'|'unreachable: reason'}``.

    A member that answers but will not tell its mode (srvr not whitelisted)
    shows as ``'unknown: reason'``.
    """
    modes = {}
    for address, status in member_status(spec, timeout=timeout).items():
        if status['mode']:
            modes[address] = status['mode']
        elif status['error'] and 'whitelist' in status['error']:
            modes[address] = 'unknown: %s' % status['error']
        else:
            modes[address] = 'unreachable: %s' % status['error']
    return modes


def _for_each_member(hosts, func):
    """Run ``func(address)`` for every member concurrently (probes each take up to a timeout)."""
    threads = [threading.Thread(target=func, args=(address,), name='zk-probe-%s' % address) for address in hosts]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()


def probe_members(spec, timeout=2.0):
    """Why each member cannot be used: ``{host:port: None (usable as far as a probe can tell) or reason}``.

    Tries DNS, a TCP connect, the TLS handshake when TLS is on, and ``srvr``
    to tell a member that is up but not serving. A member that answers but
    does not whitelist ``srvr`` counts as usable.
    """
    spec = ClusterSpec.from_dict(spec)
    results = {}
    lock = threading.Lock()

    def probe(address):
        status = _ask_srvr(address, spec.tls, timeout)
        reason = status['error']
        if status['mode'] or (reason and 'whitelist' in reason):
            reason = None
        with lock:
            results[address] = reason

    _for_each_member(spec.hosts, probe)
    return results


# --------------------------------------------------------------------------
# Connecting
# --------------------------------------------------------------------------

def _poll_select(rlist, wlist, xlist, timeout=None):
    """``select.select`` look-alike built on ``poll``: no descriptor limit, no per-call kernel object.

    kazoo's threading handler builds and closes an epoll selector on every
    call (several per request); this cuts that cost and roughly doubles the
    request rate of one connection (see tests/bench/bench_snapshot.py).
    """
    poller = select.poll()
    objects = {}
    for obj in rlist:
        fd = obj if isinstance(obj, int) else obj.fileno()
        objects.setdefault(fd, [0, []])
        objects[fd][0] |= select.POLLIN
        objects[fd][1].append((obj, 'r'))
    for obj in wlist:
        fd = obj if isinstance(obj, int) else obj.fileno()
        objects.setdefault(fd, [0, []])
        objects[fd][0] |= select.POLLOUT
        objects[fd][1].append((obj, 'w'))
    for fd, (mask, _objs) in objects.items():
        poller.register(fd, mask)
    millis = None if timeout is None else max(0, int(timeout * 1000 + 0.999))
    ready_read, ready_write = [], []
    for fd, event in poller.poll(millis):
        for obj, kind in objects[fd][1]:
            if kind == 'r' and event & (select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                ready_read.append(obj)
            elif kind == 'w' and event & (select.POLLOUT | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                ready_write.append(obj)
    return ready_read, ready_write, []


def _default_connection_retry():
    # Keep retrying forever (the session may still be alive on the servers)
    # but never back off beyond a second: kazoo's default backs off up to an
    # hour, far longer than any session timeout.
    return {'max_tries': -1, 'delay': 0.1, 'backoff': 2, 'max_jitter': 0.4, 'max_delay': 1.0}


def stop_quietly(client):
    try:
        client.stop()
    except Exception:  # pylint: disable=broad-except
        pass
    try:
        client.close()
    except Exception:  # pylint: disable=broad-except
        pass


def _check_runtime(spec):
    if not HAS_KAZOO:
        raise ConfigError('the kazoo Python library is required to talk to ZooKeeper but cannot be imported', cluster=spec.name)
    if spec.tls.enabled:
        spec.tls.check_files('cluster %s tls' % spec.name)
        try:
            spec.tls.ssl_context()
        except ssl.SSLError as exc:
            raise ConfigError('cluster %s tls: cannot load the certificate files (%s); wrong key_password or not PEM?'
                              % (spec.name, getattr(exc, 'reason', None) or type(exc).__name__), cluster=spec.name)
        except OSError as exc:
            raise ConfigError('cluster %s tls: cannot read the certificate files (%s)' % (spec.name, exc.strerror or exc), cluster=spec.name)
    if spec.auth is not None and spec.auth.scheme == 'sasl' and not PURESASL_AVAILABLE:
        raise ConfigError('cluster %s auth: SASL needs the pure-sasl Python package (and kerberos for GSSAPI), which is not installed'
                          % spec.name, cluster=spec.name)


def _tls_connection_factory(client, tls):
    """Make ``client`` open its TLS connections with ``tls.ssl_context()`` instead of kazoo's own context.

    kazoo 2.11 (``kazoo.handlers.utils.create_tcp_connection``) builds a new
    context per connection that always trusts the system's CAs as well as
    ``ca`` and takes ``check_hostname`` as given. The handler's
    ``create_connection`` (used for sessions, the read-write server search
    and ``client.command``) is replaced on this client's own handler by one
    that wraps the socket with our context: only ``ca_file`` when given, host
    names checked by default. Plain connections go to kazoo unchanged.
    """
    from kazoo.handlers import utils as kazoo_handler_utils

    handler = client.handler
    original = handler.create_connection
    context = tls.ssl_context()

    def create_connection(address, hostname=None, timeout=None, use_ssl=False, **_ignored):
        if not use_ssl:
            return original(address, hostname=hostname, timeout=timeout, use_ssl=False)
        if timeout is None:
            timeout = socket.getdefaulttimeout()
        infos = socket.getaddrinfo(address[0], address[1], 0, socket.SOCK_STREAM)
        raw = socket.socket(infos[0][0], socket.SOCK_STREAM)
        try:
            conn = context.wrap_socket(raw, server_hostname=hostname or address[0])
            conn.settimeout(timeout)
            conn.connect(address)
        except BaseException:
            raw.close()
            raise
        kazoo_handler_utils._set_default_tcpsock_options(socket, conn)  # pylint: disable=protected-access
        return conn

    handler.create_connection = create_connection


def connect(spec, credentials=None, fast_select=True, connection_retry=None, logger=None, auth_check_path=None,
            create_chroot=False, handler=None):
    """A started ``KazooClient`` for ``spec`` (a ``ClusterSpec`` or a dict).

    Waits up to ``spec.connect_timeout`` for a session. Raises:

    * ``ClusterUnreachableError`` when no session could be established; its
      ``failures`` maps every member to why (DNS, refused, timeout, TLS, not serving);
    * ``AuthFailedError`` when the server refuses the credentials (SASL) or,
      with ``auth_check_path``, when the identity cannot read that path (a
      wrong digest password only shows on access, see the module docs);
    * ``NoNodeError`` when the chroot does not exist (unless ``create_chroot``);
    * ``ConfigError`` for unusable local settings (missing certificate files, no SASL library).

    The caller owns the client: stop and close it, or use ``connected()``.
    ``fast_select`` swaps kazoo's per-call epoll selector for ``poll``.
    """
    spec = ClusterSpec.from_dict(spec, credentials=credentials)
    _check_runtime(spec)
    kwargs = spec.kazoo_args()
    kwargs['connection_retry'] = connection_retry if connection_retry is not None else _default_connection_retry()
    if logger is not None:
        kwargs['logger'] = logger
    if handler is not None:
        kwargs['handler'] = handler
    try:
        client = KazooClient(**kwargs)
    except (ValueError, kazoo_exceptions.ConfigurationError) as exc:
        raise ConfigError('cluster %s: kazoo refused the settings: %s' % (spec.name, exc), cluster=spec.name)
    if fast_select and hasattr(select, 'poll') and handler is None:
        client.handler.select = _poll_select
    if spec.tls.enabled:
        if handler is not None:
            raise ConfigError('cluster %s: TLS connections need the client\'s own handler (no handler argument)' % spec.name,
                              cluster=spec.name)
        _tls_connection_factory(client, spec.tls)
    try:
        _start_and_check(client, spec, auth_check_path, create_chroot)
    except BaseException:
        stop_quietly(client)
        raise
    # What it was connected with, for more sessions of the same identity (``extra_sessions``).
    setattr(client, _SPEC_ATTR, spec)
    return client


def _start_and_check(client, spec, auth_check_path, create_chroot):
    event = client.start_async()
    deadline = time.monotonic() + spec.connect_timeout
    while not event.wait(0.05):
        if client.client_state == KeeperState.AUTH_FAILED:
            raise _credentials_refused(spec)
        if time.monotonic() >= deadline:
            _raise_unreachable(client, spec)
    # kazoo reports CONNECTED before it sends the authentication packets, so
    # a first request tells whether authentication went through; it also
    # checks the chroot.
    try:
        root_stat = client.exists_async('/').get(timeout=max(1.0, deadline - time.monotonic()))
    except kazoo_exceptions.AuthFailedError:
        raise _credentials_refused(spec)
    except Exception as exc:  # pylint: disable=broad-except
        if client.client_state == KeeperState.AUTH_FAILED:
            raise _credentials_refused(spec)
        raise translate_error(exc, path='/', cluster=spec.name)
    if root_stat is None and spec.chroot:
        if not create_chroot:
            raise NoNodeError('chroot %s does not exist on cluster %s (create it first, or connect without the chroot)' % (spec.chroot, spec.name),
                              path=spec.chroot, cluster=spec.name)
        chroot = client.chroot
        client.chroot = ''
        try:
            with zk_errors(path=spec.chroot, cluster=spec.name):
                client.ensure_path(chroot)
        finally:
            client.chroot = chroot
    if auth_check_path is not None:
        check_identity(client, auth_check_path, spec)


def _credentials_refused(spec):
    who = spec.auth.describe() if spec.auth is not None else 'this client'
    return AuthFailedError('cluster %s refused the credentials of %s' % (spec.name, who), cluster=spec.name)


def check_identity(client, path, spec=None):
    """Read ``path`` (data and ACL) to prove the connection's identity may read it.

    ZooKeeper takes any digest password at connect time; this is how a wrong
    one shows up early, as ``AuthFailedError`` naming the path.
    """
    cluster = spec.name if spec is not None else None
    try:
        client.get(path)
        client.get_acls(path)
    except kazoo_exceptions.NoAuthError:
        if spec is not None and spec.auth is not None and spec.auth.scheme == 'digest':
            prove_identity(client, spec)    # raises "wrong password for user X" where the cluster shows it
        who = spec.auth.describe() if spec is not None and spec.auth is not None else 'an anonymous connection'
        hint = ''
        if spec is not None and spec.auth is not None and spec.auth.scheme == 'digest':
            hint = ('; ZooKeeper accepts any digest password at connect time, so check the password first,'
                    ' then the ACL (or use a superDigest identity)')
        raise AuthFailedError('%s may not read %s on cluster %s%s' % (who, path, cluster, hint), path=path, cluster=cluster)
    except Exception as exc:  # pylint: disable=broad-except
        raise translate_error(exc, path=path, cluster=cluster)


#: How many znodes ``prove_identity`` looks at, at most, for ACL entries naming the user.
IDENTITY_SCAN_LIMIT = 2000
_PERM_ADMIN = 16


def digest_id(username, password):
    """The ``user:base64(sha1(user:password))`` id ZooKeeper derives from a digest credential (what ACLs hold)."""
    digest = hashlib.sha1(('%s:%s' % (username, password)).encode('utf-8')).digest()
    return '%s:%s' % (username, base64.b64encode(digest).decode('ascii'))


def _wrong_password(spec, path, detail):
    credential = ' (credential %r)' % spec.auth.credential if spec.auth.credential else ''
    return AuthFailedError('wrong password for user %s%s on cluster %s: %s at %s, and this password does not give that identity. '
                           'ZooKeeper accepts any digest password at connect time and refuses it only on access, so a wrong '
                           'password shows later as missing permissions (for example "lacks ADMIN permission")'
                           % (spec.auth.username, credential, spec.name, detail, path), path=path, cluster=spec.name)


def prove_identity(client, spec, limit=IDENTITY_SCAN_LIMIT, skip=()):
    """Show that the digest password of ``spec`` is the one the cluster knows for its user, or raise ``AuthFailedError``.

    ZooKeeper accepts any digest password at connect time: the session just
    gets the identity ``user:base64(sha1(user:password))``. What the cluster
    knows of the right password is in the ACLs that name the user, and in
    its superDigest setting. So:

    * whoAmI (ZooKeeper >= 3.7) listing the ``super`` scheme: the password is
      the superDigest user's: proven;
    * a znode whose ACL names ``digest:<user>:<hash>``, walked breadth-first
      from the root (of the chroot) over at most ``limit`` znodes, leaving out
      ``/zookeeper`` and the paths in ``skip`` (and what is below them): the
      same hash as ours proves the password; the hash hidden (``<user>:x``,
      what ZooKeeper 3.6+ shows sessions without ADMIN) in an entry that
      grants ADMIN means the password is wrong (that identity would have had
      ADMIN and seen the hash); another hash, seen through some other grant,
      means it is wrong unless another znode proves it. (A znode this
      session may neither read nor administer shows no ACL, so no evidence.)

    Raises ``AuthFailedError`` ("wrong password for user X ...") on a wrong
    password. Returns ``{'status': 'proven' | 'unproven' | 'not_applicable',
    'detail': text}``: ``unproven`` when nothing on the cluster names the
    user (a new cluster, or a user no ACL names) and it is not the super
    user; ``not_applicable`` without digest authentication (SASL refuses a
    wrong password at connect). Never includes a secret or a hash.
    """
    spec = ClusterSpec.from_dict(spec)
    if spec.auth is None or spec.auth.scheme != 'digest':
        return {'status': 'not_applicable', 'detail': 'no digest authentication (SASL refuses wrong credentials at connect)'}
    username = spec.auth.username
    ours = digest_id(username, spec.auth.password)
    prefix = username + ':'
    identities = _protocol.who_am_i(client)
    if identities and any(scheme == 'super' for scheme, _user in identities):
        return {'status': 'proven', 'detail': 'the server recognises user %s as its superDigest user' % username}
    skipped = set(['/zookeeper'] if not client.chroot else [])
    skipped.update(skip or ())
    other_hash = None
    queue = ['/']
    seen = 0
    while queue and seen < limit:
        batch, queue = queue[:limit - seen], queue[limit - seen:]
        seen += len(batch)
        pending = [(path, client.get_acls_async(path), client.get_children_async(path)) for path in batch]
        for path, acl_result, children_result in pending:
            try:
                acl = acl_result.get(timeout=spec.session_timeout)[0]
            except (kazoo_exceptions.NoAuthError, kazoo_exceptions.NoNodeError):
                acl = []
            except Exception as exc:  # pylint: disable=broad-except
                raise translate_error(exc, path=path, cluster=spec.name)
            try:
                children = children_result.get(timeout=spec.session_timeout)
            except (kazoo_exceptions.NoAuthError, kazoo_exceptions.NoNodeError):
                children = []
            except Exception as exc:  # pylint: disable=broad-except
                raise translate_error(exc, path=path, cluster=spec.name)
            for entry in acl:
                if entry.id.scheme != 'digest' or not entry.id.id.startswith(prefix):
                    continue
                if entry.id.id == ours:
                    return {'status': 'proven', 'detail': 'the ACL of %s names this identity' % path}
                if entry.id.id == prefix + 'x':
                    # Hidden because this session lacks ADMIN here, which the right identity would have had.
                    if entry.perms & _PERM_ADMIN:
                        raise _wrong_password(spec, path, 'an ACL entry grants user %s ADMIN' % username)
                elif other_hash is None:
                    other_hash = path
            for child in sorted(children):
                child_path = path.rstrip('/') + '/' + child
                if child_path not in skipped:
                    queue.append(child_path)
    if other_hash is not None:
        raise _wrong_password(spec, other_hash, 'an ACL entry names user %s with another password' % username)
    scope = 'the first %d znodes' % limit if queue else 'the cluster'
    return {'status': 'unproven',
            'detail': 'no ACL in %s names user %s, and the server does not report it as its superDigest user: the password '
                      'cannot be proven here (ZooKeeper accepts any digest password at connect time)' % (scope, username)}


def _raise_unreachable(client, spec):
    stop_quietly(client)
    failures = probe_members(spec, timeout=min(2.0, spec.connect_timeout))
    for address in spec.hosts:
        if failures.get(address) is None:
            failures[address] = 'TCP connection accepted, but no ZooKeeper session was established within %gs' % spec.connect_timeout
    lines = '; '.join('%s: %s' % (address, failures[address]) for address in spec.hosts)
    raise ClusterUnreachableError('cannot connect to cluster %s: %s' % (spec.name, lines), cluster=spec.name, failures=failures)


def connect_members(spec, credentials=None, count=None, **kwargs):
    """Started clients, one per member of ``spec`` (or ``count`` of them, dealt out round-robin over the members).

    For work that scales with sessions, such as ACL reads (one request per
    node): a server answers one session's requests one after another, and
    each member serves reads from its own copy of the tree. Members that
    cannot be reached are skipped; ``ClusterUnreachableError`` only when none
    can be. The caller stops and closes every client.
    """
    spec = ClusterSpec.from_dict(spec, credentials=credentials)
    members = list(spec.hosts)
    count = len(members) if count is None else count
    clients = []
    failures = {}
    try:
        for index in range(count):
            member = members[index % len(members)]
            if member in failures:
                continue
            single = ClusterSpec(hosts=[member], name=spec.name, chroot=spec.chroot, session_timeout=spec.session_timeout,
                                 connect_timeout=spec.connect_timeout, read_only=spec.read_only, auth=spec.auth, tls=spec.tls)
            try:
                clients.append(connect(single, **kwargs))
            except ClusterUnreachableError as exc:
                failures.update(exc.failures)
    except BaseException:
        stop_clients(clients)
        raise
    if not clients:
        raise ClusterUnreachableError('cannot connect to any member of cluster %s' % spec.name, cluster=spec.name, failures=failures)
    return clients


def extra_sessions(client, count):
    """Up to ``count`` more started clients like ``client`` (same cluster, identity and chroot), dealt over the members.

    Only for a client made by ``connect`` (else ``[]``). Best effort: members
    that refuse more sessions (``maxClientCnxns``, down) are skipped, and
    ``[]`` means the caller goes on with ``client`` alone. The caller stops
    and closes every client returned (``stop_clients``).
    """
    spec = getattr(client, _SPEC_ATTR, None)
    if spec is None or count < 1:
        return []
    try:
        return connect_members(spec, count=count)
    except ZkMigrationError:
        return []


def stop_clients(clients):
    """Stop and close each of ``clients``, ignoring failures (they are being dropped)."""
    for client in clients:
        stop_quietly(client)


@contextlib.contextmanager
def connected(spec, **kwargs):
    """``with connected(spec) as client:`` a started client, always stopped and closed afterwards."""
    client = connect(spec, **kwargs)
    try:
        yield client
    finally:
        stop_quietly(client)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def _is_unreachable(exc):
    if not HAS_KAZOO:
        return isinstance(exc, (socket.error, ssl.SSLError))
    return isinstance(exc, (kazoo_exceptions.ConnectionLoss, kazoo_exceptions.SessionExpiredError,
                            kazoo_exceptions.ConnectionDropped, KazooTimeoutError, kazoo_exceptions.OperationTimeoutError,
                            kazoo_exceptions.SessionMovedError, kazoo_exceptions.ZookeeperStoppedError,
                            kazoo_exceptions.RequestTimeoutError, socket.error, ssl.SSLError))


def translate_error(exc, path=None, cluster=None, request_bytes=None, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES):
    """The engine error (from ``_errors``) for a kazoo or socket exception, or ``exc`` itself when unknown.

    ``request_bytes`` is the size of the request that failed: ZooKeeper
    answers a request over ``jute.maxbuffer`` by dropping the connection,
    which kazoo reports as ConnectionLoss, so a lost connection on a request
    larger than ``max_request_bytes`` is reported as ``TooLargeError``.
    Use as ``raise translate_error(exc, path) from exc``.
    """
    if isinstance(exc, ZkMigrationError) or not HAS_KAZOO:
        if not HAS_KAZOO and isinstance(exc, (socket.error, ssl.SSLError)):
            return ClusterUnreachableError('lost the connection to the cluster (%s)' % exc, path=path, cluster=cluster)
        return exc
    where = ' %s' % path if path else ''
    ke = kazoo_exceptions
    if isinstance(exc, ke.NoNodeError):
        return NoNodeError('znode%s does not exist' % where if path else 'a znode does not exist (%s)' % type(exc).__name__,
                           path=path, cluster=cluster)
    if isinstance(exc, ke.NodeExistsError):
        return NodeExistsError('znode%s already exists' % where, path=path, cluster=cluster)
    if isinstance(exc, ke.NotEmptyError):
        return NotEmptyError('znode%s still has children' % where, path=path, cluster=cluster)
    if isinstance(exc, ke.BadVersionError):
        return VersionConflictError('znode%s changed since it was read (version check failed)' % where, path=path, cluster=cluster)
    if isinstance(exc, ke.NoAuthError):
        return AuthFailedError('not authorized on znode%s: the ACL does not grant this connection\'s identity the permission '
                               '(with digest auth a wrong password is accepted at connect and fails only here)' % where,
                               path=path, cluster=cluster)
    if isinstance(exc, ke.AuthFailedError):
        return AuthFailedError('the cluster refused our credentials', path=path, cluster=cluster)
    if isinstance(exc, ke.UnimplementedError):
        return UnsupportedByServerError('the server does not implement this operation (older ZooKeeper version?)', path=path, cluster=cluster)
    if isinstance(exc, ke.MarshallingError):
        return TooLargeError('the server could not read the request%s (too large for jute.maxbuffer?)' % (' for' + where if path else ''),
                             path=path, cluster=cluster)
    if isinstance(exc, ke.QuotaExceededError):
        return TooLargeError('a ZooKeeper quota is exceeded%s' % (' at' + where if path else ''), path=path, cluster=cluster)
    if isinstance(exc, ke.NoChildrenForEphemeralsError):
        return ZkMigrationError('znode%s: cannot create a child under an ephemeral node' % where, path=path, cluster=cluster)
    if isinstance(exc, ke.InvalidACLError):
        return ZkMigrationError('znode%s: the server rejected the ACL as invalid (an "auth" ACL needs an authenticated identity)' % where,
                                path=path, cluster=cluster)
    if isinstance(exc, ke.NotReadOnlyCallError):
        return ClusterUnreachableError('the server is read-only (it lost its quorum): writes are refused', path=path, cluster=cluster)
    if _is_unreachable(exc):
        if request_bytes is not None and max_request_bytes and request_bytes > max_request_bytes:
            return TooLargeError('the request%s is %d bytes, over the server limit of %d (jute.maxbuffer): the server dropped the connection'
                                 % (' for' + where if path else '', request_bytes, max_request_bytes), path=path, cluster=cluster)
        if isinstance(exc, ke.SessionExpiredError):
            reason = 'the session expired'
        elif isinstance(exc, KazooTimeoutError):
            reason = 'timed out'
        elif isinstance(exc, ssl.SSLError):
            reason = _describe_ssl_error(exc)
        else:
            reason = 'connection lost'
        return ClusterUnreachableError('lost the connection to the cluster%s: %s' % (' during' + where if path else '', reason),
                                       path=path, cluster=cluster)
    if isinstance(exc, ke.ZookeeperError):
        return ZkMigrationError('ZooKeeper error%s: %s' % (' on' + where if path else '', type(exc).__name__), path=path, cluster=cluster)
    return exc


@contextlib.contextmanager
def zk_errors(path=None, cluster=None, request_bytes=None, max_request_bytes=DEFAULT_MAX_REQUEST_BYTES):
    """``with zk_errors(path=p, cluster=name):`` re-raise kazoo exceptions as engine errors."""
    try:
        yield
    except ZkMigrationError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        translated = translate_error(exc, path=path, cluster=cluster, request_bytes=request_bytes, max_request_bytes=max_request_bytes)
        if translated is exc:
            raise
        raise translated from exc


# --------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------

class Capabilities(object):
    """What a connected server supports, found by trying the operations.

    ``containers`` and ``ttl`` stay None unless ``probe_extended_types()`` ran
    (it writes, so it is never done implicitly). ``server_version`` and
    ``server_mode`` come from the ``srvr`` four-letter word when it is
    whitelisted, else None.
    """

    __slots__ = ('multi_read', 'persistent_watches', 'containers', 'ttl', 'server_version', 'server_mode')

    def __init__(self, multi_read=False, persistent_watches=False, containers=None, ttl=None, server_version=None, server_mode=None):
        self.multi_read = multi_read
        self.persistent_watches = persistent_watches
        self.containers = containers
        self.ttl = ttl
        self.server_version = server_version
        self.server_mode = server_mode

    def to_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return 'Capabilities(%s)' % ', '.join('%s=%r' % (name, getattr(self, name)) for name in self.__slots__)


def _client_tls(client):
    """The TLS settings a connected kazoo client uses, as a ``TlsSpec``."""
    if not getattr(client, 'use_ssl', False):
        return TlsSpec()
    spec = getattr(client, _SPEC_ATTR, None)
    if spec is not None:
        return spec.tls
    return TlsSpec(enabled=True, ca_file=client.ca, cert_file=client.certfile, key_file=client.keyfile,
                   key_password=client.keyfile_password, verify=client.verify_certs, check_hostname=client.check_hostname)


def _peer_address(client):
    try:
        peer = client._connection._socket.getpeername()  # pylint: disable=protected-access
    except (AttributeError, OSError):
        return None
    host, port = peer[0], peer[1]
    return '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host, port)


def server_info(client, timeout=2.0):
    """``parse_srvr`` of the connected member's ``srvr`` answer; {} when it cannot be had (best effort).

    kazoo's ``client.command()`` would do for plain connections, but over TLS
    it passes the port number as the TLS server name and fails; this asks the
    same member with the client's own TLS settings.
    """
    address = _peer_address(client)
    if address is None:
        return {}
    try:
        text = four_letter_word(address, 'srvr', tls=_client_tls(client), timeout=timeout)
    except ClusterUnreachableError:
        return {}
    if not text or 'not in the whitelist' in text:
        return {}
    return parse_srvr(text)


def probe_capabilities(client):
    """``Capabilities`` of the server ``client`` is connected to.

    multiRead and persistent watches are probed by sending the requests
    (``_protocol.supports_multi_read`` / ``supports_persistent_watches``);
    the version string is informational only.
    """
    info = server_info(client)
    caps = Capabilities(server_version=info.get('version'), server_mode=info.get('mode'))
    caps.multi_read = bool(_protocol.supports_multi_read(client))
    caps.persistent_watches = bool(_protocol.supports_persistent_watches(client))
    return caps


def probe_extended_types(client, scratch_path, caps=None):
    """Try to create a container and a TTL node under ``scratch_path`` (which must exist); delete them again.

    Fills ``caps.containers`` / ``caps.ttl`` when a ``Capabilities`` is given
    and returns ``{'containers': bool, 'ttl': bool, 'reasons': {...}}``. TTL
    nodes need ``zookeeper.extendedTypesEnabled=true`` on the server; the
    reason says so when they are refused.
    """
    base = scratch_path.rstrip('/') or ''
    stamp = '%x-%x' % (os.getpid(), int(time.time() * 1000))
    results = {'containers': False, 'ttl': False, 'reasons': {}}
    probes = (
        ('containers', base + '/probe-container-' + stamp, lambda p: _protocol.create_container(client, p, b'')),
        ('ttl', base + '/probe-ttl-' + stamp, lambda p: _protocol.create_ttl(client, p, b'', ttl_ms=60000)),
    )
    for key, path, create in probes:
        try:
            create(path)
        except kazoo_exceptions.NoNodeError:
            raise NoNodeError('scratch path %s for the extended-type probe does not exist' % scratch_path, path=scratch_path)
        except UnsupportedByServerError as exc:
            results['reasons'][key] = str(exc)
            continue
        except (kazoo_exceptions.UnimplementedError, kazoo_exceptions.BadArgumentsError) as exc:
            reason = 'refused by the server (%s)' % type(exc).__name__
            if key == 'ttl':
                reason += '; TTL nodes need zookeeper.extendedTypesEnabled=true on the server'
            results['reasons'][key] = reason
            _wait_connected(client)
            continue
        except Exception as exc:  # pylint: disable=broad-except
            translated = translate_error(exc, path=path)
            if isinstance(translated, (UnsupportedByServerError, TooLargeError)) or _is_unreachable(exc):
                # 3.4 servers answer an unknown opcode by closing the connection.
                results['reasons'][key] = 'refused by the server (%s)' % translated
                _wait_connected(client)
                continue
            raise translated from exc
        results[key] = True
        try:
            client.delete(path)
        except kazoo_exceptions.NoNodeError:
            pass
    if caps is not None:
        caps.containers = results['containers']
        caps.ttl = results['ttl']
    return results


def _wait_connected(client, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
