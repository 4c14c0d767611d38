"""A fast writer of one Whoosh segment: what ``SegmentWriter.add_document`` + ``commit`` write,
for a fraction of the CPU.

Whoosh's own writer spends most of a full build in bookkeeping rather than in indexing: every
posting goes through a generic chain of analyzer filters, a sorting pool of tuples spilled to
temporary files, and one column lookup per posting to find the document's field length again at
commit, and each posting block is built one posting at a time.  :class:`SegmentBuilder` keeps
each field's postings in memory, grouped by term as they are made (half the real corpus makes
well under a million), takes the terms of the full-text fields from their analyzer's one-pass
``positions()`` (:mod:`kb.analysis`), writes stored fields and columns through Whoosh's
per-document writer and the term table through its hash-table writer, and lays out each term's
posting blocks itself, a block at a time, as Whoosh's W3 codec does.  The result is an ordinary
Whoosh segment: ``tests/test_writer.py`` checks that it holds the same terms, postings, term
statistics, lengths and stored fields as the segment Whoosh's writer makes of the same documents.

The codec is W3 with larger blocks and no zlib, and block data is laid out for a fast read
(:func:`block_data`): :mod:`kb.scoring` reads postings a block at a time, so bigger blocks
mean fewer loads per query, and zlib cost more time at build and query than the disk it saved.
"""

from __future__ import annotations

import io
import pickle
import secrets
import struct
import threading
from array import array
from operator import sub

from whoosh.analysis import IDTokenizer
from whoosh.codec.whoosh3 import WHOOSH3_HEADER_MAGIC, W3Codec, W3Segment
from whoosh.fields import Schema
from whoosh.filedb.filetables import OrderedHashWriter
from whoosh.formats import Existence, Frequency, Positions
from whoosh.system import emptybytes, pack_int as _pack_int, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

#: Postings per block (Whoosh's default is 128) and zlib level of the blocks (Whoosh's: 3).
BLOCK_LIMIT = 1024
COMPRESSION = 0

_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_pack_uint = struct.Struct("!I").pack  # whoosh.system.pack_uint, as Positions.encode writes it


def codec() -> W3Codec:
    """The codec of kb's segments (readers take it from the segment, any Whoosh can read them)."""
    return W3Codec(blocklimit=BLOCK_LIMIT, compression=COMPRESSION)


_ONE_POSITION: dict[int, bytes] = {}


def _encode_positions(poslist: list[int]) -> bytes:
    """``whoosh.formats.Positions.encode``: the count, then the pickled position deltas."""
    if len(poslist) == 1:  # most postings: a word once in a field
        pos = poslist[0]
        value = _ONE_POSITION.get(pos)
        if value is None:
            value = _pack_uint(1) + pickle.dumps([pos], 2)
            if pos < 100_000:
                _ONE_POSITION[pos] = value
        return value
    deltas = [poslist[0]]
    deltas += map(sub, poslist[1:], poslist)
    return _pack_uint(len(deltas)) + pickle.dumps(deltas, 2)


def _encode_frequency(poslist: list[int]) -> bytes:
    """``whoosh.formats.Frequency``'s value: the frequency."""
    return _pack_uint(len(poslist))


def _fast_path(field):
    """How :class:`SegmentBuilder` makes a field's postings without Whoosh's analyzer chain:
    ("id", None) for a whole-value ID field, ("terms", encode) for a field whose analyzer hands
    over all terms and positions in one call (:mod:`kb.analysis`), None for Whoosh's own path."""
    fmt = field.format
    if fmt is None or fmt.field_boost != 1.0:
        return None
    if type(fmt) is Existence and type(field.analyzer) is IDTokenizer:
        return ("id", None)
    if hasattr(field.analyzer, "positions"):
        if type(fmt) is Positions:
            return ("terms", _encode_positions)
        if type(fmt) is Frequency:
            return ("terms", _encode_frequency)
    return None


class SegmentBuilder:
    """Adds documents to one new segment of the Whoosh index in ``storage``; :meth:`finish` writes
    it out and returns the segment, for a TOC (see :mod:`kb.shards`) to list.

    Documents are numbered in the order they are added, or with ``reverse`` in the opposite
    order (the last one added is number 0).  A builder writes stored fields and columns as
    documents come (a reverse one keeps them until :meth:`finish`); postings stay in memory
    until then, grouped by term as they are made.
    """

    def __init__(self, storage, indexname: str, schema: Schema, reverse: bool = False):
        self.storage = storage
        self.schema = schema
        self.codec = codec()
        # a segment id of its own: Whoosh draws one from `random`, whose state forked writer
        # processes share
        self.segment = W3Segment(self.codec, indexname, segid="".join(secrets.choice(_ID_CHARS) for _ in range(16)))
        self.reverse = reverse
        self._perdoc = None if reverse else self.codec.per_document_writer(storage, self.segment)
        self._count = 0
        # reverse: per document, in the order added, [(field, stored value, length, column value)]
        self._rows: list[list[tuple]] = []
        # field -> term -> [(number added, weight, value bytes, quantised field length)]
        self.postings: dict[str, dict] = {name: {} for name in schema.names() if schema[name].indexed}
        self._fast = {name: _fast_path(schema[name]) for name in self.postings}

    def __len__(self) -> int:
        return self._count

    def add(self, fields: dict) -> None:
        """Add one document (field name -> value, as ``writer.add_document`` takes)."""
        seq = self._count
        schema = self.schema
        row = []
        for name in sorted(fields):
            value = fields[name]
            if value is None:
                continue
            field = schema[name]
            length = 0
            if field.indexed:
                terms = self.postings[name]
                fast = self._fast[name]
                if fast is None:
                    items = list(field.index(value))
                    if field.scorable:
                        length = sum(freq for _t, freq, _w, _v in items)
                    qlen = byte_to_length(length_to_byte(length)) if length else 0
                    for btext, _freq, weight, vbytes in items:
                        terms.setdefault(btext, []).append((seq, weight, vbytes or emptybytes, qlen))
                elif fast[0] == "id":
                    terms.setdefault(value, []).append((seq, 1.0, emptybytes, 0))
                else:
                    encode = fast[1]
                    found = field.analyzer.positions(value)
                    if field.scorable:
                        length = sum(map(len, found.values()))
                    qlen = byte_to_length(length_to_byte(length)) if length else 0
                    for term, poslist in found.items():
                        posting = (seq, float(len(poslist)), encode(poslist), qlen)
                        plist = terms.get(term)
                        if plist is None:
                            terms[term] = [posting]
                        else:
                            plist.append(posting)
            row.append((name, value if field.stored else None, length,
                        field.to_column_value(value) if field.column_type is not None else None))
        self._count += 1
        if self.reverse:
            self._rows.append(row)
        else:
            self._write_row(self._perdoc, seq, row)

    def _write_row(self, perdoc, docnum: int, row: list[tuple]) -> None:
        perdoc.start_doc(docnum)
        for name, stored, length, colvalue in row:
            field = self.schema[name]
            perdoc.add_field(name, field, stored, length)
            if field.column_type is not None:
                perdoc.add_column_value(name, field.column_type, colvalue)
        perdoc.finish_doc()

    def discard(self) -> None:
        """Remove what was written so far (a builder that is not finished)."""
        self.postings = {}
        self._rows = []
        try:
            if self._perdoc is not None and not self._perdoc.is_closed:
                self._perdoc.close()  # the only way to close its files
        finally:
            for name in self.segment.list_files(self.storage):
                self.storage.delete_file(name)

    def finish(self):
        """Write the rest of the segment (term table, postings; a reverse builder's stored
        fields and columns) and assemble its file; returns the segment."""
        # a reverse builder's document numbers: the last added is 0 (postings are flipped below)
        flip = self._count - 1 if self.reverse else None
        if self.reverse:
            perdoc = self.codec.per_document_writer(self.storage, self.segment)
            try:
                for docnum, row in enumerate(reversed(self._rows)):
                    self._write_row(perdoc, docnum, row)
            finally:
                perdoc.close()
            self._rows = []
        else:
            self._perdoc.close()
        schema = self.schema
        terms_file = self.segment.create_file(self.storage, W3Codec.TERMS_EXT)
        table = OrderedHashWriter(terms_file)
        fieldmap = table.extras["fieldmap"] = {}  # as W3FieldWriter writes it
        postfile = self.segment.create_file(self.storage, W3Codec.POSTS_EXT)
        try:
            for name in sorted(self.postings):
                terms = self.postings[name]
                if not terms:
                    continue
                fieldid = fieldmap[name] = len(fieldmap)
                prefix = pack_ushort(fieldid)
                fixedsize = schema[name].format.fixed_value_size()
                keyed = [(t.encode("utf-8") if isinstance(t, str) else t, plist) for t, plist in terms.items()]
                keyed.sort(key=lambda kv: kv[0])
                offset = postfile.tell()
                pending: list[bytes] = []
                for btext, plist in keyed:
                    if flip is not None:
                        plist.reverse()
                    written, info = _postings_bytes(offset, plist, fixedsize, flip)
                    pending.append(written)
                    offset += len(written)
                    table.add(prefix + btext, info)
                    if len(pending) >= 4096:
                        postfile.write(emptybytes.join(pending))
                        pending.clear()
                postfile.write(emptybytes.join(pending))
        finally:
            table.close()
            postfile.close()
        self.postings = {}
        self.segment.set_doc_count(self._count)
        self.segment.create_compound_file(self.storage)
        return self.segment


# A pickler per thread for the parts of every block: "fast" (no memo), so that parts pickled
# apart can be joined into one pickle.
_parts = threading.local()
_BININT = struct.Struct("<i")
#: How a block's data starts: protocol 3, then where its values start as an int that is popped.
BLOCK_HEAD = b"\x80\x03J"
BLOCK_HEAD_SIZE = len(BLOCK_HEAD) + _BININT.size + 1


def _part(obj) -> bytes:
    """The pickle opcodes of ``obj`` alone (no protocol header, no STOP)."""
    pickler = getattr(_parts, "pickler", None)
    if pickler is None:
        _parts.buffer = io.BytesIO()
        pickler = _parts.pickler = pickle.Pickler(_parts.buffer, 3)
        pickler.fast = True
    buffer = _parts.buffer
    buffer.seek(0)
    buffer.truncate()
    pickler.dump(obj)
    return buffer.getvalue()[2:-1]


def block_data(deltas: array, weights, values) -> bytes:
    """A posting block's data, as Whoosh loads it: the pickle of ``(deltas, weights, values)``.

    Whoosh's writer pickles a tuple of ints, a tuple of floats and a tuple of bytes with protocol
    2, which rebuilds every bytes value (a posting's positions) by a function call at load time.
    kb pickles the document-number deltas and the weights as arrays (a block loads them as two
    buffers), the values with protocol 3, and begins the pickle with the offset of the values,
    pushed and popped again (Whoosh's reader never sees it): :mod:`kb.scoring`, which needs no
    positions, loads only what comes before them.
    """
    ids = _part(deltas)
    weights = _part(weights)
    head = BLOCK_HEAD + _BININT.pack(BLOCK_HEAD_SIZE + len(ids) + len(weights)) + b"0"  # "0": POP
    return b"".join((head, ids, weights, _part(values), b"\x87."))  # TUPLE3, STOP


_TERMINFO = struct.Struct("!BfIBBfIIqi")  # W3TermInfo.to_bytes: stats, then (offset, length)


def _postings_bytes(offset: int, plist: list[tuple], fixedsize: int | None, flip: int | None = None
                    ) -> tuple[bytes, bytes]:
    """One term's postings as W3PostingsWriter writes them at ``offset`` of the postings file,
    made a block at a time instead of a posting at a time: (their bytes, the term's W3TermInfo
    bytes, as ``W3TermInfo.to_bytes`` packs them).  With ``flip``, a posting's document number
    is ``flip`` minus the number it carries."""
    out = [WHOOSH3_HEADER_MAGIC]
    total = len(plist)
    weight = 0.0
    minlength = None
    maxlength = 0
    maxweight = 0
    for first in range(0, total, BLOCK_LIMIT):
        chunk = plist[first:first + BLOCK_LIMIT] if total > BLOCK_LIMIT else plist
        ids, weights, values, lengths = zip(*chunk)
        if flip is not None:
            ids = tuple(map(flip.__sub__, ids))
        if not first:
            first_id = ids[0]
        n = len(ids)
        deltas = array("I", (ids[0], *map(sub, ids[1:], ids)) if n > 1 else ids)
        # weights are kept as float32 (W3's array("f")): frequencies, exact either way
        if weights.count(1.0) == n:
            mini_weights = None
        elif weights.count(weights[0]) == n:
            mini_weights = weights[0]
        else:
            mini_weights = array("f", weights)
        if fixedsize is None or fixedsize < 0:
            mini_values = values
        elif fixedsize == 0:
            mini_values = None
        else:
            mini_values = emptybytes.join(values)
        data = block_data(deltas, mini_weights, mini_values)
        block_maxweight = max(weights)
        if 0 in lengths:
            lengths = [x for x in lengths if x]
        block_min = min(lengths) if lengths else None
        block_max = max(lengths) if lengths else 0
        block_info = pickle.dumps((n, ids[-1], block_maxweight, COMPRESSION, length_to_byte(block_min),
                                   length_to_byte(block_max)), 2)
        size = len(block_info) + len(data)
        out += (_pack_int(-size if first + n >= total else size), block_info, data)
        # the term's statistics, as W3TermInfo.add_block gathers them
        weight += sum(weights)
        if block_min is not None and (minlength is None or block_min < minlength):
            minlength = block_min
        maxlength = max(maxlength, block_max)
        maxweight = max(maxweight, block_maxweight)
    written = emptybytes.join(out)
    info = _TERMINFO.pack(0, weight, total, length_to_byte(minlength), length_to_byte(maxlength), maxweight,
                          first_id, ids[-1], offset, len(written))
    return written, info
