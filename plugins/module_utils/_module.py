# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AnsibleModule subclass and shared argument specs of the collection's modules.

This is a private module of the zookeeper.migration collection; it may change
without notice.

Every module builds its argument spec with ``ZkMigrationModule.generate_argspec(**extra)``
so that ``control`` (the control ensemble) and ``credentials`` (secrets keyed
by credential name) are the same everywhere and can be set once through
``module_defaults: group/zookeeper.migration.zk``. The documentation of these
options is the ``zookeeper.migration.zk`` doc fragment; a unit test keeps both
equal.

The class also turns the engine's errors (``_errors``) into exactly one
``fail_json`` per kind, with a message an operator can act on, and keeps
secrets out of logs and results, including secrets given inline inside
free-form cluster specs (options of type ``raw``).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import copy
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib, remove_values

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import ClusterUnreachableError, ZkMigrationError
from ansible_collections.zookeeper.migration.plugins.module_utils._client import (
    HAS_KAZOO,
    KAZOO_IMPORT_ERROR,
    ClusterSpec,
    connected,
)
from ansible_collections.zookeeper.migration.plugins.module_utils._control import ControlStore
from ansible_collections.zookeeper.migration.plugins.module_utils._records import DEFAULT_ROOT
from ansible_collections.zookeeper.migration.plugins.module_utils._credentials import Credential, validate_credentials_mapping

DEFAULT_CONTROL_ROOT = DEFAULT_ROOT
DEFAULT_SESSION_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0

# Keys of a secret inside a cluster spec dict (auth.password, tls.key_password).
SECRET_KEYS = ('password', 'key_password')

# Fields of a ``credentials`` entry that are not secret: the credential model's
# fields minus its secrets (``name`` is the entry's key, never a field). Only
# these are shown in results; any other field, known or not, stays masked.
PUBLIC_CREDENTIAL_FIELDS = tuple(field for field in Credential.FIELDS
                                 if field not in Credential.SECRET_FIELDS and field != 'name')


def auth_spec(sasl_details=True):
    """Argument spec of an ``auth`` dict (digest or SASL).

    Cluster registrations take the SASL mechanism, service and principal
    from the named credential, so the options of a cluster to register leave
    them out (``sasl_details=False``).
    """
    spec = dict(
        scheme=dict(type='str', choices=['digest', 'sasl'], default='digest'),
        username=dict(type='str'),
        password=dict(type='str', no_log=True),
        credential=dict(type='str'),
    )
    if sasl_details:
        spec.update(
            mechanism=dict(type='str', choices=['DIGEST-MD5', 'GSSAPI']),
            service=dict(type='str'),
            principal=dict(type='str'),
        )
    return spec


def tls_spec():
    """Argument spec of a ``tls`` dict.

    ``check_hostname`` has no default: unset, it follows ``verify`` (host
    names are checked whenever the certificate is verified).
    """
    return dict(
        enabled=dict(type='bool'),
        ca_file=dict(type='path'),
        cert_file=dict(type='path'),
        key_file=dict(type='path'),
        key_password=dict(type='str', no_log=True),
        credential=dict(type='str'),
        verify=dict(type='bool', default=True),
        check_hostname=dict(type='bool'),
    )


def cluster_connection_spec():
    """Top-level connection options of one cluster (the ``zookeeper.migration.zk.cluster`` fragment)."""
    return dict(
        hosts=dict(type='list', elements='str'),
        chroot=dict(type='str'),
        session_timeout=dict(type='float', default=DEFAULT_SESSION_TIMEOUT),
        connect_timeout=dict(type='float', default=DEFAULT_CONNECT_TIMEOUT),
        auth=dict(type='dict', options=auth_spec(sasl_details=False)),
        tls=dict(type='dict', options=tls_spec()),
    )


def control_option_spec():
    """Argument spec of the ``control`` option (the control ensemble)."""
    return dict(
        type='dict',
        options=dict(
            hosts=dict(type='list', elements='str', required=True),
            chroot=dict(type='str'),
            root=dict(type='str', default=DEFAULT_CONTROL_ROOT),
            session_timeout=dict(type='float', default=DEFAULT_SESSION_TIMEOUT),
            connect_timeout=dict(type='float', default=DEFAULT_CONNECT_TIMEOUT),
            auth=dict(type='dict', options=auth_spec()),
            tls=dict(type='dict', options=tls_spec()),
            allow_open_acl=dict(type='bool', default=False),
            world_read=dict(type='bool', default=False),
        ),
    )


def prune_empty(value):
    """A copy of ``value`` without None values and without dicts left empty.

    Ansible fills every unset sub-option with None; the engine's spec parser
    treats a present key as "given", so unset keys must go.
    """
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            item = prune_empty(item)
            if item is None or (isinstance(item, dict) and not item):
                continue
            result[key] = item
        return result
    if isinstance(value, list):
        return [prune_empty(item) for item in value]
    return value


def drop_defaults_only(spec_dict, key, defaults):
    """Remove ``spec_dict[key]`` when every value it holds is the one ``defaults`` gives.

    ``tls: {verify: true}`` (what Ansible makes of an unset ``tls`` with
    defaults applied) means "no TLS settings".
    """
    value = spec_dict.get(key)
    if isinstance(value, dict) and set(value) <= set(defaults) \
            and all(value[name] == defaults[name] for name in value):
        del spec_dict[key]
    return spec_dict


def cluster_spec_from_options(options, name=None):
    """The plain-dict cluster spec (``ClusterSpec.from_dict`` input) of connection options.

    ``options`` holds ``hosts``, ``chroot``, ``session_timeout``,
    ``connect_timeout``, ``auth`` and ``tls`` as Ansible validated them;
    other keys are ignored.
    """
    spec = {}
    for key in ('hosts', 'chroot', 'session_timeout', 'connect_timeout', 'auth', 'tls'):
        if options.get(key) is not None:
            spec[key] = copy.deepcopy(options[key])
    spec = prune_empty(spec)
    drop_defaults_only(spec, 'tls', {'verify': True, 'check_hostname': True})
    if 'auth' in spec and set(spec['auth']) == {'scheme'}:
        # Only the default scheme: no authentication asked for.
        del spec['auth']
    if name is not None:
        spec['name'] = name
    return spec


def secrets_in(value):
    """Every secret string held under a secret key (``password``, ``key_password``) anywhere in ``value``."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_KEYS and isinstance(item, str) and item:
                found.append(item)
            else:
                found.extend(secrets_in(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            found.extend(secrets_in(item))
    return found


def masked_strings(value):
    """The strings Ansible's ``no_log`` masking derives from ``value``: its non-empty leaves, numbers as text."""
    if isinstance(value, bytes):
        value = value.decode('utf-8', 'surrogateescape')
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set)):
        found = set()
        for item in value:
            found.update(masked_strings(item))
        return found
    if value is None or isinstance(value, bool):
        return set()
    return {str(value)}


def credential_values(credentials):
    """``(public, secret)``: the masked strings of the ``credentials`` option, split by field.

    ``public`` holds the string values of the non-secret fields
    (``PUBLIC_CREDENTIAL_FIELDS``: type, username, mechanism, service,
    principal); ``secret`` everything else: passwords, key passphrases, any
    unknown field and any entry that is not a dict. A value can be in both.
    """
    public, secret = set(), set()
    if not isinstance(credentials, dict):
        return public, masked_strings(credentials)
    for entry in credentials.values():
        if not isinstance(entry, dict):
            secret.update(masked_strings(entry))
            continue
        for field, item in entry.items():
            if field in PUBLIC_CREDENTIAL_FIELDS and isinstance(item, str):
                public.update(masked_strings(item))
            else:
                secret.update(masked_strings(item))
    return public, secret


def no_log_option_values(argument_spec, params, skip=()):
    """The masked strings of every ``no_log`` option in ``params`` (sub-options included), leaving out ``skip``.

    The same values Ansible adds to ``no_log_values`` from an argument spec.
    """
    found = set()
    if not isinstance(params, dict):
        return found
    for name, options in argument_spec.items():
        if name in skip:
            continue
        value = params.get(name)
        if value is None:
            continue
        if options.get('no_log'):
            found.update(masked_strings(value))
        sub_spec = options.get('options')
        if sub_spec:
            for item in (value if isinstance(value, list) else [value]):
                found.update(no_log_option_values(sub_spec, item))
    return found


class ZkMigrationModule(AnsibleModule):
    """``AnsibleModule`` with the collection's shared options, error mapping and secret handling.

    ``raw_cluster_options`` names options of type ``raw`` that may hold a
    cluster spec dict (for example ``zk_verify``'s ``source``): secrets given
    inline inside them are masked in logs and results like ``no_log`` options.
    """

    def __init__(self, *args, **kwargs):
        self._raw_cluster_options = tuple(kwargs.pop('raw_cluster_options', ()))
        super(ZkMigrationModule, self).__init__(*args, **kwargs)
        self._mask_inline_secrets()
        self._unmask_public_credential_fields()
        if not HAS_KAZOO:
            self.fail_json(msg=missing_required_lib('kazoo'), exception=KAZOO_IMPORT_ERROR)

    @classmethod
    def generate_argspec(cls, **extra):
        """The shared options (``control``, ``credentials``) plus the module's own ``extra`` options."""
        spec = dict(
            control=control_option_spec(),
            credentials=dict(type='dict', no_log=True),
        )
        spec.update(extra)
        return spec

    # -- secrets -----------------------------------------------------------
    def _mask_inline_secrets(self):
        for name in self._raw_cluster_options:
            for secret in secrets_in(self.params.get(name)):
                self.no_log_values.add(secret)

    def _unmask_public_credential_fields(self):
        """Keep only the secrets of ``credentials`` in ``no_log_values``.

        ``credentials`` is ``no_log``, so Ansible masks every leaf of it in
        every later output: a credential's type (``digest``) or user name
        would become ``********`` wherever it appears, in registrations,
        diffs and messages alike. The invocation log written at module start
        (before this runs) still leaves the whole option out; from here on
        only the secret fields stay masked. A value that is also a secret
        (of another field, credential or option) stays masked.
        """
        credentials = self.params.get('credentials')
        if not credentials:
            return
        public, secret = credential_values(credentials)
        keep = secret | no_log_option_values(self.argument_spec, self.params, skip=('credentials',))
        for name in self._raw_cluster_options:
            keep.update(secrets_in(self.params.get(name)))
        self.no_log_values.difference_update(public - keep)

    def warn(self, warning):
        """``AnsibleModule.warn`` with every ``no_log`` value masked (warnings are not masked by Ansible itself)."""
        super(ZkMigrationModule, self).warn(remove_values(warning, self.no_log_values))

    def _log_invocation(self):
        # AnsibleModule logs the invocation from __init__, before our own
        # __init__ code runs: mask inline secrets of raw options first.
        self._mask_inline_secrets()
        super(ZkMigrationModule, self)._log_invocation()

    @property
    def credentials(self):
        """The ``credentials`` option as a dict (empty when unset)."""
        value = self.params.get('credentials') or {}
        if not isinstance(value, dict):
            self.fail_json(msg='credentials must be a dict of credential name -> {username, password, key_password}')
        return value

    # -- the control ensemble ---------------------------------------------
    def control_options(self, required_by=None):
        """``(cluster spec dict, root)`` of the control ensemble, or None when ``control`` is unset.

        With ``required_by`` (a reason), an unset ``control`` fails the module.
        """
        control = self.params.get('control')
        if not control:
            if required_by:
                self.fail_json(msg='the control option is required %s: set control.hosts (usually the destination cluster), '
                                   'for example once for every module with module_defaults: group/zookeeper.migration.zk' % required_by)
            return None
        root = control.get('root') or DEFAULT_CONTROL_ROOT
        return cluster_spec_from_options(control, name='control'), root

    def validated_credentials(self):
        """The ``credentials`` option validated (``ConfigError`` naming the credential and field, never a secret)."""
        validate_credentials_mapping(self.credentials, source='the credentials option')
        return self.credentials

    @contextlib.contextmanager
    def control_store(self, required_by):
        """``with module.control_store('to register clusters') as store:`` a ``ControlStore`` on the control ensemble.

        The store takes ``control.world_read`` and ``control.allow_open_acl``;
        its ACLs are checked first (``ControlStore.check_acls``).

        Engine errors raised inside (including connecting) propagate; wrap the
        block in ``engine_errors()``.
        """
        spec, root = self.control_options(required_by=required_by)
        control = self.params.get('control') or {}
        with connected(ClusterSpec.from_dict(spec, credentials=self.credentials)) as client:
            store = ControlStore(client, root, world_read=bool(control.get('world_read')),
                                 allow_open_acl=bool(control.get('allow_open_acl')))
            # Fails closed: an open control store (world access beyond control.world_read) is refused
            # before anything in it is trusted, unless control.allow_open_acl.
            for warning in store.check_acls():
                self.warn(warning)
            yield store

    # -- errors ------------------------------------------------------------
    def fail_on_error(self, exc, **result):
        """Fail the module for an engine error: one message per kind, plus the error's details.

        Only engine errors (``ZkMigrationError``) are turned into messages;
        anything else is reported as an unexpected error with its traceback.
        """
        if isinstance(exc, ZkMigrationError):
            msg = '%s: %s' % (exc.title, exc)
            if exc.advice:
                msg = '%s (%s)' % (msg, exc.advice)
            if isinstance(exc, ClusterUnreachableError) and exc.failures:
                result.setdefault('failures', dict(exc.failures))
            result.setdefault('error', exc.to_dict())
        else:
            msg = 'Unexpected error (%s): %s' % (type(exc).__name__, exc)
        self.fail_json(msg=msg, exception=traceback.format_exc(), **result)

    @contextlib.contextmanager
    def engine_errors(self, **result):
        """``with module.engine_errors():`` run engine code, failing cleanly on its errors.

        Keyword arguments are added to the failure result (e.g. ``changed``).
        """
        try:
            yield
        except ZkMigrationError as exc:
            self.fail_on_error(exc, **result)
