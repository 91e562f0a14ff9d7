# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The example inventories under playbooks/inventories/ work with the playbooks.

For each environment: the real ``ansible-inventory`` reads it with the example
vault password (so the vaulted credentials decrypt), the variables it yields
pass the engine's own validators (the credentials format, the cluster
registrations, the task spec migrate.yml builds from them), every credential
a registration names exists, the playbooks' derived variables (control
ensemble, credentials) template, and ``ansible-playbook --syntax-check``
accepts migrate.yml and rollback.yml with that inventory. Nothing connects
to a host or a cluster.
"""

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.zookeeper.migration.plugins.module_utils import _credentials
from ansible_collections.zookeeper.migration.plugins.module_utils import _records

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
INVENTORIES_DIR = os.path.join(REPO_ROOT, 'playbooks', 'inventories')
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')
VENV_BIN = os.path.dirname(sys.executable)
ENVIRONMENTS = ('staging', 'production')
EXAMPLE_VAULT_PASSWORD = 'example-only-change-me'
DAEMONS_GROUP = 'zk_migration_daemons'
SOURCE_SERVERS_GROUP = 'zk_migration_source_servers'

# The task spec fields migrate.yml passes to zk_sync_task, by inventory variable.
TASK_SPEC_VARIABLES = {
    'mode': 'zk_migration_mode', 'paths': 'zk_migration_paths', 'exclude': 'zk_migration_exclude',
    'initial': 'zk_migration_initial', 'prune': 'zk_migration_prune', 'sync_acl': 'zk_migration_sync_acl',
    'acl_mode': 'zk_migration_acl_mode', 'conflict': 'zk_migration_conflict',
    'node_types': 'zk_migration_node_types', 'max_write_rate': 'zk_migration_max_write_rate',
}

# Templates, on localhost as migrate.yml's plays run there, the values the
# playbooks derive (playbooks/vars/migration.yml) and the daemon hosts' role
# variables, and writes them as JSON for the test to read.
RESOLVE_PLAYBOOK = '''
- name: Resolve the migration variables
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {repo}/playbooks/vars/migration.yml
  tasks:
    - name: Check the required variables
      ansible.builtin.include_tasks: {repo}/playbooks/tasks/check_variables.yml

    - name: Write the resolved values
      ansible.builtin.copy:
        dest: "{{{{ resolved_file }}}}"
        mode: "0600"
        content: >-
          {{{{ {{'credentials': _zk_migration_credentials,
                'control': _zk_migration_control,
                'daemon_control': _zk_migration_daemon_control,
                'root': _zk_migration_root,
                'max_polls': _zk_migration_max_polls | int,
                'report': _zk_migration_report,
                'daemons': dict(groups['{daemons}'] | zip(groups['{daemons}'] | map('extract', hostvars)
                                | map(attribute='sync_daemon_metrics_address'))),
                'daemons_become': groups['{daemons}'] | map('extract', hostvars)
                                  | map(attribute='ansible_become') | list}} | to_json }}}}
      no_log: true
'''


def ansible_env(tmp_dir):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_DIR, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_LOCAL_TEMP=os.path.join(tmp_dir, 'ansible-tmp'))
    # only the example password, whatever the caller's environment holds
    env.pop('ANSIBLE_VAULT_PASSWORD_FILE', None)
    env.pop('ANSIBLE_VAULT_IDENTITY_LIST', None)
    return env


def run(command, tmp_dir):
    result = subprocess.run(command, cwd=REPO_ROOT, env=ansible_env(tmp_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, check=False)
    assert result.returncode == 0, 'command failed: %s\nrc %d\n--- stdout\n%s\n--- stderr\n%s' % (
        ' '.join(command), result.returncode, result.stdout[-5000:], result.stderr[-5000:])
    return result


@pytest.fixture(scope='module')
def vault_password_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('vault') / 'password'
    path.write_text(EXAMPLE_VAULT_PASSWORD + '\n')
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope='module', params=ENVIRONMENTS)
def environment(request, vault_password_file, tmp_path_factory):
    """(name, inventory dir, ansible-inventory --list output, a scratch dir) of one example environment."""
    name = request.param
    inventory = os.path.join(INVENTORIES_DIR, name)
    tmp_dir = str(tmp_path_factory.mktemp(name))
    listed = run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', inventory, '--list',
                  '--vault-password-file', vault_password_file], tmp_dir)
    return name, inventory, json.loads(listed.stdout), tmp_dir


def group_hosts(listing, group):
    return listing.get(group, {}).get('hosts', [])


def migration_variables(listing):
    """The variables every host gets (group_vars/all), as a daemon host sees them."""
    daemon = group_hosts(listing, DAEMONS_GROUP)[0]
    return listing['_meta']['hostvars'][daemon]


def test_groups_and_hosts(environment):
    name, _inventory, listing, _tmp = environment
    daemons = group_hosts(listing, DAEMONS_GROUP)
    source_servers = group_hosts(listing, SOURCE_SERVERS_GROUP)
    assert 2 <= len(daemons) <= 3, '%s: %d daemon hosts; the examples show two or three (HA)' % (name, len(daemons))
    assert len(source_servers) == 3, '%s: %d source servers' % (name, len(source_servers))
    for host in daemons + source_servers:
        assert host.endswith('.example.com'), '%s: %s is not an example.com name' % (name, host)


def test_vault_file_is_encrypted(environment):
    name, inventory, listing, _tmp = environment
    with open(os.path.join(inventory, 'group_vars', 'all', 'vault.yml'), encoding='utf-8') as handle:
        text = handle.read()
    assert text.startswith('$ANSIBLE_VAULT;1.1;AES256\n'), '%s: group_vars/all/vault.yml is not encrypted' % name
    secrets = migration_variables(listing)['vault_zk_migration_credentials']
    for credential in secrets.values():
        assert credential['password'] not in text


def test_credentials_decrypt_and_validate(environment):
    name, _inventory, listing, _tmp = environment
    variables = migration_variables(listing)
    assert variables['zk_migration_credentials'] == '{{ vault_zk_migration_credentials }}', (
        '%s: zk_migration_credentials must come from the vaulted vault_zk_migration_credentials' % name)
    credentials = _credentials.validate_credentials_mapping(variables['vault_zk_migration_credentials'], source='%s vault' % name)
    assert credentials, '%s: no credentials' % name
    for credential in credentials.values():
        assert credential.type == 'digest'


def test_registrations_name_existing_credentials(environment):
    name, _inventory, listing, _tmp = environment
    variables = migration_variables(listing)
    credentials = variables['vault_zk_migration_credentials']
    registrations = [variables['zk_migration_source'], variables['zk_migration_destination']]
    if 'zk_migration_control' in variables:
        registrations.append(dict(variables['zk_migration_control'], name='control'))
    for registration in registrations:
        fields = {key: value for key, value in registration.items() if key != 'root'}
        cluster = _records.normalize_cluster(fields)
        named = [(cluster['auth'] or {}).get('credential'), (cluster['tls'] or {}).get('credential')]
        for credential in filter(None, named):
            assert credential in credentials, '%s: cluster %s names credential %r, which the vault does not hold (it has %s)' % (
                name, cluster['name'], credential, sorted(credentials))
    assert variables['zk_migration_source']['name'] != variables['zk_migration_destination']['name']


def test_task_spec_is_valid(environment):
    name, _inventory, listing, _tmp = environment
    variables = migration_variables(listing)
    spec = {'name': variables['zk_migration_task'], 'source': variables['zk_migration_source']['name'],
            'destination': variables['zk_migration_destination']['name']}
    for field, variable in TASK_SPEC_VARIABLES.items():
        if variable in variables:
            spec[field] = variables[variable]
    root = variables.get('zk_migration_root', _records.DEFAULT_ROOT)
    normalized = _records.normalize_task_spec(spec, root=root)
    assert normalized['mode'] in ('one_way', 'bidirectional')
    for path in variables['zk_migration_paths']:
        assert path.startswith('/') and _records.normalize_path(path, 'path') == path, '%s: path %r is not canonical' % (name, path)
    for pattern in variables.get('zk_migration_exclude', []):
        assert pattern.startswith('/'), '%s: exclude glob %r is not absolute' % (name, pattern)
    if name == 'staging':
        assert normalized['mode'] == 'one_way'
    else:
        assert normalized['mode'] == 'bidirectional'
        assert normalized['node_types'] and normalized['max_write_rate'] > 0
        assert variables['zk_migration_destination']['tls']['ca_file'].startswith('/')
        assert variables['zk_migration_stop_source_service'] is True
        assert variables['zk_migration_initial_sync_timeout'] > 3600


def test_playbook_variables_template(environment, vault_password_file):
    name, inventory, listing, tmp_dir = environment
    playbook = os.path.join(tmp_dir, 'resolve.yml')
    resolved_file = os.path.join(tmp_dir, 'resolved.json')
    with open(playbook, 'w', encoding='utf-8') as handle:
        handle.write(RESOLVE_PLAYBOOK.format(repo=REPO_ROOT, daemons=DAEMONS_GROUP))
    run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, playbook, '--vault-password-file', vault_password_file,
         '-e', 'resolved_file=%s' % resolved_file], tmp_dir)
    with open(resolved_file, encoding='utf-8') as handle:
        resolved = json.load(handle)
    variables = migration_variables(listing)
    assert resolved['credentials'] == variables['vault_zk_migration_credentials']
    # the control ensemble defaults to the destination's connection settings
    destination = variables['zk_migration_destination']
    expected_control = variables.get('zk_migration_control') or {
        key: value for key, value in destination.items() if key in ('hosts', 'chroot', 'session_timeout', 'connect_timeout', 'auth', 'tls')}
    assert resolved['daemon_control'] == {key: value for key, value in expected_control.items() if key != 'root'}
    assert resolved['control']['root'] == resolved['root'] and resolved['root'].startswith('/')
    # each poll of tasks/follow_initial_sync.yml nests one include deeper; ansible-core
    # fails with a RecursionError after about 245, so vars/migration.yml keeps it at 150
    assert 1 <= resolved['max_polls'] <= 150, '%s: %d polls' % (name, resolved['max_polls'])
    assert os.path.isabs(resolved['report'])
    addresses = listing['_meta']['hostvars']
    for host, metrics_address in resolved['daemons'].items():
        # bound to the host's own address, reachable by Prometheus
        assert metrics_address == '%s:9464' % addresses[host]['ansible_host'], '%s: %s metrics on %s' % (name, host, metrics_address)
    assert all(become is True for become in resolved['daemons_become'])


def test_playbooks_syntax(environment, vault_password_file):
    _name, inventory, _listing, tmp_dir = environment
    run([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, '--syntax-check', '--vault-password-file', vault_password_file,
         os.path.join(REPO_ROOT, 'playbooks', 'migrate.yml'), os.path.join(REPO_ROOT, 'playbooks', 'rollback.yml')], tmp_dir)
