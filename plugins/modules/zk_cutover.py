# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: zk_cutover
short_description: Cut a sync task over to its destination (drain, freeze, verify, stop), or roll it back
version_added: 0.1.0
description:
  - Step 4 of a migration, for a task created by M(zookeeper.migration.zk_sync_task) and run by the sync daemons.
  - "O(state=completed): a preflight (nothing changed yet) checks that the task is running, that a live daemon
    leads it and that it is in sync (empty queue, zero lag, waiting up to O(drain_timeout)). Then the cutover
    is recorded, the source is frozen when O(freeze_source) is set, the task is drained (the leading daemon
    reconciles both trees after the freeze and empties its queue) and paused, the destination ACLs are set
    from the source's original ACLs where they differ, a final verification runs (O(verify)), the task is
    stopped and the cutover recorded as completed."
  - When the final verification (or any step after the preflight) fails, the cutover is aborted. The source
    ACLs are restored, the task syncs again and the module fails with the verification report.
  - "O(freeze_source): makes the task's persistent znodes on the source read-only by ACL during the final
    drain and after the cutover. Each node keeps the READ entries of its ACL and the migration identity
    keeps full rights; the original ACLs are saved in the control store, a batch at a time before each
    batch of setACL requests. While the source is frozen the daemons do not copy source ACLs, so the frozen
    ACLs never reach the destination."
  - "After freezing, the freeze is proven: a session with a throwaway digest identity must fail to create a node under
    the frozen paths (a server run with C(zookeeper.skipACL=yes) lets it, and the cutover aborts), and the migration
    identity must not read a node its identity is not granted (a super user does: refused unless
    O(allow_shared_identity)). Nodes whose ACL lets only the migration identity write show that the applications
    use it too: refused before anything is frozen, unless O(allow_shared_identity)."
  - "O(state=rolled_back) before completion: restores the source ACLs exactly (same entries, same order) and
    resumes syncing from the source."
  - "O(state=rolled_back) after completion is the mirror image of the cutover, since the destination is the truth:
    the daemons sync the destination back to the source until a fresh status shows both in sync; the destination
    is frozen (when the cutover froze the source) and the freeze proven; the task is drained, paused and verified
    (destination against source); the task is stopped; and only then is the source thawed (its ACLs set from the
    destination's original ACLs when the task syncs ACLs, else back to the originals the freeze saved). The
    clients can move back to the source once the module returns. A failure on the way thaws the destination and
    leaves the task syncing the destination to the source; run it again."
  - "O(state=completed) on a task already cut over changes nothing in either tree: it looks at who still uses the
    source and how many connections each destination member holds (RV(after_cutover)), and keeps that in the
    cutover record when it changed."
  - The cutover record, the task and the saved ACLs stay in the control store until the task is removed
    explicitly (M(zookeeper.migration.zk_sync_task) with O(zookeeper.migration.zk_sync_task#module:state=absent)
    and O(zookeeper.migration.zk_sync_task#module:force=true)).
  - Re-running a completed cutover, or a rollback that is done, changes nothing.
author:
  - zookeeper.migration contributors (@zookeeper-migration)
extends_documentation_fragment:
  - zookeeper.migration.zk
  - zookeeper.migration.zk.action_group
attributes:
  check_mode:
    support: full
    description:
      - Nothing is changed. The preflight runs (it only reads and waits for the task to be in sync) and
        RV(operations) lists what would be done, with the number of source znodes a freeze would change.
      - When the task does not exist yet in check mode, the module warns and reports what it would do instead
        of failing, since an earlier M(zookeeper.migration.zk_sync_task) task of the same check run would
        have created it.
  diff_mode:
    support: partial
    description:
      - Shows the cutover record before and after.
      - The ACLs a freeze or a thaw sets on the clusters are counted (RV(frozen), RV(restored)), not shown node by node.
options:
  task:
    description:
      - Name of the sync task to cut over or roll back.
    type: str
    required: true
  state:
    description:
      - V(completed) cuts the task over; V(rolled_back) undoes a cutover, before or after it completed.
    type: str
    choices: [completed, rolled_back]
    default: completed
  freeze_source:
    description:
      - Make the task's paths on the source read-only by ACL during the final drain (and after the cutover),
        keeping the original ACLs in the control store for a rollback.
      - Needs a migration identity on the source that is authenticated (auth in the source registration) and
        has ADMIN permission on every node in scope (or a superDigest identity).
      - Only persistent znodes are frozen; ephemeral ones are left alone, but no new node can be created
        under a frozen one.
    type: bool
    default: false
  verify:
    description:
      - Run a final verification (data, node types, sequential counters, live spot checks and, when the task
        syncs ACLs, the destination ACLs against the source's originals) before completing.
      - Nodes that exist only on the destination are reported as warnings, not failures.
    type: bool
    default: true
  drain_timeout:
    description:
      - How long, in seconds, each wait on the leading daemon may take (the task reaching in-sync in the
        preflight, reconciling after a change, pausing) before the cutover fails.
    type: float
    default: 300
  backup_dir:
    description:
      - A directory on the host running the module where, right before a freeze, the frozen cluster's scope is
        exported (data, ACLs, sequential counters; C(<task>-<cluster>-<UTC time>.jsonl.gz), mode 0600). With
        O(state=completed) the source's, with O(state=rolled_back) after completion the destination's.
      - The export holds every node's original ACL, so M(zookeeper.migration.zk_backup) with
        O(zookeeper.migration.zk_backup#module:only_acls=true) thaws the frozen cluster from it even while the other
        cluster and the control store are down.
      - Needs a freeze (O(freeze_source), or a rollback of a cutover that froze the source).
    type: path
  client_allow:
    description:
      - Client hosts (addresses or CIDR networks) left out of RV(source_clients), such as monitoring agents.
    type: list
    elements: str
    default: []
  allow_shared_identity:
    description:
      - Freeze even when the migration identity is a super user, or is the identity the applications write with.
        Such clients are not stopped by the freeze; set it only when they are stopped some other way.
      - A server that skips ACL checks (C(zookeeper.skipACL=yes)) always fails the freeze proof.
    type: bool
    default: false
notes:
  - The sync daemons must run during a cutover with O(state=completed) (and for a rollback to sync). The cutover
    drives them through the control store (task spec and cutover record) and reads their status.
  - Stop the clients' writes to the source, or use O(freeze_source), before cutting over; otherwise writes made
    after the drain are not carried over.
  - While a cutover is running, the task's spec shows C(sync_acl=false) (with O(freeze_source)) and then
    C(state=paused); the values it had are kept in the cutover record and put back when it ends.
seealso:
  - module: zookeeper.migration.zk_sync_task
  - module: zookeeper.migration.zk_verify
  - module: zookeeper.migration.zk_sync_info
'''

EXAMPLES = r'''
- name: Cut app-config over, freezing the source during the final drain
  zookeeper.migration.zk_cutover:
    task: app-config
    freeze_source: true
    drain_timeout: 600

- name: Roll the cutover back (before or after it completed)
  zookeeper.migration.zk_cutover:
    task: app-config
    state: rolled_back
'''

RETURN = r'''
cutover:
  description: The cutover record as stored (state, timestamps, source_frozen, direction_after_cutover, verify, last_error).
  returned: always
  type: dict
  sample:
    task: app-config
    state: completed
    source_frozen: true
    direction_after_cutover: none
    started_at: 1764000000.0
    completed_at: 1764000042.5
state:
  description: The cutover state after the run (V(completed), V(rolled_back), V(aborted), ...); null without a record.
  returned: always
  type: str
  sample: completed
operations:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["record the cutover of task app-config (started)", "freeze 1200 source znode(s) read-only (original ACLs saved first)"]
frozen:
  description: Source znodes frozen by this run (in check mode, that a freeze would change).
  returned: always
  type: int
  sample: 1200
restored:
  description: Znodes whose ACL this run set back (the source's on a rollback or an abort, the destination's when a rollback aborts).
  returned: always
  type: int
  sample: 0
freeze_proof:
  description:
    - What the freeze proof found, when a freeze ran. C(probed) (false when no path of the task exists),
      C(path) (where the probes were made), C(other_identity_can_write), C(migrator_bypasses_acls).
  returned: always
  type: dict
  sample: {"probed": true, "path": "/app", "other_identity_can_write": false, "migrator_bypasses_acls": false}
write_outage:
  description:
    - The write outage of the frozen cluster, measured, when this run froze it. C(frozen_at) and C(ended_at) are
      epoch seconds (first frozen batch, end of the run), C(seconds) their difference. Clients still see the frozen
      cluster read-only until they are moved; that time is not in the figure.
  returned: always
  type: dict
  sample: {"frozen_at": 1764000030.1, "ended_at": 1764000042.5, "seconds": 12.4}
source_clients:
  description:
    - Who is still connected to the source (also in check mode), from the C(cons) four-letter word of every member
      (or its AdminServer's C(connections) command where C(cons) is not whitelisted and the registration names its
      C(admin_port)), the sync daemons' sessions and O(client_allow) left out. C(clients) (sessions in all), C(hosts) (per client
      host, its C(sessions), C(members) and C(last_operations)), C(members) (per member, C(sessions) or the C(error)
      why it did not answer), C(complete), C(notes), C(summary). Null when the list could not be made.
    - Applications still listed after a completed cutover were missed in the client move.
  returned: always
  type: dict
  sample: {"clients": 2, "complete": true, "summary": ["10.0.3.17: 2 session(s) on zk1:2181 (last operations GETD)"]}
after_cutover:
  description:
    - On a run after a completed cutover (a re-run of the playbook), a look at who still uses each cluster.
    - C(source_clients) (sessions still on the source), C(source_hosts) (sessions per client host), C(source_complete)
      (every member answered), C(destination_connections) (C(zk_num_alive_connections) per destination member, null
      where the member does not answer C(mntr), as a managed service may not), C(destination) (the same with the
      reason a member did not answer), C(verification_at_cutover) (C(in_sync), C(blocking), C(counts) of the final
      verification against the frozen source) and C(observed_at) (epoch seconds).
    - It is kept in the cutover record (C(details.after_cutover), read by M(zookeeper.migration.zk_sync_info)) when
      the set of client hosts on the source changed since the last look (the cutover takes the first), and only then
      is the result C(changed); C(observed_at) is when the recorded look was taken. The counts returned are current.
  returned: when the cutover was already completed
  type: dict
  sample: {"source_clients": 1, "source_hosts": {"10.0.3.17": 1}, "destination_connections": {"mse-1:2181": 12},
           "observed_at": 1764000042.5, "verification_at_cutover": {"in_sync": true, "blocking": {}}}
backup:
  description: The export this run wrote before freezing (O(backup_dir)), or null.
  returned: always
  type: str
  sample: /srv/zk-migration-reports/app-config-legacy-20261205T120000Z.jsonl.gz
write_outage_estimate:
  description:
    - In check mode with a freeze, an estimate of RV(write_outage) from the number of nodes and the time one read
      of the scope took (C(seconds), C(nodes), C(read_seconds), C(parts) with C(freeze), C(drain), C(verify)).
  returned: always
  type: dict
  sample: {"seconds": 3.1, "nodes": 1200, "read_seconds": 0.3, "parts": {"freeze": 0.6, "drain": 1.2, "verify": 1.9}}
acl_fixed:
  description: Destination znodes whose ACL was set to the source's original before the final verification.
  returned: always
  type: int
  sample: 0
verify:
  description:
    - The final verification, when it ran. C(in_sync), C(blocking) (kinds of difference that stop a cutover with
      their counts), C(counts), C(differences) (first paths of each kind), C(acl_checked), C(elapsed), C(spot_check).
  returned: always
  type: dict
  sample: {"in_sync": true, "blocking": {}, "counts": {"missing": 0, "extra": 0}, "differences": {}}
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: task app-config cut over (source frozen)
'''

from ansible_collections.zookeeper.migration.plugins.module_utils._module import ZkMigrationModule
from ansible_collections.zookeeper.migration.plugins.module_utils._cutover import Cutover, CutoverError, CutoverOptions


def argument_spec():
    """The module's options: the shared ``control`` and ``credentials`` plus its own."""
    return ZkMigrationModule.generate_argspec(
        task=dict(type='str', required=True),
        state=dict(type='str', choices=['completed', 'rolled_back'], default='completed'),
        freeze_source=dict(type='bool', default=False),
        verify=dict(type='bool', default=True),
        drain_timeout=dict(type='float', default=300),
        allow_shared_identity=dict(type='bool', default=False),
        backup_dir=dict(type='path'),
        client_allow=dict(type='list', elements='str', default=[]),
    )


def main():
    module = ZkMigrationModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    name = params['task']
    result = dict(changed=False, cutover=None, state=None, operations=[], frozen=0, restored=0, acl_fixed=0, verify=None,
                  freeze_proof=None, write_outage=None, write_outage_estimate=None, backup=None, source_clients=None, after_cutover=None)
    if params['drain_timeout'] <= 0:
        module.fail_json(msg='drain_timeout must be a positive number of seconds', **result)
    if params['freeze_source'] and params['state'] == 'rolled_back':
        module.fail_json(msg='freeze_source applies to state=completed; a rollback restores whatever a freeze saved', **result)
    if params['backup_dir'] and params['state'] == 'completed' and not params['freeze_source']:
        module.fail_json(msg='backup_dir exports the scope right before a freeze: it needs freeze_source', **result)

    with module.engine_errors(**result):
        credentials = module.validated_credentials()
        with module.control_store('to cut over sync tasks') as store:
            before = store.get_cutover(name) if store.get_task(name) is not None else None
            if store.get_task(name) is None:
                message = 'task %r does not exist in the control store at %s' % (name, store.root)
                if module.check_mode:
                    module.warn('%s; in check mode an earlier task of this run may only have reported that it would create it. '
                                'Preflight skipped.' % message)
                    result['changed'] = True
                    result['msg'] = 'would %s task %s' % ('cut over' if params['state'] == 'completed' else 'roll back', name)
                    module.exit_json(**result)
                module.fail_json(msg='%s: create it with zookeeper.migration.zk_sync_task first (tasks: %s)'
                                     % (message, ', '.join(sorted(store.list_tasks())) or 'none'), **result)
            engine = Cutover(store, name, credentials=credentials,
                             options=CutoverOptions(drain_timeout=params['drain_timeout'], verify=params['verify'],
                                                    allow_shared_identity=params['allow_shared_identity'],
                                                    backup_dir=params['backup_dir'], client_allow=params['client_allow']))
            try:
                if params['state'] == 'completed':
                    outcome = engine.complete(freeze_source=params['freeze_source'], check_mode=module.check_mode)
                    if 'source_clients' not in outcome:
                        outcome['source_clients'] = engine.source_clients()
                        outcome['warnings'] = engine.warnings
                else:
                    outcome = engine.rollback(check_mode=module.check_mode)
            except CutoverError as exc:
                for warning in engine.warnings:
                    module.warn(warning)
                record = store.get_cutover(name)
                result.update(changed=bool(engine.operations), cutover=record, state=record['state'] if record else None,
                              operations=engine.operations, verify=exc.report or engine.result.get('verify'),
                              frozen=engine.result['frozen'], restored=engine.result['restored'], acl_fixed=engine.result['acl_fixed'],
                              freeze_proof=engine.result['freeze_proof'], write_outage=engine.result['write_outage'],
                              backup=engine.result['backup'])
                module.fail_json(msg='Cutover failed: %s' % exc, error=exc.to_dict(), **result)
    for warning in outcome.pop('warnings'):
        module.warn(warning)
    outcome.pop('check_mode', None)
    result.update(outcome)
    record = result['cutover']
    result['state'] = record['state'] if record else None
    if result['changed'] and module._diff:
        after = record or {}
        if module.check_mode:
            after = dict(before or {'task': name})
            after['state'] = params['state']
        result['diff'] = {'before': before or {}, 'after': after}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
