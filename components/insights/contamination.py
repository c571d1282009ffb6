"""Contamination: are evaluation prompts inside the training rows?

Text is reduced to its words, lowercased (letters, digits and marks; punctuation and whitespace do
not count), and cut into word n-grams (n = 8 by default, as in Tulu-style decontamination), hashed in
an in-memory DuckDB. A training row and an evaluation row match when they share an n-gram; the
score is the fraction of the evaluation prompt's distinct n-grams found in the training row, so a
copied prompt scores near 1 wherever it sits in the row. Each training row keeps its best
evaluation row.

Instruction templates ("In this task, you are given ...") make innocent overlaps. Two things tell
them apart: their score stays low (the template is a small part of each prompt), and the n-grams
shared by several evaluation prompts, or by ``TEMPLATE_TRAIN_ROWS`` training rows, are template
n-grams (``template_share``: the fraction of the matched n-grams that are), shown dimmed in the
highlight while the rest is marked. N-grams shared by
more than ``COMMON_EVAL`` evaluation prompts do not make candidates on their own (they would pair
every row with every row), but they count in the score of a candidate found otherwise.
"""

from __future__ import annotations

import html
import json
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
import duckdb

from ..store import Database
from ..text import sql_literal
from .. import catalogue

FIELDS = ("prompt", "chosen", "rejected", "text")
COMMON_EVAL = 50
"""An n-gram in more evaluation prompts than this is a template n-gram: not a candidate on its own."""
WORDS_RE = r"[\p{L}\p{N}\p{M}]+"
TEMPLATE_TRAIN_ROWS = 3
"""An n-gram in this many training rows (or in two evaluation prompts) is a template n-gram."""


class ContaminationError(ValueError):
    """A contamination request that cannot be carried out, in one line."""


@dataclass
class Match:
    row: int  # the training row
    eval_dataset: str
    eval_row: int
    score: float  # fraction of the evaluation prompt's n-grams found in the training row
    matched: int  # distinct n-grams of the evaluation prompt found in the training row
    eval_ngrams: int  # distinct n-grams of the evaluation prompt
    template_share: float  # fraction of the matched n-grams that several evaluation prompts share
    longest_words: int = 0  # the longest run of matched words in the training row
    spans: list[list[int]] = field(default_factory=list)  # [start, end, template] character spans of the row
    other_eval_rows: int = 0  # further evaluation rows this training row matches

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    train: str
    against: list[str]
    n: int
    field: str
    matches: list[Match]
    train_rows: int
    eval_rows: int
    seconds: float


def field_sql(name: str) -> str:
    """SQL for the text of field ``name`` of a record (``prompt``: every turn of the prompt)."""
    if name == "prompt":
        return "array_to_string(list_transform(prompt, lambda x: coalesce(x.content, '')), '\n')"
    if name in ("chosen", "rejected"):
        return f"{name}[-1].content"
    if name == "text":
        return "text"
    raise ContaminationError(f"unknown field {name!r}: use one of {', '.join(FIELDS)}")


def field_text(record: dict, name: str) -> str:
    """The text of field ``name`` of a record as ``Database.record`` returns it (as ``field_sql`` reads it).

    >>> field_text({"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, "prompt")
    'a\\nb'
    """
    if name == "prompt":
        return "\n".join((m or {}).get("content") or "" for m in record.get("prompt") or [])
    if name in ("chosen", "rejected"):
        msgs = record.get(name) or []
        return ((msgs[-1] or {}).get("content") or "") if msgs else ""
    return record.get("text") or ""


def words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of each word of ``text``, lowercased: runs of letters, digits and marks, the
    class ``WORDS_RE`` matches in DuckDB.

    >>> [w for w, _, _ in words("In THIS task, you're given--an A.B. test!")]
    ['in', 'this', 'task', 'you', 're', 'given', 'an', 'a', 'b', 'test']
    >>> [w for w, _, _ in words("शायद आप")]
    ['शायद', 'आप']
    """
    out, start = [], None
    text = text or ""
    for i, ch in enumerate(text):
        inside = unicodedata.category(ch)[0] in "LNM"
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            out.append((text[start:i].lower(), start, i))
            start = None
    if start is not None:
        out.append((text[start:].lower(), start, len(text)))
    return out


def _dataset_field(db: Database, name: str, fld: str) -> str:
    info = catalogue.dataset(db, name)
    if info is None:
        raise ContaminationError(f"no dataset named {name!r}")
    if info.kind == "documents":
        return "text"
    if fld == "text":
        raise ContaminationError(f"{name} holds {info.kind}: use --field prompt, chosen or rejected")
    return fld


def _grams_sql(n: int) -> str:
    """SQL: one row (r, h) per word ``n``-gram of the word lists ``w`` of table ``{src}`` (h: its hash)."""
    words_of = ", ".join(f"w[i + {k}]" for k in range(n))
    return f"SELECT r, unnest(list_transform(range(1, len(w) - {n - 2}), lambda i: hash({words_of}))) AS h FROM {{src}}"


def find_contamination(db: Database, train: str, against: list[str] | str, n: int = 8, fld: str = "prompt",
                       threshold: float = 0.0, limit: int | None = 1000) -> Result:
    """Training rows of ``train`` that share word ``n``-grams with the prompts of the ``against``
    datasets, best score first; only scores of ``threshold`` or more; the first ``limit`` (None: all)."""
    import pyarrow as pa

    t0 = time.perf_counter()
    against = [a for a in ([against] if isinstance(against, str) else list(against)) if a]
    if not against:
        raise ContaminationError("name the evaluation dataset(s) to check against")
    if not isinstance(n, int) or not 1 <= n <= 50:
        raise ContaminationError("n must be a whole number from 1 to 50")
    fld = _dataset_field(db, train, fld)
    efields = [_dataset_field(db, name, "prompt") for name in against]
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        train_text = db.arrow(f"SELECT row AS r, {field_sql(fld)} AS t FROM records WHERE dataset = ?", [train])
        evals = pa.concat_tables([
            db.arrow(f"SELECT {k} * 4294967296 + row AS r, {field_sql(efld)} AS t FROM records WHERE dataset = ?",
                     [name]) for k, (name, efld) in enumerate(zip(against, efields))])
        con.register("train_text", train_text)
        con.register("eval_text", evals)
        for table, src in (("tw", "train_text"), ("ew", "eval_text")):
            con.execute(f"CREATE TEMP TABLE {table} AS SELECT r, regexp_extract_all(lower(t), '{WORDS_RE}') AS w "
                        f"FROM {src}")
        grams = _grams_sql(n)
        con.execute(f"CREATE TEMP TABLE eg AS SELECT DISTINCT r AS e, h FROM ({grams.format(src='ew')})")
        con.execute(f"CREATE TEMP TABLE tg AS SELECT DISTINCT t.r, t.h FROM ({grams.format(src='tw')}) t "
                    "SEMI JOIN eg ON t.h = eg.h")
        con.execute(f"""CREATE TEMP TABLE hk AS
            SELECT h, evals, evals > 1 OR coalesce(trains, 0) >= {TEMPLATE_TRAIN_ROWS} AS tpl
            FROM (SELECT h, count(*) AS evals FROM eg GROUP BY h)
            LEFT JOIN (SELECT h, count(*) AS trains FROM tg GROUP BY h) USING (h)""")
        con.execute("CREATE TEMP TABLE et AS SELECT e, count(*) AS total FROM eg GROUP BY e")
        con.execute(f"""CREATE TEMP TABLE cand AS
            SELECT DISTINCT tg.r, eg.e FROM tg JOIN hk USING (h) JOIN eg USING (h) WHERE hk.evals <= {COMMON_EVAL}""")
        rows = con.execute(f"""
            WITH scored AS (
                SELECT c.r, c.e, count(*) AS matched, count(*) FILTER (hk.tpl) AS shared
                FROM cand c JOIN tg ON tg.r = c.r JOIN eg ON eg.e = c.e AND eg.h = tg.h JOIN hk ON hk.h = tg.h
                GROUP BY c.r, c.e),
            ranked AS (
                SELECT s.*, et.total, s.matched / et.total AS score,
                       row_number() OVER (PARTITION BY s.r ORDER BY s.matched / et.total DESC, s.e) AS place,
                       count(*) OVER (PARTITION BY s.r) AS options
                FROM scored s JOIN et USING (e))
            SELECT r, e, score, matched, total, shared, options
            FROM ranked WHERE place = 1 AND score >= ? ORDER BY score DESC, r {'' if limit is None else 'LIMIT ?'}
        """, [threshold] + ([] if limit is None else [limit])).fetchall()
        positions = _positions(con, [(r[0], r[1]) for r in rows], n)
    finally:
        con.close()
    matches = [Match(row=r, eval_dataset=against[e // 4294967296], eval_row=e % 4294967296, score=round(score, 6),
                     matched=matched, eval_ngrams=total, template_share=round(shared / matched, 6) if matched else 0.0,
                     other_eval_rows=options - 1)
               for r, e, score, matched, total, shared, options in rows]
    _add_spans(db, train, fld, matches, [positions.get((r[0], r[1]), []) for r in rows], n)
    return Result(train=train, against=against, n=n, field=fld, matches=matches, train_rows=train_text.num_rows,
                  eval_rows=evals.num_rows, seconds=round(time.perf_counter() - t0, 3))


def _positions(con, pairs: list[tuple[int, int]], n: int) -> dict[tuple[int, int], list[tuple[int, bool]]]:
    """{(train row, eval key): [(word index of a matched n-gram, template?)]} of the result pairs."""
    if not pairs:
        return {}
    import pyarrow as pa

    con.register("res", pa.table({"r": [p[0] for p in pairs], "e": [p[1] for p in pairs]}))
    words_of = ", ".join(f"w[i + {k}]" for k in range(n))
    got = con.execute(f"""
        WITH tp AS (
            SELECT r, unnest(range(0, len(w) - {n - 1})) AS i,
                   unnest(list_transform(range(1, len(w) - {n - 2}), lambda i: hash({words_of}))) AS h
            FROM tw SEMI JOIN res USING (r))
        SELECT res.r, res.e, list((tp.i, hk.tpl) ORDER BY tp.i)
        FROM res JOIN tp USING (r) JOIN eg ON eg.e = res.e AND eg.h = tp.h JOIN hk ON hk.h = tp.h
        GROUP BY res.r, res.e""").fetchall()
    return {(r, e): [(p["i"] if isinstance(p, dict) else p[0], p["tpl"] if isinstance(p, dict) else p[1])
                     for p in ps] for r, e, ps in got}


def _add_spans(db: Database, train: str, fld: str, matches: list[Match], positions: list, n: int) -> None:
    """The character spans of each training row that its evaluation prompt's n-grams cover; a span
    is template-like (``[start, end, 1]``) when only template n-grams cover it."""
    if not matches:
        return
    texts = dict(db.rows(f"SELECT row, {field_sql(fld)} FROM records WHERE dataset = ? AND row IN (SELECT unnest(?))",
                         [train, [m.row for m in matches]]))
    for m, pos in zip(matches, positions):
        tw = words(texts.get(m.row) or "")
        cover = [None] * len(tw)  # None: not matched; True: distinctive; False: template only
        for i, tpl in pos:
            for j in range(i, min(i + n, len(tw))):
                cover[j] = bool(cover[j]) or not tpl
        spans, run, longest = [], 0, 0
        for j, c in enumerate(cover):
            run = run + 1 if c is not None else 0
            longest = max(longest, run)
            if c is None:
                continue
            kind = 0 if c else 1
            if j and cover[j - 1] is not None and spans and spans[-1][2] == kind:
                spans[-1][1] = tw[j][2]
            else:
                spans.append([tw[j][1], tw[j][2], kind])
        m.spans, m.longest_words = spans, longest


def highlight(text: str, spans: list[list[int]]) -> str:
    """``text`` HTML-escaped, its matched spans in ``<mark>`` (``class="tpl"`` when template-like).

    >>> highlight("a <b> copied prompt here", [[6, 19, 0]])
    'a &lt;b&gt; <mark>copied prompt</mark> here'
    """
    out, last = [], 0
    for start, end, template in sorted(spans):
        out.append(html.escape(text[last:start]))
        cls = ' class="tpl"' if template else ""
        out.append(f"<mark{cls}>{html.escape(text[start:end])}</mark>")
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


def export_clean(db: Database, train: str, suspects: list[int], out: str | Path) -> int:
    """Write the rows of ``train`` that are not ``suspects`` to ``out`` (JSON lines in the TRL
    conversational shape: prompt, chosen, rejected as messages; or text); returns how many."""
    info = catalogue.dataset(db, train)
    if info is None:
        raise ContaminationError(f"no dataset named {train!r}")
    out = Path(out)
    if out.suffix not in (".jsonl", ".json"):
        raise ContaminationError("write the clean subset to a .jsonl file")
    cols = "text" if info.kind == "documents" else "prompt, chosen, rejected, score_chosen, score_rejected"
    table = db.arrow(f"SELECT {cols} FROM records WHERE dataset = ? AND row NOT IN (SELECT unnest(?)) ORDER BY row",
                     [train, [int(r) for r in suspects]])
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.register("clean", table)
        con.execute(f"COPY clean TO {sql_literal(str(out))} (FORMAT json)")
    finally:
        con.close()
    return table.num_rows


def describe(result: Result, show: int = 20) -> str:
    """The result in a few lines for the terminal."""
    lines = [f"{len(result.matches):,} rows of {result.train} ({result.train_rows:,}, field {result.field}) share "
             f"{result.n}-grams with {', '.join(result.against)} ({result.eval_rows:,} rows) [{result.seconds:.1f} s]"]
    for m in result.matches[:show]:
        kind = "template-like" if m.template_share >= 0.5 else "distinctive"
        lines.append(f"  row {m.row:>7}  score {m.score:.3f}  {m.eval_dataset}/{m.eval_row}  "
                     f"{m.matched}/{m.eval_ngrams} n-grams, longest run {m.longest_words} words, {kind}")
    if len(result.matches) > show:
        lines.append(f"  ... {len(result.matches) - show:,} more (--json for all)")
    return "\n".join(lines)


def suspects_query(against: list[str], n: int, fld: str, threshold: float) -> str:
    """The check behind a "label the suspects" queue, as the text its deep link carries (``q``).

    >>> suspects_query(["evals"], 8, "prompt", 0.5)
    '{"against":["evals"],"n":8,"field":"prompt","min":0.5}'
    >>> parse_suspects_query(suspects_query(["a", "b"], 13, "chosen", 0.25))
    (['a', 'b'], 13, 'chosen', 0.25)
    """
    return json.dumps({"against": list(against), "n": int(n), "field": fld, "min": round(float(threshold), 4)},
                      separators=(",", ":"))


def parse_suspects_query(text: str) -> tuple[list[str], int, str, float]:
    """(against, n, field, threshold) of a ``suspects_query`` text; a malformed one is one line.

    >>> parse_suspects_query('{"n": 8}')
    Traceback (most recent call last):
    ...
    components.insights.contamination.ContaminationError: a suspects queue names its check as {"against": [...], "n": N, "field": F, "min": S}
    """
    try:
        spec = json.loads(text or "")
        against, n, fld, low = spec["against"], spec["n"], spec["field"], spec["min"]
        if not (isinstance(against, list) and all(isinstance(a, str) for a in against) and isinstance(n, int)
                and isinstance(fld, str) and isinstance(low, (int, float)) and 0 <= low <= 1):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise ContaminationError('a suspects queue names its check as {"against": [...], "n": N, "field": F, '
                                 '"min": S}') from None
    return against, n, fld, float(low)


def suspect_rows(db: Database, train: str, query: str) -> list[int]:
    """Exactly the rows of ``train`` at or above the threshold of the check ``query`` names, best first."""
    against, n, fld, low = parse_suspects_query(query)
    return [m.row for m in find_contamination(db, train, against, n=n, fld=fld, threshold=low, limit=None).matches]
