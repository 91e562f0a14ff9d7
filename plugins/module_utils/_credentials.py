# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The credentials model: named secrets (digest, SASL, TLS key passwords) from a file or a mapping, never logged.

Registrations name credentials; ``CredentialStore`` resolves a name to its
secret. The credentials file format is documented in docs/security.md.

This is a private module of the zookeeper.migration collection; it may change
without notice.
"""

import errno
import json
import logging
import os
import stat as stat_module
import threading
import time

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ConfigError
from ansible_collections.zookeeper.migration.plugins.module_utils._records import CREDENTIAL_TYPES, Fields, NAME_RE, SASL_MECHANISMS
LOG = logging.getLogger('zookeeper_migration.control')

try:
    import yaml
    HAS_YAML = True
except ImportError:
    HAS_YAML = False


class Credential(object):
    """One named credential. Its repr and str never show secrets."""

    FIELDS = ('name', 'type', 'username', 'password', 'mechanism', 'service', 'principal', 'key_password')
    SECRET_FIELDS = ('password', 'key_password')
    __slots__ = FIELDS

    def __init__(self, **fields):
        for field in self.FIELDS:
            setattr(self, field, fields.get(field))

    def __repr__(self):
        shown = []
        for field in self.FIELDS:
            value = getattr(self, field)
            if value is None:
                continue
            shown.append('%s=%s' % (field, "'<redacted>'" if field in self.SECRET_FIELDS else repr(value)))
        return 'Credential(%s)' % ', '.join(shown)

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Credential) and all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def describe(self):
        """The non-secret fields (for reports and logs)."""
        return dict((f, getattr(self, f)) for f in self.FIELDS if f not in self.SECRET_FIELDS and getattr(self, f) is not None)

    def secrets_dict(self):
        """All fields, secrets included: only to hand to a connection, never to log or return."""
        return dict((f, getattr(self, f)) for f in self.FIELDS if getattr(self, f) is not None)


_CREDENTIAL_FIELDS = {
    'digest': ('username', 'password'),
    'sasl': ('mechanism', 'username', 'password', 'service', 'principal'),
    'tls': ('key_password',),
}


def _credential_string(fields, key, required):
    """Read a string field without ever echoing its value."""
    fields.seen.add(key)
    value = fields.data.get(key)
    if value is None:
        if required:
            raise ConfigError('%s: field %r is required' % (fields.where, key))
        return None
    if not isinstance(value, str):
        raise ConfigError('%s: field %r must be a string (quote it in YAML)' % (fields.where, key))
    if not value:
        raise ConfigError('%s: field %r must not be empty' % (fields.where, key))
    return value


def validate_credentials_mapping(mapping, source='credentials'):
    """Validate secrets keyed by credential name; returns {name: Credential}.

    Shapes: ``{type: digest, username, password}``,
    ``{type: sasl, mechanism: DIGEST-MD5|GSSAPI, username, password, service, principal}``
    (DIGEST-MD5 needs username and password; GSSAPI uses the Kerberos
    ticket cache, ``principal``/``service`` optional), ``{type: tls, key_password}``.
    Used for the daemons' credentials file and the modules' ``credentials``
    option alike. Error messages name the source, credential and field and
    never contain a secret value.
    """
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise ConfigError('%s must be a mapping of credential name to credential, got %s' % (source, type(mapping).__name__))
    out = {}
    for name in sorted(mapping, key=str):
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ConfigError('%s: credential names must be 1-128 characters of letters, digits, ".", "_" or "-" '
                              '(one name is not)' % source)
        where = '%s: credential %r' % (source, name)
        entry = mapping[name]
        fields = Fields(entry, where, secret_safe=True)
        kind = fields.data.get('type')
        fields.seen.add('type')
        if kind not in CREDENTIAL_TYPES:
            raise ConfigError('%s: field \'type\' is %s; it must be one of %s'
                              % (where, 'missing' if kind is None else 'not a known type', ', '.join(CREDENTIAL_TYPES)))
        values = {'name': name, 'type': kind}
        if kind == 'digest':
            values['username'] = _credential_string(fields, 'username', True)
            values['password'] = _credential_string(fields, 'password', True)
            if ':' in values['username']:
                raise ConfigError('%s: field \'username\' must not contain ":" (digest auth is "user:password")' % where)
        elif kind == 'sasl':
            mechanism = _credential_string(fields, 'mechanism', True)
            if mechanism.upper() not in SASL_MECHANISMS:
                raise ConfigError('%s: field \'mechanism\' must be one of %s' % (where, ', '.join(SASL_MECHANISMS)))
            values['mechanism'] = mechanism.upper()
            needs_password = values['mechanism'] == 'DIGEST-MD5'
            values['username'] = _credential_string(fields, 'username', needs_password)
            values['password'] = _credential_string(fields, 'password', needs_password)
            values['service'] = _credential_string(fields, 'service', False)
            values['principal'] = _credential_string(fields, 'principal', False)
        else:
            values['key_password'] = _credential_string(fields, 'key_password', True)
        unknown = sorted(set(fields.data) - fields.seen, key=str)
        if unknown:
            raise ConfigError('%s: unknown field%s %s for type %s (allowed: %s)' % (
                where, 's' if len(unknown) > 1 else '', ', '.join(repr(str(k)[:40]) for k in unknown), kind,
                ', '.join(('type',) + _CREDENTIAL_FIELDS[kind])))
        out[name] = Credential(**values)
    return out


#: Largest credentials file read (a sanity bound: the file holds a few entries).
MAX_CREDENTIALS_FILE_BYTES = 1024 * 1024


def _parse_credentials_text(text, path):
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith('{'):
        try:
            return json.loads(stripped)
        except ValueError as exc:
            # json's message names the problem and position, never the text itself
            position = getattr(exc, 'lineno', None), getattr(exc, 'colno', None)
            if position[0] is None:
                raise ConfigError('credentials file %s is not valid JSON' % path)
            raise ConfigError('credentials file %s is not valid JSON near line %s, column %s' % (path, position[0], position[1]))
    if not HAS_YAML:
        raise ConfigError('credentials file %s is not JSON and PyYAML is not installed: write it as JSON or install PyYAML' % path)
    try:
        return yaml.safe_load(stripped)
    except yaml.YAMLError as exc:
        # the YAML error text quotes the offending line, which may hold a secret: report the position only
        mark = getattr(exc, 'problem_mark', None)
        if mark is not None:
            raise ConfigError('credentials file %s is not valid YAML near line %d, column %d' % (path, mark.line + 1, mark.column + 1))
        raise ConfigError('credentials file %s is not valid YAML' % path)


def load_credentials(path):
    """Read and validate a credentials file; returns {name: Credential}.

    The file (YAML or JSON, a mapping keyed by credential name) must be a
    regular file owned by the running user with no group/other permissions
    (0600 or stricter); anything else is a ConfigError, as is a missing or
    unknown field. Messages never include secret values.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError('credentials file path must be a non-empty string')
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_CLOEXEC', 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            reason = 'does not exist'
        elif exc.errno == errno.EACCES:
            reason = 'is not readable by this user'
        else:
            reason = 'cannot be opened: %s' % os.strerror(exc.errno or 0)
        raise ConfigError('credentials file %s %s' % (path, reason))
    try:
        info = os.fstat(fd)
        if not stat_module.S_ISREG(info.st_mode):
            raise ConfigError('credentials file %s is not a regular file' % path)
        mode = stat_module.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise ConfigError('credentials file %s has mode %04o: it must not be readable or writable by group or others '
                              '(0600 or stricter; run: chmod 600 %s)' % (path, mode, path))
        if hasattr(os, 'geteuid') and info.st_uid != os.geteuid():
            raise ConfigError('credentials file %s is owned by uid %d, not by the user running this process (uid %d)'
                              % (path, info.st_uid, os.geteuid()))
        if info.st_size > MAX_CREDENTIALS_FILE_BYTES:
            raise ConfigError('credentials file %s is larger than %d bytes' % (path, MAX_CREDENTIALS_FILE_BYTES))
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        text = b''.join(chunks).decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigError('credentials file %s is not UTF-8 text' % path)
    return validate_credentials_mapping(_parse_credentials_text(text, path), source='credentials file %s' % path)


class CredentialStore(object):
    """Named credentials from a file (daemons) or a mapping (modules' no_log option).

    ``reload()`` re-reads the file (the daemon calls it on SIGHUP); if the new
    file is invalid the previous credentials stay in force and ConfigError is
    raised for the caller to log. ``resolve(name)`` returns a ``Credential``.
    Its repr names the source and the credential names only.
    """

    def __init__(self, path=None, mapping=None):
        if (path is None) == (mapping is None):
            raise ConfigError('CredentialStore needs exactly one of path or mapping')
        self.path = path
        self._mapping = mapping
        self._lock = threading.Lock()
        self._credentials = {}
        self.loaded_at = None
        self.reload()

    @classmethod
    def from_file(cls, path):
        """Load a credentials file."""
        return cls(path=path)

    @classmethod
    def from_mapping(cls, mapping):
        """Wrap the modules' ``credentials`` option (None is an empty mapping)."""
        return cls(mapping=mapping if mapping is not None else {})

    @property
    def source(self):
        """Where the credentials come from (for messages)."""
        return 'credentials file %s' % self.path if self.path else 'credentials option'

    def reload(self):
        """Re-read and validate; swap in the new set only if valid. Returns the credential names."""
        if self.path is not None:
            credentials = load_credentials(self.path)
        else:
            credentials = validate_credentials_mapping(self._mapping, source=self.source)
        with self._lock:
            self._credentials = credentials
            self.loaded_at = time.time()
        LOG.info('loaded %d credential(s) from %s: %s', len(credentials), self.source, ', '.join(sorted(credentials)) or '-')
        return sorted(credentials)

    def names(self):
        """Credential names available."""
        with self._lock:
            return sorted(self._credentials)

    def resolve(self, name, expected_type=None):
        """The credential ``name``; ConfigError if unknown or not of ``expected_type``."""
        with self._lock:
            credential = self._credentials.get(name)
        if credential is None:
            raise ConfigError('credential %r is not defined in the %s' % (name, self.source))
        if expected_type is not None and credential.type != expected_type:
            raise ConfigError('credential %r in the %s is of type %s, but type %s is needed here'
                              % (name, self.source, credential.type, expected_type))
        return credential

    def __contains__(self, name):
        with self._lock:
            return name in self._credentials

    def __len__(self):
        with self._lock:
            return len(self._credentials)

    def __repr__(self):
        return 'CredentialStore(source=%r, names=%r)' % (self.source, self.names())

    __str__ = __repr__
