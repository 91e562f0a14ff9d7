# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync baseline: per path, what both sides held when last in sync, and its checkpoint format.

Private to zookeeper.migration; may change without notice. The values are
``_sync_decide.base_value`` ints (data hash + each side's mzxid); the
checkpoint is what ``ControlStore.put_baseline`` stores.
"""

import json
import struct
import zlib

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
from ansible_collections.zookeeper.migration.plugins.module_utils import _snapshot
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import DESTINATION, SOURCE, base_hash, base_mzxid, base_value

# Format 3 holds the hash and both sides' mzxids; format 2 held 60-bit hashes only, format 1 64-bit ones
# (read back as their top 60 bits, with unknown mzxids).
_BASELINE_MAGIC = b'ZKMB\x03'
_BASELINE_MAGIC_HASH_ONLY = b'ZKMB\x02'
_BASELINE_MAGIC_64 = b'ZKMB\x01'
_ENTRY_HEADER = struct.Struct('>HQQQ')
_ENTRY_HEADER_HASH_ONLY = struct.Struct('>HQ')
_META_LEN = struct.Struct('>I')


def hash64(data_hash):
    """The baseline hash of a 16-byte ``_snapshot`` data hash: its top 60 bits.

    60 bits, not 64: CPython stores an int below 2**60 in 32 bytes and a
    larger one in 48 (its allocator rounds 36 up), and the baseline holds
    one per tracked znode.
    """
    return int.from_bytes(data_hash[:8], 'big') >> 4


def data_hash64(data):
    """The baseline hash of raw data (the same as ``hash64(hash_data(data))``)."""
    return int.from_bytes(_snapshot.hash_data(data or b'')[:8], 'big') >> 4


class Baseline(object):
    """Per-path sync baseline: ``{path: base_value}`` of the data (and mzxids) both sides last agreed on.

    A path is in the baseline only while both sides held it persistent and
    equal at the last sync. ``meta`` holds what else a new leader needs:
    ``initial_done``, the ``watermarks`` (each cluster's zxid when the task
    first started, which tells nodes that were on a side before the task
    from nodes created since) and ``journal`` (per side, the last journal
    entry this checkpoint includes). Memory: one str key and one int per path
    (about 180-230 bytes per path with 60-character paths).
    """

    __slots__ = ('entries', 'meta', 'dirty', 'generation')

    def __init__(self, entries=None, meta=None):
        self.entries = entries if entries is not None else {}
        self.meta = dict(meta or {})
        self.dirty = False
        self.generation = 0

    def get(self, path):
        return self.entries.get(path)

    def set(self, path, value):
        if self.entries.get(path) != value:
            self.entries[path] = value
            self.dirty = True

    def discard(self, path):
        if self.entries.pop(path, None) is not None:
            self.dirty = True

    def __len__(self):
        return len(self.entries)

    def __contains__(self, path):
        return path in self.entries

    def encode(self, compress=False):
        """Serialise: magic, JSON meta, then (len, hash, source mzxid, destination mzxid, path) records.

        With ``compress``, as one zlib stream, compressed as it is built in
        64 KiB pieces: a million paths encode to ~50 MB, and building that
        whole, copying it and compressing the copy held three such buffers
        at once.
        """
        compressor = zlib.compressobj(6) if compress else None
        parts = []
        meta = json.dumps(self.meta, sort_keys=True).encode('utf-8')
        out = bytearray(_BASELINE_MAGIC)
        out += _META_LEN.pack(len(meta))
        out += meta
        pack = _ENTRY_HEADER.pack
        for path, value in self.entries.items():
            raw = path.encode('utf-8')
            out += pack(len(raw), base_hash(value), base_mzxid(value, SOURCE), base_mzxid(value, DESTINATION))
            out += raw
            if compressor is not None and len(out) >= 65536:
                parts.append(compressor.compress(out))
                del out[:]
        if compressor is None:
            return bytes(out)
        parts.append(compressor.compress(out))
        parts.append(compressor.flush())
        return b''.join(parts)

    @classmethod
    def decode(cls, blob):
        """Read what ``encode`` wrote (compressed or not, any format); ``SchemaError`` when it is no baseline."""
        if blob[:1] == b'\x78':    # a zlib stream (the magic starts with 'Z')
            try:
                blob = zlib.decompress(blob)
            except zlib.error as exc:
                raise SchemaError('the checkpointed sync baseline is corrupt (%s)' % exc)
        if blob.startswith(_BASELINE_MAGIC):
            header, hash_only, legacy = _ENTRY_HEADER, False, False
        elif blob.startswith(_BASELINE_MAGIC_HASH_ONLY):
            header, hash_only, legacy = _ENTRY_HEADER_HASH_ONLY, True, False
        elif blob.startswith(_BASELINE_MAGIC_64):
            header, hash_only, legacy = _ENTRY_HEADER_HASH_ONLY, True, True
        else:
            raise SchemaError('the checkpointed sync baseline has an unknown format (written by a newer version?)')
        offset = len(_BASELINE_MAGIC)
        try:
            (meta_len,) = _META_LEN.unpack_from(blob, offset)
            offset += _META_LEN.size
            meta = json.loads(blob[offset:offset + meta_len].decode('utf-8'))
            offset += meta_len
            entries = {}
            unpack = header.unpack_from
            size = header.size
            end = len(blob)
            while offset < end:
                if hash_only:
                    length, value = unpack(blob, offset)
                    value = value >> 4 if legacy else value
                else:
                    length, hash_value, source_mzxid, destination_mzxid = unpack(blob, offset)
                    value = base_value(hash_value, source_mzxid, destination_mzxid)
                offset += size
                entries[blob[offset:offset + length].decode('utf-8')] = value
                offset += length
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise SchemaError('the checkpointed sync baseline is corrupt (%s)' % exc)
        if not isinstance(meta, dict):
            raise SchemaError('the checkpointed sync baseline is corrupt (meta is not an object)')
        return cls(entries, meta)
