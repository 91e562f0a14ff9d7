# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The JSON state files of the harness command lines (zkcli.py, hosts.py).

Each records what it started so a later command can find it again. Locking,
where a caller needs it, stays with the caller.
"""

import json
import os


def load_json_state(path):
    """The state recorded in ``path``; an empty dict when there is none yet or it cannot be read."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def save_json_state(path, state):
    """Record ``state`` in ``path``, creating its directory.

    Written to a temporary file and renamed over ``path``, so a reader never
    sees a half-written file.
    """
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
