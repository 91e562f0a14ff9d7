# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a real ``ansible-playbook`` against localhost and read back every task result.

The collection is found through ``.cache/collections`` (the symlink that
tests/conftest.py makes), modules run with the project venv's Python, and a
small callback (playbooks/callback_plugins/record_results.py) writes each
task result as a JSON line, so tests assert on what Ansible really returned:
``changed``, ``failed``, ``msg``, ``diff`` and module return values.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'playbooks')
COLLECTIONS_DIR = os.path.join(REPO_ROOT, '.cache', 'collections')
VENV_BIN = os.path.dirname(sys.executable)


class PlaybookRun(object):
    """The outcome of one ``ansible-playbook`` run."""

    def __init__(self, command, returncode, stdout, stderr, results):
        self.command = command
        self.rc = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.results = results

    def task(self, name):
        """The result dict of the task called ``name`` (its last run); KeyError with the output when absent."""
        found = [entry for entry in self.results if entry['task'] == name]
        if not found:
            raise KeyError('no result for task %r; tasks run: %s\n%s' % (name, [e['task'] for e in self.results], self.output()))
        entry = found[-1]
        result = dict(entry['result'])
        result.setdefault('changed', False)
        result.setdefault('failed', entry['status'] == 'failed')
        result['_status'] = entry['status']
        return result

    def durations(self):
        """[(task name, seconds)] in order: where a run spends its time."""
        return [(entry['task'], entry.get('duration')) for entry in self.results]

    def tasks(self):
        """Names of the tasks that reported a result, in order."""
        return [entry['task'] for entry in self.results]

    def recap(self):
        """{host: {'ok': n, 'changed': n, 'unreachable': n, 'failed': n, ...}} from the PLAY RECAP."""
        recap = {}
        lines = self.stdout.splitlines()
        if 'PLAY RECAP' not in ''.join(lines):
            return recap
        start = max(i for i, line in enumerate(lines) if line.startswith('PLAY RECAP'))
        for line in lines[start + 1:]:
            if ':' not in line or '=' not in line:
                continue
            host, counts = line.split(':', 1)
            recap[host.strip()] = dict((key, int(value)) for key, value in (item.split('=', 1) for item in counts.split()))
        return recap

    def output(self):
        """stdout and stderr of the run and its slowest tasks, for assertion messages."""
        slowest = sorted((entry for entry in self.results if entry.get('duration') is not None),
                         key=lambda entry: -entry['duration'])[:8]
        timings = ''.join('%8.1f s  %s [%s]\n' % (entry['duration'], entry['task'], entry.get('host')) for entry in slowest)
        return 'command: %s\nrc: %s\n--- slowest tasks\n%s--- stdout\n%s\n--- stderr\n%s' % (
            ' '.join(self.command), self.rc, timings, self.stdout, self.stderr)

    def assert_ok(self):
        """Raise AssertionError (with the output) unless the playbook succeeded."""
        if self.rc != 0:
            raise AssertionError('ansible-playbook failed\n%s' % self.output())
        return self


def ansible_environment(work_dir, results_file):
    """Environment for an isolated ansible-playbook run (no user config, this collection only)."""
    env = dict(os.environ)
    for key in list(env):
        if key.startswith('ANSIBLE_'):
            del env[key]
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS_DIR,
        'ANSIBLE_CALLBACK_PLUGINS': os.path.join(PLAYBOOK_DIR, 'callback_plugins'),
        'ANSIBLE_CALLBACKS_ENABLED': 'record_results',
        'ANSIBLE_HOME': os.path.join(work_dir, 'ansible-home'),
        'ANSIBLE_LOCAL_TEMP': os.path.join(work_dir, 'tmp'),
        'ANSIBLE_CONFIG': os.path.join(work_dir, 'ansible.cfg'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        'ANSIBLE_HOST_KEY_CHECKING': '0',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ZK_TEST_RESULTS_FILE': results_file,
        'PATH': VENV_BIN + os.pathsep + env.get('PATH', ''),
    })
    return env


def run_playbook(playbook, extra_vars=None, check=False, diff=False, tags=None, timeout=600, verbosity=0, inventory=None, limit=None):
    """Run ``playbook`` (a file name under playbooks/ or a path) against localhost, or ``inventory``.

    ``extra_vars`` go through a JSON file, so types survive (lists, dicts,
    booleans, ints). ``inventory`` is an inventory path (file or directory)
    used instead of the localhost-only one; ``limit`` is ``--limit``. Returns a ``PlaybookRun``; it does
    not raise when the playbook fails: tests look at ``rc`` and at each task's
    result.
    """
    path = playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOK_DIR, playbook)
    work_dir = tempfile.mkdtemp(prefix='zk-ansible-run-')
    results_file = os.path.join(work_dir, 'results.jsonl')
    if inventory is None:
        inventory = os.path.join(work_dir, 'inventory.ini')
        with open(inventory, 'w') as stream:
            stream.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
    with open(os.path.join(work_dir, 'ansible.cfg'), 'w') as stream:
        stream.write('[defaults]\n')
    vars_file = os.path.join(work_dir, 'extra_vars.json')
    with open(vars_file, 'w') as stream:
        json.dump(extra_vars or {}, stream)
    command = [os.path.join(VENV_BIN, 'ansible-playbook'), '-i', inventory, '-e', '@' + vars_file, path]
    if check:
        command.append('--check')
    if diff:
        command.append('--diff')
    if tags:
        command.extend(['--tags', ','.join(tags)])
    if limit:
        command.extend(['--limit', limit])
    if verbosity:
        command.append('-' + 'v' * verbosity)
    try:
        proc = subprocess.run(command, cwd=os.path.dirname(path), env=ansible_environment(work_dir, results_file),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        # keep what the run printed: the test's failure message shows where it hung
        def text(output):
            return output.decode('utf-8', 'replace') if isinstance(output, bytes) else (output or '')
        proc = subprocess.CompletedProcess(command, 'timeout after %ss' % timeout, text(exc.stdout), text(exc.stderr))
    results = []
    try:
        if os.path.exists(results_file):
            with open(results_file) as stream:
                results = [json.loads(line) for line in stream if line.strip()]
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return PlaybookRun(command, proc.returncode, proc.stdout, proc.stderr, results)
