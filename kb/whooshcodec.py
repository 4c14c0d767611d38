"""Everything kb knows about Whoosh's insides, in one place: the W3 codec's files and blocks.

kb writes Whoosh segments itself (:mod:`kb.writer`), reads posting blocks and field lengths
straight from them (:mod:`kb.scoring`), and opens index files without memory maps.  All of that
depends on private attributes and on-disk layouts of Whoosh 2.7.4, so it lives here, and this
module refuses to load with any other Whoosh version (``tests/test_writer.py`` checks both sides
against Whoosh's own writer and matchers).  The other modules use only Whoosh's public API.
"""

from __future__ import annotations

import io
import os
import pickle
import secrets
import struct
import threading
import zlib
from array import array
from operator import sub

import numpy as np
import whoosh
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, WHOOSH3_HEADER_MAGIC, W3Codec, W3Segment, W3TermInfo, _lenfield
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.filetables import OrderedHashWriter
from whoosh.filedb.structfile import BufferFile, StructFile
from whoosh.system import emptybytes, pack_int as _pack_int, pack_ushort
from whoosh.util.numeric import byte_to_length, length_to_byte

if whoosh.__version__ != (2, 7, 4):  # the layouts below are Whoosh 2.7.4's
    raise ImportError(f"kb reads Whoosh 2.7.4's files, not Whoosh {whoosh.versionstring()}")

#: Postings per block (Whoosh's default is 128) and zlib level of the blocks (Whoosh's: 3).
BLOCK_LIMIT = 1024
COMPRESSION = 0

_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


class SegmentDamaged(OSError):
    """An index file is shorter than its own directory says (truncated or being overwritten)."""


# -- opening an index without memory maps -----------------------------------------------------


class _Window:
    """A read-only window of an open file read with ``os.pread``: no shared file position (safe
    between threads) and no memory map (a truncated file raises :class:`SegmentDamaged` where a
    mapped one kills the process with SIGBUS)."""

    def __init__(self, fd: int, offset: int, length: int, name: str, owner: bool = False):
        self.fd, self.offset, self.length, self.name, self.owner = fd, offset, length, name, owner
        self.pos = 0

    def pread(self, position: int, size: int) -> bytes:
        size = max(0, min(size, self.length - position))
        data = os.pread(self.fd, size, self.offset + position) if size else b""
        if len(data) != size:
            raise SegmentDamaged(f"{self.name} is shorter than its index says (truncated?)")
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.length - self.pos
        data = self.pread(self.pos, size)
        self.pos += len(data)
        return data

    def readline(self) -> bytes:
        rest = self.pread(self.pos, self.length - self.pos)
        end = rest.find(b"\n") + 1 or len(rest)
        self.pos += end
        return rest[:end]

    def seek(self, where: int, whence: int = 0) -> int:
        self.pos = where if whence == 0 else self.pos + where if whence == 1 else self.length + where
        return self.pos

    def tell(self) -> int:
        return self.pos

    def close(self) -> None:
        if self.owner and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


#: Parts of a segment read whole into memory when it opens: the term table is looked up a dozen
#: small reads at a time, several times per typed word (about 7 MB a segment on the real corpus);
#: the postings, the bulk, are read with pread, once per term.
_IN_MEMORY = (W3Codec.TERMS_EXT,)


class _PreadFile(StructFile):
    """Whoosh's StructFile over a :class:`_Window`; ``get`` (what the codec's readers use for
    random access) reads at a position without moving any shared state."""

    def get(self, position: int, length: int) -> bytes:
        return self.file.pread(position, length)

    def subset(self, offset: int, length: int, name: str | None = None) -> StructFile:
        w = self.file
        part = _Window(w.fd, w.offset + offset, length, name or w.name)
        if part.name.endswith(_IN_MEMORY):
            return BufferFile(part.pread(0, length), name=part.name)
        return _PreadFile(part, name=part.name)


class _PreadStorage(FileStorage):
    """A FileStorage whose files are read with pread: CompoundStorage then takes the "subset"
    path instead of mapping the segment file."""

    supports_mmap = False

    def open_file(self, name: str, **kwargs) -> _PreadFile:
        fd = os.open(self._fpath(name), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        size = os.fstat(fd).st_size
        return _PreadFile(_Window(fd, 0, size, name, owner=True), name=name, **kwargs)


def open_index(path: str | os.PathLike):
    """Open the Whoosh index in ``path`` for reading, without memory maps; a segment file that is
    shorter than its own directory raises :class:`SegmentDamaged` here or on a later read."""
    storage = _PreadStorage(str(path), supports_mmap=False, readonly=True)
    try:
        ix = storage.open_index()
        ix.reader().close()  # opens every segment's files: their directories must be whole
    except SegmentDamaged:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error, ValueError, KeyError) as exc:
        raise SegmentDamaged(f"a segment file in {path} is damaged ({type(exc).__name__}: {exc})") from None
    return ix


def segment_file_sizes(path: str | os.PathLike) -> dict[str, int]:
    """Sizes of the index files of a generation (segments and TOC), to notice one that changes."""
    return {e.name: e.stat().st_size for e in os.scandir(path)
            if e.name.endswith((".seg", ".toc", ".del")) and e.is_file()}


# -- reading ------------------------------------------------------------------------------------


def deleted_docs(segreader) -> np.ndarray:
    """Document numbers deleted in one segment (an empty array when none are)."""
    if not segreader.has_deletions():  # one call a segment, not one a document
        return np.empty(0, np.int64)
    return np.fromiter(segreader._perdoc.deleted_docs(), dtype=np.int64)


_LENGTH_OF_BYTE = np.array([byte_to_length(b) for b in range(256)], dtype=np.float32)
_LENGTH_OF_BYTE[0] = 0.0


def field_lengths(segreader, field: str) -> np.ndarray:
    """Every document's length of ``field`` in one segment.

    Whoosh keeps lengths as one byte per document in a column; reading that column's bytes in one
    slice (instead of one call per document, a third of a second on the real corpus) is what
    makes opening a generation fast.
    """
    n = segreader.doc_count_all()
    perdoc = getattr(segreader, "_perdoc", None)
    column = perdoc._cached_reader(_lenfield(field), LENGTHS_COLUMN) if perdoc is not None else None
    if column is None:
        return np.zeros(n, dtype=np.float32)
    raw = np.zeros(n, dtype=np.uint8)  # documents past the column's end have length 0
    stored = min(column._count, n)
    if stored:
        raw[:stored] = np.frombuffer(column._dbfile.get(column._basepos, stored), dtype=np.uint8)
    return _LENGTH_OF_BYTE[raw]


def _term_info(segreader, field: str, term: str):
    # W3TermsReader: the codec of every segment kb or Whoosh 2.7.4 writes; an index without
    # documents has an EmptyReader with no terms at all
    terms = getattr(segreader, "_terms", None)
    if terms is None:
        return None
    try:
        # W3TermsReader.term_info, without raising for the many (field, term) pairs a query
        # looks up in vain
        raw = terms._tindex.get(terms._keycoder(field, term.encode("utf-8")))
    except KeyError:  # no term of this field in the segment
        return None
    return None if raw is None else W3TermInfo.from_bytes(raw)


_INT = struct.Struct("!i")  # a W3 block's length (negative for the last block of a term)
_BININT = struct.Struct("<i")


def segment_postings(segreader, field: str, term: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Document numbers and weights of ``term`` in one segment (deleted documents included: the
    alive mask removes them later); None when the segment does not have it.

    Whoosh's W3 postings are read straight from the postings file, a block (up to 1,024 postings)
    at a time: of a block kb wrote, only the document-number deltas and the weights are loaded,
    as two arrays (:func:`block_data`), and NumPy sums the deltas up, where Whoosh's matcher would
    load every posting's positions too and decode them one by one.  Blocks Whoosh wrote (an
    incremental build's) are loaded whole.
    """
    info = _term_info(segreader, field, term)
    if info is None:
        return None
    if info.is_inlined():
        ids, weights, _values = info.inlined_postings()
        return np.asarray(ids, dtype=np.int32), np.asarray(weights, dtype=np.float32)
    offset, length = info.extent()
    if isinstance(length, tuple):  # W3TermInfo.from_bytes leaves the length in a 1-tuple
        length = length[0]
    buf = segreader._terms._postfile.get(offset, length)
    stream = io.BytesIO(buf)
    ids_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    pos = len(WHOOSH3_HEADER_MAGIC)
    while True:
        (size,) = _INT.unpack_from(buf, pos)
        pos += _INT.size
        end = pos + abs(size)
        stream.seek(pos)
        count, _maxid, _maxweight, compression, _minlen, _maxlen = pickle.load(stream)
        data = buf[stream.tell():end]
        if compression:
            data = zlib.decompress(data)
        if data.startswith(BLOCK_HEAD) and data[BLOCK_HEAD_SIZE - 1:BLOCK_HEAD_SIZE] == b"0":
            # kb's layout (block_data): load what comes before the values
            values_at = _BININT.unpack_from(data, len(BLOCK_HEAD))[0]
            deltas, weights = pickle.loads(data[:values_at] + b"\x86.")  # TUPLE2, STOP
        else:
            deltas, weights, _values = pickle.loads(data)
        if isinstance(deltas, array):
            deltas = np.frombuffer(deltas, dtype=np.uint32)
        ids_parts.append(np.cumsum(deltas, dtype=np.int32))  # document numbers fit in 31 bits
        if weights is None:
            w_parts.append(np.ones(count, dtype=np.float32))
        elif isinstance(weights, float):
            w_parts.append(np.full(count, weights, dtype=np.float32))
        else:
            w_parts.append(np.asarray(weights, dtype=np.float32))
        if size < 0:
            break
        pos = end
    if len(ids_parts) == 1:
        return ids_parts[0], w_parts[0]
    return np.concatenate(ids_parts), np.concatenate(w_parts)


def multiterm_expansions(node, reader):
    """The index terms (bytes) a Whoosh multi-term query (fuzzy, regex, …) expands to, lazily."""
    return node._btexts(reader)


# -- writing ------------------------------------------------------------------------------------


def codec() -> W3Codec:
    """The codec of kb's segments (readers take it from the segment, any Whoosh can read them)."""
    return W3Codec(blocklimit=BLOCK_LIMIT, compression=COMPRESSION)


def new_segment(w3codec: W3Codec, indexname: str) -> W3Segment:
    """A new segment with an id of its own: Whoosh draws one from `random`, whose state forked
    writer processes share."""
    return W3Segment(w3codec, indexname, segid="".join(secrets.choice(_ID_CHARS) for _ in range(16)))


_pack_uint = struct.Struct("!I").pack  # whoosh.system.pack_uint, as Positions.encode writes it
_ONE_POSITION: dict[int, bytes] = {}


def encode_positions(poslist: list[int]) -> bytes:
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


def encode_frequency(poslist: list[int]) -> bytes:
    """``whoosh.formats.Frequency``'s value: the frequency."""
    return _pack_uint(len(poslist))


def write_terms(storage, segment: W3Segment, schema, postings: dict[str, dict], flip: int | None) -> None:
    """Write the term table and the postings file of ``segment``: ``postings`` maps field ->
    term -> [(document number, weight, value bytes, quantised field length)]; with ``flip``, a
    posting's document number is ``flip`` minus the number it carries."""
    terms_file = segment.create_file(storage, W3Codec.TERMS_EXT)
    table = OrderedHashWriter(terms_file)
    fieldmap = table.extras["fieldmap"] = {}  # as W3FieldWriter writes it
    postfile = segment.create_file(storage, W3Codec.POSTS_EXT)
    try:
        for name in sorted(postings):
            terms = postings[name]
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
                written, info = postings_bytes(offset, plist, fixedsize, flip)
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


# A pickler per thread for the parts of every block: "fast" (no memo), so that parts pickled
# apart can be joined into one pickle.
_parts = threading.local()
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
    pushed and popped again (Whoosh's reader never sees it): :func:`segment_postings`, which needs
    no positions, loads only what comes before them.
    """
    ids = _part(deltas)
    weights = _part(weights)
    head = BLOCK_HEAD + _BININT.pack(BLOCK_HEAD_SIZE + len(ids) + len(weights)) + b"0"  # "0": POP
    return b"".join((head, ids, weights, _part(values), b"\x87."))  # TUPLE3, STOP


_TERMINFO = struct.Struct("!BfIBBfIIqi")  # W3TermInfo.to_bytes: stats, then (offset, length)


def postings_bytes(offset: int, plist: list[tuple], fixedsize: int | None, flip: int | None = None
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
        ids, weights, values, lengths = zip(*chunk, strict=True)
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
