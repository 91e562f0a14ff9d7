#!/usr/bin/env bash
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Copy the collection's source tree into DEST (emptied first).
#
# ansible-test only runs from a directory that really is
# .../ansible_collections/<namespace>/<name> (it refuses a symlink), while a
# checkout may live anywhere, so `make sanity` copies the tree there.
# In a git work tree the copy holds the tracked files plus untracked files that
# .gitignore does not exclude (work in progress is tested too, build output and
# venvs are not). Outside git, it copies everything except the usual
# generated directories. There is no rsync on the target machines: tar does it.
#
# Usage: copy-collection.sh SOURCE_DIR DEST_DIR
set -euo pipefail

src=$(cd "$1" && pwd -P)
dest=$2

case "$(realpath -m "$dest")" in
    "$src"/build/?*) ;;
    *) echo "copy-collection.sh: refusing to empty '$dest': it must be under $src/build/" >&2; exit 2 ;;
esac

rm -rf "$dest"
mkdir -p "$dest"

cd "$src"
if [[ "$(git rev-parse --show-toplevel 2>/dev/null || true)" == "$src" ]]; then
    # Tracked files that still exist (a deletion not yet committed is skipped)
    # plus untracked, not ignored files.
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' path; do
              if [[ -e "$path" || -L "$path" ]]; then printf '%s\0' "$path"; fi
          done \
        | sort -zu \
        | tar --null --no-recursion -T - -cf - \
        | tar -C "$dest" -xf -
else
    tar --exclude=./.git \
        --exclude=./.venv --exclude=./build --exclude=./.cache --exclude=./.ansible \
        --exclude=./tests/output --exclude=.pytest_cache --exclude=__pycache__ \
        --exclude='*.pyc' --exclude='*.tar.gz' \
        -cf - . \
        | tar -C "$dest" -xf -
fi
