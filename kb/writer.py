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
(:func:`kb.whooshcodec.block_data`): :mod:`kb.scoring` reads postings a block at a time, so bigger blocks
mean fewer loads per query, and zlib cost more time at build and query than the disk it saved.
"""

from __future__ import annotations

from whoosh.analysis import IDTokenizer
from whoosh.fields import Schema
from whoosh.formats import Existence, Frequency, Positions
from whoosh.system import emptybytes
from whoosh.util.numeric import byte_to_length, length_to_byte

# the codec's files and block layout live in kb.whooshcodec (the one module that knows Whoosh's
# insides); codec() and BLOCK_LIMIT are re-exported for kb.index and the tests
from .whooshcodec import BLOCK_LIMIT, codec, encode_frequency, encode_positions, new_segment, write_terms

__all__ = ["BLOCK_LIMIT", "SegmentBuilder", "codec"]


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
            return ("terms", encode_positions)
        if type(fmt) is Frequency:
            return ("terms", encode_frequency)
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
        self.segment = new_segment(self.codec, indexname)
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
        write_terms(self.storage, self.segment, self.schema, self.postings, flip)
        self.postings = {}
        self.segment.set_doc_count(self._count)
        self.segment.create_compound_file(self.storage)
        return self.segment
