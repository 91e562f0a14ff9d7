# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: append every task result to a JSON-lines file.

tests/integration/ansible_runner.py enables it and reads the file back, so
tests assert on the real results of a real ``ansible-playbook`` run (the
same, censored, results any other callback sees).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: record_results
type: aggregate
short_description: Write each task result as a JSON line to the file named by ZK_TEST_RESULTS_FILE
description:
  - Used by the collection's integration tests only.
requirements:
  - the ZK_TEST_RESULTS_FILE environment variable
'''

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'record_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get('ZK_TEST_RESULTS_FILE')
        self._started = {}

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _record(self, result, status):
        if not self._path:
            return
        data = getattr(result, 'result', None)
        if not isinstance(data, dict):
            data = result._result
        entry = {
            'task': result._task.get_name(),
            'host': result._host.get_name(),
            'status': status,
            'result': data,
        }
        started = self._started.pop((entry['host'], result._task._uuid), None)
        entry['duration'] = round(time.monotonic() - started, 3) if started is not None else None
        with open(self._path, 'a') as stream:
            stream.write(json.dumps(entry, default=repr, sort_keys=True) + '\n')

    def v2_runner_on_ok(self, result):
        self._record(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')
