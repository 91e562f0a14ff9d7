# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_sync_info
short_description: Show the state of a ZooKeeper migration (clusters, sync tasks, status, leaders, daemons, cutovers)
version_added: 0.1.0
description:
  - Reads the control store and returns the registered clusters, the sync tasks with
    their current status (phase, progress, ETA, lag, conflicts, last error) and current
    leader, the cutover records and the live sync daemons.
  - Playbooks use it to show progress while waiting for an initial sync and to skip
    steps after a recorded cutover.
  - Never changes anything.
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - Read only; runs the same in check mode. Names given in O(tasks) or O(clusters) that are not
        registered add a warning in check mode, since an earlier task of the same check run would
        have created them.
  diff_mode:
    support: none
    description:
      - Changes nothing, so there is no diff.
options:
  tasks:
    description:
      - Only return these sync tasks (and their cutover records and leaders).
      - Names that do not exist are listed in RV(not_found) rather than failing the task.
      - Default is every task.
    type: list
    elements: str
  clusters:
    description:
      - Only return these cluster registrations.
      - Names that do not exist are listed in RV(not_found) rather than failing the task.
      - Default is every cluster.
    type: list
    elements: str
  client_report:
    description:
      - Also list who is connected to each cluster returned (O(clusters)), from the C(cons) four-letter word
        of every member, in RV(clients). The sync daemons' own sessions are left out.
      - Members whose C(4lw.commands.whitelist) lacks C(cons), that are down, or that the registration reaches
        through a single (load balancer) address are reported in the cluster's C(members) and C(notes).
    type: bool
    default: false
  client_allow:
    description:
      - Client hosts left out of RV(clients) (addresses or CIDR networks), such as monitoring agents or the
        operators' own zkCli sessions.
    type: list
    elements: str
    default: []
  client_watches:
    description:
      - With O(client_report), also list the paths each client host watches (C(wchc)), so that a live reader
        shows even when it writes nothing.
    type: bool
    default: false
notes:
  - O(control) is required.
  - C(heartbeat_age) in each task's status is measured with this host's clock against the
    leader daemon's clock; clock skew between them shifts it.
seealso:
  - module: zookeeper.migration.zk_cluster
  - module: zookeeper.migration.zk_verify
'''

EXAMPLES = r'''
- name: Wait for the initial sync, printing progress
  zookeeper.migration.zk_sync_info:
    tasks: [app-config]
  register: info
  until: info.tasks['app-config'].status.phase | default('') in ['streaming', 'cut_over', 'error']
  retries: 120
  delay: 10

- name: Skip the sync steps once the task was cut over
  ansible.builtin.set_fact:
    already_cut_over: "{{ info.cutovers['app-config'].state | default('') == 'completed' }}"

- name: Show who leads each task
  ansible.builtin.debug:
    var: info.leaders
'''

RETURN = r'''
control:
  description: Where the control store is and whether it exists yet.
  returned: always
  type: dict
  sample: {"root": "/zookeeper-migration", "exists": true}
clusters:
  description: Cluster registrations by name (no secrets, only credential names).
  returned: always
  type: dict
  sample: {"legacy": {"name": "legacy", "hosts": ["zk1:2181"], "auth": {"scheme": "none"}}}
tasks:
  description:
    - Sync tasks by name. Each holds C(spec) (the task spec), C(status) (the status record the
      leader writes, or null before any leader wrote one), C(phase), C(heartbeat_age) (seconds),
      C(leader) (daemon id or null), C(contenders) (daemon ids in line for the lead),
      C(cutover) (the cutover record or null) and C(saved_acl_chunks).
  returned: always
  type: dict
  sample: {"app-config": {"phase": "streaming", "leader": "daemon-1", "heartbeat_age": 1.2, "cutover": null}}
cutovers:
  description: Cutover records by task name (tasks without one are left out).
  returned: always
  type: dict
  sample: {"app-config": {"state": "completed", "source_frozen": true}}
leaders:
  description: Current leader daemon id by task name (null when no daemon leads the task).
  returned: always
  type: dict
  sample: {"app-config": "daemon-1"}
daemons:
  description: Live sync daemons by id (hostname, pid, version, metrics and health addresses, tasks led).
  returned: always
  type: dict
  sample: {"daemon-1": {"hostname": "sync1", "pid": 812, "metrics_address": "127.0.0.1:9464"}}
clients:
  description:
    - With O(client_report), per cluster name, C(hosts) (per client host, C(sessions), C(members),
      C(session_ids), C(last_operations), C(watches)), C(clients) (sessions in all), C(members) (per member,
      C(sessions) or C(error)), C(complete) (every member answered), C(notes) and C(summary) (one line per host).
  returned: always
  type: dict
  sample: {"legacy": {"clients": 4, "complete": true, "summary": ["10.0.3.17: 4 session(s) on zk1:2181 (last operations GETD)"]}}
not_found:
  description: Names given in O(tasks) and O(clusters) that are not in the control store.
  returned: always
  type: dict
  sample: {"tasks": [], "clusters": ["managed"]}
'''

import time

from ansible_collections.zookeeper.migration.plugins.module_utils._module import ZkMigrationModule
from ansible_collections.zookeeper.migration.plugins.module_utils._clients import clients_of


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        tasks=dict(type='list', elements='str'),
        clusters=dict(type='list', elements='str'),
        client_report=dict(type='bool', default=False),
        client_allow=dict(type='list', elements='str', default=[]),
        client_watches=dict(type='bool', default=False),
    )


def main():
    module = ZkMigrationModule(argument_spec=argument_spec(), supports_check_mode=True)
    wanted_tasks = module.params['tasks']
    wanted_clusters = module.params['clusters']
    result = dict(changed=False, clusters={}, tasks={}, cutovers={}, leaders={}, daemons={},
                  not_found={'tasks': [], 'clusters': []}, clients={})

    with module.engine_errors(**result):
        credentials = module.validated_credentials()
        with module.control_store('to read the migration state') as store:
            exists = store.exists()
            result['control'] = {'root': store.root, 'exists': exists}
            if exists:
                clusters = store.list_clusters()
                task_specs = store.list_tasks()
                now = time.time()
                for name in sorted(clusters):
                    if wanted_clusters is None or name in wanted_clusters:
                        result['clusters'][name] = clusters[name]
                for name in sorted(task_specs):
                    if wanted_tasks is not None and name not in wanted_tasks:
                        continue
                    described = store.describe_task(name)
                    if described is None:   # deleted while we listed
                        continue
                    status = described.get('status')
                    described['phase'] = status.get('phase') if status else None
                    heartbeat = status.get('heartbeat') if status else None
                    described['heartbeat_age'] = round(now - heartbeat, 3) if heartbeat else None
                    result['tasks'][name] = described
                    result['leaders'][name] = described.get('leader')
                    if described.get('cutover') is not None:
                        result['cutovers'][name] = described['cutover']
                result['daemons'] = store.list_daemons()
                if module.params['client_report']:
                    for name in result['clusters']:
                        result['clients'][name] = clients_of(store, name, credentials, allow=module.params['client_allow'],
                                                             watches=module.params['client_watches'])
    for kind, wanted in (('tasks', wanted_tasks), ('clusters', wanted_clusters)):
        for name in wanted or ():
            if name not in result[kind]:
                result['not_found'][kind].append(name)
    if module.check_mode:
        for kind in ('clusters', 'tasks'):
            for name in result['not_found'][kind]:
                module.warn('%s %r is not in the control store at %s: in check mode an earlier task of this run may only have '
                            'reported that it would create it' % (kind[:-1], name, result['control']['root']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
