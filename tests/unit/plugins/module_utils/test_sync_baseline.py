# -*- coding: utf-8 -*-
# Copyright (c) 2026, zookeeper.migration contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sync baseline (``_sync_baseline``): data hashes, the checkpoint formats (the current one, compressed or not, and
formats 1 and 2 of earlier versions), round trips and the blobs it refuses."""

import json
import struct
import zlib

import pytest
from hypothesis import given, strategies as st

from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
from ansible_collections.zookeeper.migration.plugins.module_utils import _sync_baseline
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_baseline import Baseline
from ansible_collections.zookeeper.migration.plugins.module_utils._sync_decide import (
    DESTINATION,
    SIDES,
    SOURCE,
    NodeState,
    base_hash,
    base_mzxid,
    base_value,
    side_changed,
)

from tests.unit.plugins.module_utils.helpers import SETTINGS


class TestBaseline(object):
    def test_round_trip_with_meta_and_unicode_paths(self):
        baseline = Baseline({'/a': 1, u'/ünï/cödé': (1 << 64) - 1, '/' + 'x' * 1000: 0}, {'initial_done': True, 'watermarks': {'source': 5}})
        copy = Baseline.decode(baseline.encode())
        assert copy.entries == baseline.entries and copy.meta == baseline.meta

    def test_dirty_only_on_real_changes(self):
        baseline = Baseline()
        baseline.set('/a', 1)
        assert baseline.dirty
        baseline.dirty = False
        baseline.set('/a', 1)
        baseline.discard('/missing')
        assert not baseline.dirty
        baseline.discard('/a')
        assert baseline.dirty and '/a' not in baseline

    @pytest.mark.parametrize('blob', [b'', b'not a baseline', Baseline({'/a': 1}).encode()[:-3], b'ZKMB\x01\x00\x00\x00\x05[1,2]'])
    def test_corrupt_or_foreign_blobs_are_refused(self, blob):
        with pytest.raises(SchemaError):
            Baseline.decode(blob)

    def test_hash64_matches_snapshot_hashes(self):
        from ansible_collections.zookeeper.migration.plugins.module_utils._snapshot import hash_data
        for data in (b'', b'x', bytes(range(256)) * 10):
            assert _sync_baseline.hash64(hash_data(data)) == _sync_baseline.data_hash64(data)


# --------------------------------------------------------------------------
# Hashes and formats
# --------------------------------------------------------------------------

class TestBaselineFormats(object):
    def test_hashes_fit_60_bits(self):
        for data in (b'', b'x', b'\xff' * 100):
            assert 0 <= _sync_baseline.data_hash64(data) < 1 << 60

    def test_format_1_checkpoints_read_back_as_60_bit_hashes(self):
        full = int.from_bytes(b'\xfe\xdc\xba\x98\x76\x54\x32\x10', 'big')
        meta = b'{"initial_done": true}'
        raw = '/a'.encode('utf-8')
        blob = b'ZKMB\x01' + struct.pack('>I', len(meta)) + meta + struct.pack('>HQ', len(raw), full) + raw
        decoded = Baseline.decode(blob)
        assert decoded.entries == {'/a': full >> 4} and decoded.meta == {'initial_done': True}

    def test_current_format_round_trips(self):
        with_versions = base_value(_sync_baseline.data_hash64(b'c'), 2 ** 40 + 7, 2 ** 63 - 1)
        baseline = Baseline({'/a': _sync_baseline.data_hash64(b'a'), '/b': 0, '/c': with_versions}, {'task': 't'})
        blob = baseline.encode()
        assert blob.startswith(b'ZKMB\x03')
        assert Baseline.decode(blob).entries == baseline.entries

    def test_format_2_checkpoints_read_back_with_unknown_versions(self):
        value = _sync_baseline.data_hash64(b'a')
        meta = b'{}'
        raw = '/a'.encode('utf-8')
        blob = b'ZKMB\x02' + struct.pack('>I', len(meta)) + meta + struct.pack('>HQ', len(raw), value) + raw
        assert Baseline.decode(blob).entries == {'/a': base_value(value, 0, 0)} == {'/a': value}


class TestCompressedBaseline(object):
    def test_compressed_encoding_round_trips_and_is_zlib(self):
        import zlib
        entries = dict(('/p/%06d' % index, _sync_baseline.data_hash64(b'%d' % index)) for index in range(20000))
        baseline = Baseline(entries, {'task': 't', 'initial_done': True})
        blob = baseline.encode(compress=True)
        assert zlib.decompress(blob) == baseline.encode()
        assert len(blob) < len(baseline.encode())
        decoded = Baseline.decode(blob)
        assert decoded.entries == entries and decoded.meta == baseline.meta

    def test_a_broken_zlib_stream_is_refused(self):
        from ansible_collections.zookeeper.migration.plugins.module_utils._errors import SchemaError
        with pytest.raises(SchemaError):
            Baseline.decode(Baseline({'/a': 1}).encode(compress=True)[:-5])


# --------------------------------------------------------------------------
# Checkpoint format: properties
# --------------------------------------------------------------------------

PATHS = st.text(st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), min_size=1, max_size=40).map(lambda s: '/' + s)
VALUES = st.builds(base_value, st.integers(0, 2 ** 60 - 1), st.sampled_from([0, 2 ** 64 - 1]) | st.integers(0, 2 ** 64 - 1),
                   st.sampled_from([0, 2 ** 64 - 1]) | st.integers(0, 2 ** 64 - 1))
META = st.fixed_dictionaries({'task': st.text(max_size=10), 'initial_done': st.booleans(),
                              'watermarks': st.dictionaries(st.sampled_from(SIDES), st.integers(0, 2 ** 63)),
                              'journal': st.dictionaries(st.sampled_from(SIDES), st.integers(0, 9999999999))})


@SETTINGS
@given(entries=st.dictionaries(PATHS, VALUES, max_size=30), meta=META, compress=st.booleans())
def test_baseline_round_trip(entries, meta, compress):
    decoded = Baseline.decode(Baseline(dict(entries), meta).encode(compress=compress))
    assert decoded.entries == entries and decoded.meta == meta


@pytest.mark.parametrize('compress', [False, True])
def test_a_large_baseline_round_trips_across_compression_pieces(compress):
    entries = dict(('/task/%06d/%s' % (index, 'n' * 50), base_value(index * 7919, index, 2 ** 64 - 1 - index)) for index in range(4000))
    blob = Baseline(entries, {'initial_done': True}).encode(compress=compress)
    assert len(zlib.decompress(blob) if compress else blob) > 4 * 65536
    assert Baseline.decode(blob).entries == entries


def _legacy_blob(magic, meta, records):
    out = bytearray(magic)
    raw_meta = json.dumps(meta).encode('utf-8')
    out += struct.pack('>I', len(raw_meta)) + raw_meta
    for path, value in records:
        raw = path.encode('utf-8')
        out += struct.pack('>HQ', len(raw), value) + raw
    return bytes(out)


@SETTINGS
@given(entries=st.dictionaries(PATHS, st.integers(0, 2 ** 60 - 1), max_size=20), compress=st.booleans())
def test_a_format_2_baseline_decodes_with_unknown_mzxids(entries, compress):
    """Format 2 held 60-bit hashes only: decoded, each value has the hash and unknown (0) mzxids, so only data is compared."""
    blob = _legacy_blob(b'ZKMB\x02', {'initial_done': True}, sorted(entries.items()))
    decoded = Baseline.decode(zlib.compress(blob) if compress else blob)
    assert decoded.meta == {'initial_done': True}
    assert dict((path, base_hash(value)) for path, value in decoded.entries.items()) == entries
    assert all(base_mzxid(value, side) == 0 for value in decoded.entries.values() for side in SIDES)
    for path, hash_value in entries.items():
        value = decoded.get(path)
        assert not side_changed(NodeState(hash_value, b'', 0, False, 0, 12345), value, SOURCE)
        assert side_changed(NodeState(hash_value ^ 1, b'', 0, False, 0, 12345), value, DESTINATION)


def test_a_format_1_baseline_keeps_the_top_60_bits_of_its_64_bit_hashes():
    blob = _legacy_blob(b'ZKMB\x01', {}, [('/a', 0xFEDCBA9876543210)])
    value = Baseline.decode(blob).get('/a')
    assert value == base_value(0xFEDCBA9876543210 >> 4) and base_mzxid(value, SOURCE) == base_mzxid(value, DESTINATION) == 0
