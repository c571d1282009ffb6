"""Export of N-response pairs into preference pairs by a recipe: the responses' ratings from the
source, or the annotators' rankings, through ``binarize`` (best-worst, best-random, all-pairs).

Every row written says how it was made: ``recipe`` and ``seed`` (one generator seeded once draws for
the whole export, so the same dataset, recipe and seed give the same file), ``source_row``, which
responses the two sides are (``chosen_index``, ``rejected_index``), ``margin`` (the rating
difference, or for a ranking the difference of the places), and for rankings the ``annotator``. The
responses' per-aspect ratings (UltraFeedback's annotations) are written HelpSteer-style, one number
per aspect and side: ``helpfulness_chosen``, ``helpfulness_rejected``, ... (None where a response has
no number for it).

>>> rated = [{"content": "a", "score": 2.0, "aspects": {"honesty": 4.0}}, {"content": "b", "score": 5.0, "aspects": {}}]
>>> [(p["chosen"], p["rejected"], p["margin"], p["honesty_rejected"]) for p in pairs_of(rated, [2.0, 5.0], "best-worst", random.Random(0), ["honesty"])]
[('b', 'a', 3.0, 4.0)]
"""

from __future__ import annotations

import argparse
import os
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store import Database
from .binarize import RECIPES, BinarizeError, binarize, scores_from_ranking
from .events import LabelError, check_annotator, check_pairs, graded_labels
from .export import STYLES, file_format, prompt_text, write_rows
from .ranking import record_responses

SOURCES = ("ratings", "rankings")


@dataclass
class BinarizedSummary:
    dataset: str
    out: str
    file_format: str
    style: str
    recipe: str
    seed: int
    source: str  # ratings | rankings
    rows: int = 0  # pairs written
    records: int = 0  # N-response records read
    rankings: int = 0  # rankings read (source rankings)
    aspects: list = field(default_factory=list)
    left_out: dict = field(default_factory=dict)  # reason -> records (or rankings) that made no pair

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        what = f"{self.rankings:,} rankings of " if self.source == "rankings" else ""
        text = (f"{self.dataset}: {self.rows:,} pairs from {what}{self.records:,} records written to {self.out} "
                f"({self.style} {self.file_format}; {self.source}, recipe {self.recipe}, seed {self.seed})")
        if self.left_out:
            text += "; no pair from " + ", ".join(f"{n:,} {k}" for k, n in self.left_out.items())
        return text


def aspect_name(aspect: str) -> str:
    """An aspect as a column prefix.

    >>> aspect_name("Instruction following")
    'instruction_following'
    """
    return re.sub(r"\W+", "_", str(aspect).strip().lower()).strip("_") or "aspect"


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def pairs_of(responses: list[dict], scores: list, recipe: str, rng: random.Random, aspects: list[str]) -> list[dict]:
    """The pairs ``recipe`` makes of one record's responses: texts, indexes, margin, aspect ratings."""
    out = []
    for p in binarize(scores, recipe, rng):
        row = {"chosen": responses[p.chosen]["content"], "rejected": responses[p.rejected]["content"],
               "margin": p.margin, "chosen_index": p.chosen, "rejected_index": p.rejected}
        for a in aspects:
            for side, i in (("chosen", p.chosen), ("rejected", p.rejected)):
                value = next((v for k, v in responses[i]["aspects"].items() if aspect_name(k) == a), None)
                row[f"{a}_{side}"] = _number(value)
        out.append(row)
    return out


def _schema(style: str, aspects: list[str], rankings: bool):
    import pyarrow as pa

    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    t = msgs if style == "conversational" else pa.string()
    cols = [("prompt", t), ("chosen", t), ("rejected", t), ("margin", pa.float64()), ("chosen_index", pa.int64()),
            ("rejected_index", pa.int64())]
    cols += [(f"{a}_{side}", pa.float64()) for a in aspects for side in ("chosen", "rejected")]
    cols += [("source_row", pa.int64()), ("recipe", pa.string()), ("seed", pa.int64())]
    return pa.schema(cols + ([("annotator", pa.string())] if rankings else []))


def export_binarized(db: Database, dataset: str, out: str | os.PathLike, recipe: str = "best-worst", seed: int = 0,
                     source: str = "ratings", annotator: str | None = None,
                     style: str = "conversational") -> BinarizedSummary:
    """Write the pairs ``recipe`` makes of every N-response record of ``dataset``, in source order.

    ``source`` "ratings" uses the responses' scores as loaded (UltraFeedback's ``overall_score``);
    "rankings" every current ranking of the annotators (or of ``annotator`` alone), one set of pairs
    per ranking. Ties make no pair; records (or rankings) that make none are counted by reason.
    ``style`` as for ``export.export_pairs``: message lists (conversational) or strings (standard).
    """
    info = check_pairs(db, dataset)
    if recipe not in RECIPES:
        raise LabelError(f"unknown recipe {recipe!r}: use one of {', '.join(RECIPES)}")
    if source not in SOURCES:
        raise LabelError(f"unknown source {source!r}: use ratings or rankings")
    if style not in STYLES:
        raise LabelError(f"unknown format {style!r}: use conversational or standard")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise LabelError(f"the seed must be a whole number, not {seed!r}")
    if annotator is not None and source != "rankings":
        raise LabelError("an annotator's rankings are a source of their own: use source rankings")
    out = Path(out)
    fmt = file_format(out)
    who = check_annotator(annotator) if annotator else None
    records = db.dicts("SELECT row, prompt, metadata::VARCHAR AS metadata FROM records "
                       "WHERE dataset = ? AND rejected IS NOT NULL ORDER BY row", [info.name])
    rankings: dict[int, list[tuple[str, list[int]]]] = {}
    if source == "rankings":
        for g in graded_labels(db, info.name):
            if g["ranking"] is not None and (who is None or g["annotator"] == who):
                rankings.setdefault(g["row"], []).append((g["annotator"], list(g["ranking"])))
    summary = BinarizedSummary(dataset=info.name, out=str(out), file_format=fmt, style=style, recipe=recipe,
                               seed=seed, source=source)
    parsed = [(r, record_responses(r["metadata"])) for r in records]
    aspects: list[str] = []
    for _r, responses in parsed:
        for resp in responses or []:
            for k, v in resp["aspects"].items():
                if _number(v) is not None and aspect_name(k) not in aspects:
                    aspects.append(aspect_name(k))
    rng = random.Random(seed)
    left_out: Counter = Counter()
    rows = []
    for rec, responses in parsed:
        if responses is None:
            left_out["pairs of two responses"] += 1
            continue
        summary.records += 1
        if source == "ratings":
            runs = [(None, [_number(r["score"]) for r in responses])]
        else:
            runs = []
            for name, ranking in rankings.get(rec["row"], []):
                try:
                    runs.append((name, scores_from_ranking(ranking, len(responses))))
                except BinarizeError:
                    left_out["rankings that do not fit the record"] += 1
            if not runs:
                left_out["unranked"] += 1
        summary.rankings += len(runs) if source == "rankings" else 0
        prompt = [{"role": m.get("role"), "content": m.get("content")} for m in rec["prompt"] or []]
        for name, scores in runs:
            if sum(s is not None for s in scores) < 2:
                left_out["fewer than two rated responses"] += 1
                continue
            made = pairs_of(responses, scores, recipe, rng, aspects)
            if not made:
                left_out["all tied"] += 1
            for p in made:
                if style == "conversational":
                    p |= {"prompt": prompt, "chosen": [{"role": "assistant", "content": p["chosen"]}],
                          "rejected": [{"role": "assistant", "content": p["rejected"]}]}
                else:
                    p["prompt"] = prompt_text(prompt)
                p |= {"source_row": rec["row"], "recipe": recipe, "seed": seed}
                rows.append(p | ({"annotator": name} if source == "rankings" else {}))
    schema = _schema(style, aspects, source == "rankings")
    write_rows([{c: r.get(c) for c in schema.names} for r in rows], out, fmt, schema)
    summary.rows, summary.aspects, summary.left_out = len(rows), aspects, dict(left_out)
    return summary


def add_binarize_arguments(parser: argparse.ArgumentParser) -> None:
    """``export``'s options for N-response datasets (``binarize_options`` reads them back)."""
    parser.add_argument("--binarize", metavar="RECIPE", choices=RECIPES,
                        help="N-response pairs into pairs by a recipe: best-worst, best-random or all-pairs "
                             "(margin: the rating or place difference; aspect ratings as NAME_chosen/NAME_rejected)")
    parser.add_argument("--from", dest="binarize_from", choices=SOURCES, default="ratings",
                        help="with --binarize: the responses' ratings as loaded (default) or the annotators' rankings")
    parser.add_argument("--seed", type=int, default=0, help="with --binarize: the seed of best-random's draws (default 0)")


def binarize_options(args: argparse.Namespace) -> dict | None:
    """The keyword arguments of ``export_binarized`` that ``args`` asks for, or None without --binarize."""
    if not getattr(args, "binarize", None):
        return None
    return {"recipe": args.binarize, "seed": args.seed, "source": args.binarize_from,
            "annotator": getattr(args, "annotator", None), "style": getattr(args, "format", "conversational")}
