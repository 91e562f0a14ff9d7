# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zk_cluster through a real ansible-playbook run against real ZooKeeper clusters.

One playbook (playbooks/zk_cluster.yml) runs the whole sequence; the test
then checks each task's result and the real znodes of the control store.
"""

import json

import pytest

from tests.harness.zkharness import port_is_free
from tests.integration.ansible_runner import run_playbook

pytestmark = pytest.mark.integration

INLINE_PASSWORD = 'inline-password-never-shown'


def dead_address():
    """A loopback port in this suite's own range on which nothing listens."""
    for port in range(23599, 23500, -1):
        if port_is_free(port):
            return '127.0.0.1:%d' % port
    raise AssertionError('no free port in 23500-23599')


def read_record(client, path):
    data, _stat = client.get(path)
    return json.loads(data.decode('utf-8'))


@pytest.fixture
def zk_source(zk_cluster_factory):
    """A source ensemble of this test's own: summarize walks the whole tree, and the
    shared source holds other tests' nodes, some behind ACLs the test cannot read."""
    return zk_cluster_factory('zk-cluster-source', size=3)


@pytest.fixture
def loaded_source(zk_source, zk_client_factory, zk_path):
    """A small tree under zk_path on the source: configuration plus service registrations held by a live session."""
    client = zk_client_factory(zk_source)
    holder = zk_client_factory(zk_source)
    client.create(zk_path + '/config/db', b'{"url": "db:5432"}', makepath=True)
    client.create(zk_path + '/config/cache', b'redis', makepath=True)
    client.create(zk_path + '/services/api', b'', makepath=True)
    for index in range(4):
        holder.create('%s/services/api/host-%d' % (zk_path, index), b'10.0.0.%d:80' % index, ephemeral=True)
    return client


def test_zk_cluster_sequence(zk_source, zk_dest, zk_auth, zk_tls, zk_client_factory, zk_path, loaded_source):
    control_root = zk_path + '/control'
    fresh_root = zk_path + '/fresh-control'
    extra_vars = {
        # an unauthenticated control store, open on purpose (the refusal is in test_zk_cluster_proves_digest_passwords)
        'control': {'hosts': zk_dest.host_list, 'root': control_root, 'allow_open_acl': True},
        'credentials': {'auth-super': {'type': 'digest', 'username': zk_auth.super_user, 'password': zk_auth.super_password}},
        'source_hosts': zk_source.host_list,
        'destination_hosts': zk_dest.host_list,
        'auth_hosts': zk_auth.host_list,
        'dead_hosts': [dead_address()],
        'fresh_root': fresh_root,
        'missing_chroot': zk_path + '/no-such-chroot',
        'inline_password': INLINE_PASSWORD,
        'tls_hosts': zk_tls.host_list,
        'tls_ca_file': zk_tls.ca_file,
        'tls_cert_file': zk_tls.cert_file,
        'tls_key_file': zk_tls.key_file,
        'chroot': zk_path,
    }
    run = run_playbook('zk_cluster.yml', extra_vars=extra_vars)
    assert run.rc == 0, run.output()   # the bad-input tasks fail with ignore_errors
    control = zk_client_factory(zk_dest)

    # check mode: reports the change, the cluster found and the summary; writes nothing
    checked = run.task('Check mode register source')
    assert checked['changed'] is True and not checked['failed']
    assert checked['operations'] == ['create registration source at %s/clusters/source' % control_root]
    assert checked['diff']['before'] == {}
    assert checked['diff']['after']['hosts'] == zk_source.host_list
    members = checked['cluster']['members']
    assert sorted(members) == sorted(zk_source.host_list)
    assert sorted(str(member['mode']) for member in members.values()) == ['follower', 'follower', 'leader'], members
    assert checked['cluster']['server_version'].startswith('3.8')
    summary = dict((entry['path'], entry) for entry in checked['summary']['subtrees'])
    top = '/' + zk_path.strip('/').split('/')[0]
    assert top in summary and checked['summary']['depth'] == 2
    assert checked['summary']['total']['ephemeral'] >= 4
    fresh = run.task('Check mode register in a fresh control root')
    assert fresh['changed'] is True
    assert control.exists(fresh_root) is None, 'check mode created the control root'
    assert control.exists(fresh_root.rsplit('/', 1)[0] + '/control/clusters/inlinepassword') is None

    # apply, re-run, check mode after apply
    applied = run.task('Register source')
    assert applied['changed'] is True
    assert 'create registration source at %s/clusters/source' % control_root in applied['operations']
    stored = read_record(control, control_root + '/clusters/source')
    assert stored['hosts'] == zk_source.host_list and stored['auth']['scheme'] == 'none'
    assert run.task('Register source again')['changed'] is False
    assert run.task('Check mode register source after apply')['changed'] is False

    updated = run.task('Update source description')
    assert updated['changed'] is True
    assert updated['diff']['before']['description'] is None
    assert updated['diff']['after']['description'] == 'self-managed source'
    assert read_record(control, control_root + '/clusters/source')['description'] == 'self-managed source'

    destination = run.task('Register destination ensemble')
    assert destination['changed'] is True
    assert sorted(str(m['mode']) for m in destination['cluster']['members'].values()) == ['follower', 'follower', 'leader'], destination['cluster']

    # a digest-auth cluster: the registration names the credential, never the secret
    secured = run.task('Register digest cluster with a named credential')
    assert secured['changed'] is True
    assert secured['cluster']['members'][zk_auth.host_list[0]]['mode'] == 'standalone'
    raw = control.get(control_root + '/clusters/secured')[0].decode('utf-8')
    assert zk_auth.super_password not in raw
    assert json.loads(raw)['auth'] == {'scheme': 'digest', 'username': None, 'credential': 'auth-super'}
    assert run.task('Register digest cluster again')['changed'] is False

    # TLS: the registration keeps the file paths (they must exist on the daemon hosts too)
    tls = run.task('Register TLS cluster')
    assert tls['changed'] is True
    assert tls['cluster']['members'][zk_tls.host_list[0]]['mode'] == 'standalone'
    assert read_record(control, control_root + '/clusters/tls')['tls'] == {
        'enabled': True, 'ca_file': zk_tls.ca_file, 'cert_file': zk_tls.cert_file, 'key_file': zk_tls.key_file,
        'verify': True, 'check_hostname': True, 'credential': None}

    # a chroot: the summary is relative to it
    chrooted = run.task('Register source seen through a chroot')
    assert chrooted['changed'] is True and chrooted['cluster']['chroot'] == zk_path
    subtrees = dict((entry['path'], entry) for entry in chrooted['summary']['subtrees'])
    assert sorted(subtrees) == ['/config', '/services']
    assert subtrees['/config'] == {'path': '/config', 'persistent': 3, 'ephemeral': 0, 'bytes': 23,
                                   'ephemeral_share': 0.0, 'kind': 'persistent', 'unreadable': 0}
    assert subtrees['/services']['kind'] == 'mostly_ephemeral' and subtrees['/services']['ephemeral'] == 4
    assert chrooted['summary']['suggested_paths'] == ['/config']
    assert chrooted['summary']['unreadable_paths'] == [] and chrooted['summary']['total']['unreadable'] == 0

    # bad input: clear messages, nothing registered
    unreachable = run.task('Bad unreachable cluster')
    assert unreachable['failed'] is True
    assert unreachable['msg'].startswith('Cluster unreachable: ')
    assert extra_vars['dead_hosts'][0] in unreachable['msg'] and 'connection refused' in unreachable['msg']
    assert unreachable['failures'] == {extra_vars['dead_hosts'][0]: 'connection refused (nothing listens on that port)'}
    nocredential = run.task('Bad unknown credential')
    assert nocredential['failed'] is True and 'not-in-credentials' in nocredential['msg']
    inline = run.task('Bad password without credential name')
    assert inline['failed'] is True and 'auth.credential' in inline['msg']
    nochroot = run.task('Bad chroot that does not exist')
    assert nochroot['failed'] is True and 'no-such-chroot' in nochroot['msg'] and 'does not exist' in nochroot['msg']
    bad_control = run.task('Bad control ensemble unreachable')
    assert bad_control['failed'] is True and bad_control['msg'].startswith('Cluster unreachable: cannot connect to cluster control')
    for name in ('unreachable', 'nocredential', 'inlinepassword', 'nochroot'):
        assert control.exists('%s/clusters/%s' % (control_root, name)) is None, name
    assert INLINE_PASSWORD not in run.stdout + run.stderr
    assert zk_auth.super_password not in run.stdout + run.stderr

    # removal: check mode keeps it, then removed, then nothing to do
    assert run.task('Register scratch cluster without connecting')['changed'] is True
    check_remove = run.task('Check mode remove scratch')
    assert check_remove['changed'] is True and check_remove['diff']['after'] == {}
    assert run.task('Remove scratch')['changed'] is True
    assert run.task('Remove scratch again')['changed'] is False
    assert control.exists(control_root + '/clusters/scratch') is None
    assert sorted(control.get_children(control_root + '/clusters')) == ['chrooted', 'destination', 'secured', 'source', 'tls']


MIGRATOR_USER = 'migrator-user'
MIGRATOR_PASSWORD = 'migrator-password-never-shown'


def test_zk_cluster_shows_credential_fields_but_no_secret_and_summarizes_around_unreadable_znodes(
        zk_auth, zk_standalone, zk_client_factory, zk_path):
    from kazoo.security import ACL, Id, Permissions, make_digest_acl

    owner_only = [make_digest_acl('owner', 'owner-password', all=True)]
    all_but_read = [ACL(Permissions.ALL & ~Permissions.READ, Id('world', 'anyone'))] + owner_only
    admin = zk_client_factory(zk_auth)          # the superDigest identity
    app = zk_path + '/app'
    admin.create(app + '/config/db', b'db:5432', makepath=True)
    admin.create(app + '/config/private/key', b'k', makepath=True)
    admin.set_acls(app + '/config/private', owner_only)
    admin.create(app + '/locked/inner', b'x', makepath=True)
    admin.set_acls(app + '/locked', all_but_read)
    admin.create(app + '/services', b'')
    control_root = zk_path + '/control'
    extra_vars = {
        'control': {'hosts': zk_standalone.host_list, 'root': control_root, 'allow_open_acl': True},
        'credentials': {'migrator': {'type': 'digest', 'username': MIGRATOR_USER, 'password': MIGRATOR_PASSWORD}},
        'decoy_credentials': {'decoy': {'type': 'digest', 'username': 'decoy-user', 'password': MIGRATOR_USER}},
        'migrator_user': MIGRATOR_USER,
        'auth_hosts': zk_auth.host_list,
        'chroot': app,
    }
    run = run_playbook('zk_cluster_credentials.yml', extra_vars=extra_vars, diff=True, verbosity=3)
    assert run.rc == 0, run.output()

    registered = run.task('Register digest cluster, summarize unreadable tree')
    assert registered['changed'] is True
    # the credential's non-secret fields are shown in clear wherever they appear...
    expected_auth = {'scheme': 'digest', 'username': MIGRATOR_USER, 'credential': 'migrator'}
    assert registered['registration']['auth'] == expected_auth
    assert registered['diff']['after']['auth'] == expected_auth
    shown = registered['invocation']['module_args']['credentials']['migrator']
    assert shown['type'] == 'digest' and shown['username'] == MIGRATOR_USER and shown['password'] != MIGRATOR_PASSWORD
    # ...and the password nowhere: not in any result, not in the -vvv output
    assert MIGRATOR_PASSWORD not in json.dumps(run.results)
    assert MIGRATOR_PASSWORD not in run.stdout + run.stderr
    assert read_record(zk_client_factory(zk_standalone), control_root + '/clusters/secured')['auth'] == expected_auth

    # a value that is also a secret (here another credential's password) stays masked everywhere
    decoyed = run.task('Register again, a password equal to the user name')
    assert decoyed['changed'] is False
    assert MIGRATOR_USER not in json.dumps(decoyed)
    assert decoyed['registration']['auth']['scheme'] == 'digest'

    # summarize: what the migrator may not read is reported, the rest counted
    summary = registered['summary']
    assert summary['unreadable_paths'] == ['/config/private', '/locked']
    assert summary['total'] == {'persistent': 3, 'ephemeral': 0, 'bytes': 7, 'unreadable': 2}
    subtrees = dict((entry['path'], entry) for entry in summary['subtrees'])
    assert subtrees['/config'] == {'path': '/config', 'persistent': 2, 'ephemeral': 0, 'bytes': 7, 'ephemeral_share': 0.0,
                                   'kind': 'persistent', 'unreadable': 1}
    assert subtrees['/locked'] == {'path': '/locked', 'persistent': 0, 'ephemeral': 0, 'bytes': 0, 'ephemeral_share': 0.0,
                                   'kind': 'unreadable', 'unreadable': 1}
    assert subtrees['/services']['unreadable'] == 0 and subtrees['/services']['kind'] == 'persistent'
    assert summary['suggested_paths'] == ['/services']
    assert any('/config/private' in warning and 'READ' in warning for warning in registered.get('warnings', [])), registered


def test_zk_cluster_proves_digest_passwords(zk_auth, zk_client_factory, zk_path):
    """ZooKeeper takes any digest password at connect; registration shows a wrong one before a sync task would."""
    from kazoo.security import ACL, Id, Permissions, make_digest_acl

    admin = zk_client_factory(zk_auth)          # the superDigest identity
    data = zk_path + '/data'
    # Configuration that every application reads and the migration identity administers.
    admin.create(data + '/config/db', b'db:5432', makepath=True)
    admin.set_acls(data + '/config', [ACL(Permissions.READ, Id('world', 'anyone')),
                                      make_digest_acl(MIGRATOR_USER, MIGRATOR_PASSWORD, all=True)])
    wrong_password = 'not-the-migrator-password'
    control_root = zk_path + '/control'
    extra_vars = {
        'control': {'hosts': zk_auth.host_list, 'root': control_root, 'auth': {'credential': 'super'}},
        'credentials': {
            'migrator': {'type': 'digest', 'username': MIGRATOR_USER, 'password': MIGRATOR_PASSWORD},
            'migrator-wrong': {'type': 'digest', 'username': MIGRATOR_USER, 'password': wrong_password},
            'super': {'type': 'digest', 'username': zk_auth.super_user, 'password': zk_auth.super_password},
            'nobody': {'type': 'digest', 'username': 'nobody-named', 'password': 'whatever'},
        },
        'auth_hosts': zk_auth.host_list,
        'chroot': data,
        'anonymous_control': {'hosts': zk_auth.host_list, 'root': control_root},
    }
    run = run_playbook('zk_cluster_identity.yml', extra_vars=extra_vars)
    assert run.rc == 0, run.output()
    control = zk_client_factory(zk_auth)

    for name in ('Register with a wrong password', 'Check mode register with a wrong password'):
        wrong = run.task(name)
        assert wrong['failed'] is True, wrong
        assert wrong['msg'].startswith('Authentication or authorization failed: wrong password for user %s' % MIGRATOR_USER), wrong['msg']
        assert 'ADMIN' in wrong['msg'] and '/config' in wrong['msg']
    assert control.exists(control_root + '/clusters/wrong') is None

    right = run.task('Register with the right password')
    assert right['changed'] is True and not right.get('warnings')
    assert right['cluster']['identity']['status'] == 'proven'
    assert '/config' in right['cluster']['identity']['detail']

    superuser = run.task('Register the superDigest user')
    assert superuser['cluster']['identity'] == {
        'status': 'proven', 'detail': 'the server recognises user %s as its superDigest user' % zk_auth.super_user}

    unknown = run.task('Register a user no ACL names')
    assert unknown['changed'] is True and unknown['cluster']['identity']['status'] == 'unproven'
    assert any('cannot be proven' in warning and 'nobody-named' in warning for warning in unknown['warnings'])

    unchecked = run.task('Register with a wrong password without connecting')
    assert unchecked['changed'] is True and 'identity' not in unchecked['cluster']

    # the control store fails closed: an unauthenticated control session is refused (no control.allow_open_acl)
    anonymous = run.task('Register through an unauthenticated control session')
    assert anonymous['failed'] is True
    assert anonymous['msg'].startswith('Invalid configuration: the control session is not authenticated'), anonymous['msg']
    assert 'control.allow_open_acl: true' in anonymous['msg']
    assert control.exists(control_root + '/clusters/through-anonymous-control') is None
    # with the default, the registrations are the migration identity's alone
    for path in (control_root, control_root + '/clusters', control_root + '/clusters/right'):
        assert [entry.id.scheme for entry in control.get_acls(path)[0]] == ['digest'], path

    for secret in (MIGRATOR_PASSWORD, wrong_password, zk_auth.super_password):
        assert secret not in run.stdout + run.stderr
        assert secret not in json.dumps(run.results)
