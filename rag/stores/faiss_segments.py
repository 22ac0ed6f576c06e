"""Segments: how a FAISS generation is made of immutable files shared with its elders.

A generation is a base (chunks.sqlite + vectors.faiss, the layout rag/stores/faiss.py
describes) plus up to MAX_DELTAS delta segments, newest last, named in the manifest's
backend["segments"]. A delta `seg-000008.sqlite` holds the chunks, pages and lexical
rows a commit added, and `dead`: the sources whose rows in every older segment are gone
(a file updated, moved or removed); `seg-000008.faiss` holds its vectors. No file is
changed once its generation is live, so the next generation hard-links the files it
keeps (no bytes copied) and writes only its own delta: a commit costs what changed.

Why segments rather than one shared SQLite database with a generation column: every
generation stays a self-contained folder that a killed writer cannot have touched
(the crash guarantees stay "CURRENT names a whole generation"), readers of an older
generation keep working while it is swept, and the vectors need segments anyway (a
FAISS file cannot be appended to in place).

The compromises: a reader attaches the deltas and merges them (temporary views named
`chunks` and `pages` show exactly the live rows; the vectors are merged in memory at
open, as the one file was read before). BM25 of a delta's rows is rescaled to the idf
of the whole index (lexical_scores below), but document lengths are each segment's
own, and removed rows still count in the base's statistics until the next compaction.
A commit compacts everything into a new base when the index is small (below
COMPACT_BELOW chunks, where a copy is cheaper than bookkeeping), when the deltas reach a
quarter of the base, or when the vector index changes type (flat <-> IVF, see
vector_index.fit); otherwise neighbouring deltas of similar size are merged (a binary
counter), so a commit rewrites O(change x log(index)) rows amortised.
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import IndexCorruptError
from .faiss_files import _SCHEMA, CHUNKS_DB, LATE_COLUMNS, VECTORS, _copy_db, _read_vectors, chunk_columns
from .vector_index import _all, load_faiss, new_flat

COMPACT_BELOW = int(os.environ.get("RAG_FAISS_COMPACT_BELOW", "20000"))
MAX_DELTAS = 8  # SQLite attaches at most 10 databases
DELTA_SHARE = float(os.environ.get("RAG_FAISS_DELTA_SHARE", "0.25"))
DEAD_SCHEMA = "CREATE TABLE IF NOT EXISTS dead (source TEXT PRIMARY KEY);"
_COLUMNS = 'id, source, page, heading, start, "end", text, tokens'


@dataclass(frozen=True)
class Segment:
    """One delta: its file stem, rows and dead sources (its size for the merge rule)."""

    name: str
    rows: int
    dead: int

    @property
    def size(self) -> int:
        return self.rows + self.dead

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "rows": self.rows, "dead": self.dead}


def deltas(backend: dict[str, Any]) -> list[Segment]:
    """The delta segments a manifest names, oldest first (none in an older index)."""
    return [Segment(str(s["name"]), int(s["rows"]), int(s["dead"])) for s in backend.get("segments", [])]


def db_path(gen_dir: Path, name: str) -> Path:
    return gen_dir / f"{name}.sqlite"


def vectors_path(gen_dir: Path, name: str) -> Path:
    return gen_dir / f"{name}.faiss"


def late_select(db: sqlite3.Connection, schema: str = "main") -> str:
    """The location and ocr columns, or their defaults in a segment written before them."""
    have = {row[1] for row in db.execute(f"PRAGMA {schema}.table_info(chunks)")}
    return ", ".join(n if n in have else f"{d} AS {n}" for n, d in (("location", "''"), ("ocr", "0")))


def connect(gen_dir: Path, segs: Sequence[Segment]) -> sqlite3.Connection:
    """A read-only connection to a generation: with deltas, temporary views `chunks` and
    `pages` show the live rows of all segments and `dead_ids(seg, id)` lists the rows of
    each segment that newer ones removed (segment 0 is the base)."""
    db = sqlite3.connect(f"file:{gen_dir / CHUNKS_DB}?mode=ro", uri=True, check_same_thread=False)
    if not segs:
        return db
    schemas = ["main"]
    for i, seg in enumerate(segs, start=1):
        path = db_path(gen_dir, seg.name)
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; rebuild the index with --rebuild")
        db.execute(f"ATTACH DATABASE ? AS s{i}", (f"file:{path}?mode=ro",))
        schemas.append(f"s{i}")
    db.execute("CREATE TEMP TABLE dead_src (seg INTEGER, source TEXT)")
    for i in range(1, len(schemas)):
        db.execute(f"INSERT INTO temp.dead_src SELECT ?, source FROM s{i}.dead", (i,))
    db.execute("CREATE TEMP TABLE dead_ids (seg INTEGER, id INTEGER, PRIMARY KEY (seg, id))")
    chunk_parts, page_parts = [], []
    for i, schema in enumerate(schemas):
        alive = f"source NOT IN (SELECT source FROM temp.dead_src WHERE seg > {i})"
        db.execute(f"INSERT INTO temp.dead_ids SELECT {i}, id FROM {schema}.chunks WHERE NOT ({alive})")
        chunk_parts.append(f"SELECT {_COLUMNS}, {late_select(db, schema)} FROM {schema}.chunks WHERE {alive}")
        page_parts.append(f'SELECT source, page, "offset", text, generation FROM {schema}.pages WHERE {alive}')
    db.execute("CREATE TEMP VIEW chunks AS " + " UNION ALL ".join(chunk_parts))
    db.execute("CREATE TEMP VIEW pages AS " + " UNION ALL ".join(page_parts))
    return db


def load_vectors(gen_dir: Path, segs: Sequence[Segment], db: sqlite3.Connection) -> Any:
    """The vectors of every live row, in one index: the base's, less its removed rows,
    plus each delta's live ones."""
    merged = _read_vectors(gen_dir / VECTORS)
    for i in range(len(segs) + 1):
        dead = np.array([r[0] for r in db.execute("SELECT id FROM temp.dead_ids WHERE seg = ?", (i,))], np.int64)
        if i == 0:
            if len(dead):
                merged.remove_ids(dead)
            continue
        part = _read_vectors(vectors_path(gen_dir, segs[i - 1].name))
        vecs, ids = _all(part)
        keep = ~np.isin(ids, dead)
        if keep.any():
            merged.add_with_ids(np.ascontiguousarray(vecs[keep]), np.ascontiguousarray(ids[keep]))
    return merged


def lexical_scores(db: sqlite3.Connection, nsegs: int, terms: Sequence[str], match: str, k: int) -> list[tuple[int, float]]:
    """Top-k (chunk id, BM25) over every segment. The base is ranked by SQLite; a delta's
    BM25 is taken term by term and each term's idf replaced by the whole index's, so a
    one-file delta (whose own idf is near zero for its common words) ranks fairly."""
    base = db.execute(
        "SELECT rowid, -bm25(chunks_fts) FROM main.chunks_fts WHERE chunks_fts MATCH ? "
        "AND rowid NOT IN (SELECT id FROM temp.dead_ids WHERE seg = 0) ORDER BY bm25(chunks_fts) LIMIT ?",
        (match, k)).fetchall()
    if not nsegs:
        return [(int(i), float(s)) for i, s in base]
    schemas = ["main"] + [f"s{i}" for i in range(1, nsegs + 1)]
    sizes = [db.execute(f"SELECT count(*) FROM {s}.chunks_fts").fetchone()[0] for s in schemas]
    total = sum(sizes)
    scores: dict[int, float] = {}
    for term in terms:
        phrase = '"' + term.replace('"', "") + '"'
        per_seg = [db.execute(
            f"SELECT rowid, -bm25(chunks_fts) FROM {s}.chunks_fts WHERE chunks_fts MATCH ? "
            f"AND rowid NOT IN (SELECT id FROM temp.dead_ids WHERE seg = {i})", (phrase,)).fetchall()
            for i, s in enumerate(schemas) if i > 0]
        base_df = db.execute("SELECT count(*) FROM main.chunks_fts WHERE chunks_fts MATCH ?", (phrase,)).fetchone()[0]
        idf_all = _idf(total, base_df + sum(len(rows) for rows in per_seg))
        for size, rows in zip(sizes[1:], per_seg):
            idf_seg = _idf(size, len(rows))
            for rowid, score in rows:
                scores[int(rowid)] = scores.get(int(rowid), 0.0) + score / idf_seg * idf_all
    merged = [(int(i), float(s)) for i, s in base] + list(scores.items())
    return sorted(merged, key=lambda p: -p[1])[:k]


def _idf(n: int, df: int) -> float:
    """FTS5's BM25 idf, with its floor."""
    value = math.log((n - df + 0.5) / (df + 0.5)) if n else 0.0
    return value if value > 0 else 1e-6


def fts_count(db: sqlite3.Connection, nsegs: int, term: str) -> int:
    """How many rows of all segments the lexical index matches for a phrase."""
    schemas = ["main"] + [f"s{i}" for i in range(1, nsegs + 1)]
    return sum(db.execute(f"SELECT count(*) FROM {s}.chunks_fts WHERE chunks_fts MATCH ?", (term,)).fetchone()[0]
               for s in schemas)


def add_late_columns(db: sqlite3.Connection) -> None:
    have = chunk_columns(db)
    for name, spec in LATE_COLUMNS.items():
        if name not in have:  # an index written before the column existed
            db.execute(f"ALTER TABLE chunks ADD COLUMN {name} {spec}")


def apply(db: sqlite3.Connection, seg_db: Path) -> np.ndarray:
    """Fold a newer segment into `db` (an older one, or a base being compacted): drop the
    rows of its dead sources, add its rows; returns the ids dropped."""
    db.execute("ATTACH DATABASE ? AS newer", (str(seg_db),))
    try:
        dead = "source IN (SELECT source FROM newer.dead)"
        ids = np.array([r[0] for r in db.execute(f"SELECT id FROM main.chunks WHERE {dead}")], np.int64)
        db.executemany("DELETE FROM main.chunks_fts WHERE rowid = ?", [(int(i),) for i in ids])
        db.execute(f"DELETE FROM main.chunks WHERE {dead}")
        db.execute(f"DELETE FROM main.pages WHERE {dead}")
        db.execute(f"INSERT INTO main.chunks ({_COLUMNS}, location, ocr) SELECT {_COLUMNS}, location, ocr FROM newer.chunks")
        db.execute('INSERT INTO main.pages SELECT source, page, "offset", text, generation FROM newer.pages')
        db.execute("INSERT INTO main.chunks_fts (rowid, heading, text) SELECT id, heading, text FROM newer.chunks")
        db.execute("INSERT OR IGNORE INTO main.dead SELECT source FROM newer.dead")
        db.commit()
    finally:
        db.execute("DETACH DATABASE newer")
    return ids


# A segment being written lives in a generation that is not live: a crash makes it
# debris, so it needs no journal fsyncs (the writer fsyncs every file before the flip).
_UNSYNCED = "PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF;"


def new_db(path: Path) -> sqlite3.Connection:
    """An empty segment database for a writer."""
    db = sqlite3.connect(path)
    db.executescript(_UNSYNCED + _SCHEMA + DEAD_SCHEMA)
    return db


def copy_db(src: Path, dst: Path) -> sqlite3.Connection:
    """A writable copy of a segment's database, with the current schema."""
    _copy_db(src, dst)
    db = sqlite3.connect(dst)
    db.executescript(_UNSYNCED + _SCHEMA + DEAD_SCHEMA)
    add_late_columns(db)
    return db


def fold(dst_db: sqlite3.Connection, dst_vectors: Any, newer: Iterable[tuple[Path, Path]]) -> None:
    """Fold newer segments ((database, vectors) pairs, oldest first) into an open
    database and its vector index."""
    for seg_db, seg_vectors in newer:
        dropped = apply(dst_db, seg_db)
        if len(dropped):
            dst_vectors.remove_ids(dropped)
        vecs, ids = _all(_read_vectors(seg_vectors))
        if len(ids):
            dst_vectors.add_with_ids(np.ascontiguousarray(vecs), np.ascontiguousarray(ids))


def flat_copy(index: Any, storage: str) -> Any:
    """A flat index holding the same vectors (a delta's vectors are always flat)."""
    vecs, ids = _all(index)
    out = new_flat(index.d, storage)
    if len(ids):
        out.add_with_ids(np.ascontiguousarray(vecs), np.ascontiguousarray(ids))
    return out


def write_vectors(index: Any, path: Path) -> None:
    load_faiss().write_index(index, str(path))


def link(src_dir: Path, dst_dir: Path, names: Iterable[str]) -> None:
    """Hard-link files of the live generation into the next one (no bytes copied)."""
    for name in names:
        os.link(src_dir / name, dst_dir / name)
