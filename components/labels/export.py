"""Export: a dataset's pairs with their current preference applied, in TRL's preference format; the
raw label log; and a push of an exported file to the Hugging Face Hub.

With a reward model's stored scores (``components.scores.store.current_scores``) an export can carry
``score_chosen``, ``score_rejected`` and ``margin`` columns, the margin being that of the pair as
written (a flip swaps the scores and negates the margin): TRL's ``RewardTrainer`` reads ``margin``.
A minimum margin keeps only the pairs the model prefers the written chosen side of by that much.

On a graded label schema (a 5- or 7-point scale, aspects) ``with_grades`` writes the strength of the
graded preference instead: ``margin`` is the grade as written (positive: the written chosen side is
better; the mean over the annotators whose labels decided, ``grade_margin``), and one
``aspect_NAME`` column per aspect of the schema holds chosen, rejected or tie as written. An export of
N ranked or rated responses into pairs by a recipe is ``binarized.export_binarized``.

>>> apply_preference({"prompt": [], "chosen": ["A"], "rejected": ["B"]}, "rejected")["chosen"]
['B']
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store import Database
from ..text import first_line
from .gold import gold_labels
from .review import reviewed_labels
from .events import (LabelError, check_annotator, check_pairs, current_labels, graded_labels, label_log,
                     labeled_rows, majority_labels)

STYLES = ("conversational", "standard")
FILE_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
NO_PREFERENCE = ("tie", "both_bad", "skip", "no_majority")
"""Labels that give no direction: left out of an export unless ``keep_ties``."""


@dataclass
class ExportSummary:
    dataset: str
    out: str
    file_format: str
    style: str | None  # conversational | standard; None for the label log
    source: str  # "majority" (reviews, then gold answers, then the majority), "annotator NAME", or "label log"
    rows: int  # rows written
    pairs: int = 0  # pairs in the dataset
    flipped: int = 0
    agreed: int = 0  # labeled "chosen is better"
    unlabeled: int = 0  # written as in the source (no label)
    reviewed: int = 0  # pairs whose label is a reviewer's final label
    gold: int = 0  # pairs whose label is their gold answer
    kept: dict = field(default_factory=dict)  # no-preference labels written (keep_ties)
    left_out: dict = field(default_factory=dict)  # reason -> pairs left out
    score_model: str | None = None  # the model whose scores were written or filtered on

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        if self.style is None:
            return f"{self.dataset}: {self.rows:,} label events written to {self.out}"
        text = (f"{self.dataset}: {self.rows:,} of {self.pairs:,} pairs written to {self.out} "
                f"({self.style} {self.file_format}, labels from {self.source}): {self.agreed:,} agreed, "
                f"{self.flipped:,} flipped, {self.unlabeled:,} unlabeled")
        if self.reviewed or self.gold:
            text += f"; {self.reviewed:,} decided by a reviewer, {self.gold:,} by their gold answer"
        if self.score_model:
            text += f"; scores of {self.score_model}"
        if self.kept:
            text += "; kept " + ", ".join(f"{n:,} {k}" for k, n in self.kept.items())
        if self.left_out:
            text += "; left out " + ", ".join(f"{n:,} {k}" for k, n in self.left_out.items())
        return text


def file_format(out: str | os.PathLike) -> str:
    """The file format an output name asks for.

    >>> file_format("prefs.JSONL"), file_format("prefs.parquet")
    ('jsonl', 'parquet')
    """
    name = str(out).lower()
    for ext, fmt in FILE_FORMATS.items():
        if name.endswith(ext):
            return fmt
    raise LabelError(f"{out}: the output file must end in .jsonl, .json or .parquet")


def preference_labels(db: Database, dataset: str, annotator: str | None = None) -> dict[int, str]:
    """{row: label} to export: one annotator's current labels, or the team's decision.

    The team's decision of a pair, in order of preference: a reviewer's final label (``review``),
    the known answer of a gold pair (``gold``), the majority of the annotators' judgments
    (``events.majority_labels``: skips do not vote; a pair only skipped gets ``skip``, a pair whose
    top judgments tie gets ``no_majority``).
    """
    return {row: label for row, (label, _why) in decisions(db, dataset, annotator).items()}


def decisions(db: Database, dataset: str, annotator: str | None = None) -> dict[int, tuple[str, str]]:
    """{row: (label, where it came from: "review", "gold", "majority" or "annotator")}."""
    if annotator:
        return {row: (lab, "annotator") for row, lab in labeled_rows(db, dataset, check_annotator(annotator)).items()}
    out = {row: ("skip", "majority") for row, _who, _label in current_labels(db, dataset)}
    out |= {row: (top or "no_majority", "majority") for row, top in majority_labels(db, dataset).items()}
    out |= {row: (lab, "gold") for row, lab in gold_labels(db, dataset).items()}
    out |= {row: (lab, "review") for row, lab in reviewed_labels(db, dataset).items()}
    return out


def _text(messages: list[dict] | None) -> str:
    return "\n\n".join((m.get("content") or "") for m in messages or [])


def prompt_text(messages: list[dict] | None) -> str:
    """A prompt as one string: a lone user turn as it is, longer prompts as a Human/Assistant transcript.

    >>> prompt_text([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> prompt_text([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "?"}])
    '\\n\\nHuman: Hi\\n\\nAssistant: Yo\\n\\nHuman: ?\\n\\nAssistant:'
    """
    messages = messages or []
    if len(messages) == 1 and messages[0].get("role") == "user":
        return messages[0].get("content") or ""
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    parts = [f"\n\n{names.get(m.get('role'), str(m.get('role')).title())}: {m.get('content') or ''}" for m in messages]
    return "".join(parts) + "\n\nAssistant:"


def apply_preference(pair: dict, label: str | None) -> dict:
    """The pair with a flip applied (``rejected`` label: chosen and rejected swap)."""
    if label == "rejected":
        return pair | {"chosen": pair["rejected"], "rejected": pair["chosen"]}
    return dict(pair)


def _messages(ms: list[dict] | None) -> list[dict]:
    return [{"role": m.get("role"), "content": m.get("content")} for m in ms or []]


def write_rows(rows: list[dict], out: Path, fmt: str, schema=None) -> None:
    """Write ``rows`` to ``out`` through ``out.part``: the file appears whole or not at all, and a
    path that cannot be written gives one line (no ``.part`` is left behind)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if out.is_dir():
        raise LabelError(f"cannot write {out}: it is a directory")
    tmp = out.with_name(out.name + ".part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, out)
    except OSError as err:
        raise LabelError(f"cannot write {out}: {err.strerror or first_line(err)}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


SCORE_COLUMNS = ("score_chosen", "score_rejected", "margin")


def _schema(style: str, with_scores: bool = False, aspects: list[str] | None = None):
    import pyarrow as pa

    msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    t = msgs if style == "conversational" else pa.string()
    grades = [("margin", pa.float64())] + [(aspect_column(a), pa.string()) for a in aspects] if aspects is not None else []
    return pa.schema([("prompt", t), ("chosen", t), ("rejected", t), ("source_row", pa.int64()),
                      ("human_label", pa.string())] + [(c, pa.float64()) for c in SCORE_COLUMNS if with_scores]
                     + grades)


def aspect_column(aspect: str) -> str:
    """The export column of an aspect's choice.

    >>> aspect_column("Instruction following")
    'aspect_instruction_following'
    """
    return "aspect_" + re.sub(r"\W+", "_", aspect.strip().lower()).strip("_")


def grade_margin(grades: list[int], flipped: bool) -> float | None:
    """The margin of a graded pair as written: the mean grade, negated so that a positive margin says
    the written chosen side is better (grades are stored from the source's side: negative, the
    source's chosen side better; a flip swaps the sides).

    >>> grade_margin([-3], False), grade_margin([2, 3], True), grade_margin([], False)
    (3.0, 2.5, None)
    """
    if not grades:
        return None
    mean = sum(grades) / len(grades)
    return float(mean if flipped else -mean) + 0.0


def written_choice(choices: list[str], flipped: bool) -> str | None:
    """The aspect's choice as written: the one most annotators made (None when two lead), swapped
    with the sides on a flip.

    >>> written_choice(["chosen", "chosen", "tie"], True), written_choice(["chosen", "rejected"], False)
    ('rejected', None)
    """
    top = Counter(choices).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    c = top[0][0]
    return {"chosen": "rejected", "rejected": "chosen"}.get(c, c) if flipped else c


def _grades(db: Database, dataset: str, annotator: str | None) -> dict[int, list[dict]]:
    """{row: the graded current labels (grade, aspects) that decide it}: the annotator's, or everyone's."""
    out: dict[int, list[dict]] = {}
    for g in graded_labels(db, dataset):
        if g["grade"] is not None and (annotator is None or g["annotator"] == annotator):
            out.setdefault(g["row"], []).append(g)
    return out


def _scores(db: Database, dataset: str, model: str | None) -> tuple[str, dict[int, tuple[float, float, float]]]:
    """(model, {row: (score_chosen, score_rejected, margin)}) of ``model``, or of the only model that
    scored ``dataset``'s current version."""
    from ..scores.store import current_scores
    from .queues import pick_models

    model, _ = pick_models(db, dataset, "uncertain", model)
    t = current_scores(db, dataset, model)
    return model, {r: (c, j, m) for r, c, j, m in zip(*(t[k].to_pylist() for k in ("row", *SCORE_COLUMNS)))
                   if m is not None}


def _pairs(db: Database, dataset: str):
    """Every pair of ``dataset`` in source order (row, prompt, chosen, rejected), as Arrow."""
    return db.arrow("SELECT row, prompt, chosen, rejected FROM records "
                          "WHERE dataset = ? AND rejected IS NOT NULL ORDER BY row", [dataset])


def export_pairs(db: Database, dataset: str, out: str | os.PathLike, style: str = "conversational",
                 annotator: str | None = None, labeled_only: bool = False, keep_ties: bool = False,
                 with_scores: bool = False, score_model: str | None = None,
                 min_margin: float | None = None, with_grades: bool = False) -> ExportSummary:
    """Write every pair of ``dataset`` in source order with its current preference, in TRL's format.

    ``style`` "conversational" writes ``prompt``/``chosen``/``rejected`` as message lists, "standard"
    as strings. Labels come from ``annotator``, else the team's decision (``preference_labels``: a
    reviewer's final label, then a gold answer, then the majority). A flip (label
    ``rejected``) swaps chosen and rejected; ties, both-bad, skips and pairs without a majority are
    left out unless ``keep_ties`` (then written as in the source); unlabeled pairs are written as in
    the source unless ``labeled_only``. Two extra columns say where each row came from:
    ``source_row`` and ``human_label``.

    ``with_scores`` adds ``score_chosen``, ``score_rejected`` and ``margin`` from ``score_model``'s
    stored scores (default: the only model that scored the dataset), for the pair as written;
    ``min_margin`` keeps only pairs whose written margin is at least that. Either leaves out the
    pairs the model has not scored.

    ``with_grades`` (a graded label schema) adds ``margin``, the graded strength as written
    (``grade_margin``), and an ``aspect_NAME`` column per aspect of the schema (``written_choice``);
    it leaves out the pairs without a grade (``ungraded``) and does not go with ``with_scores``.
    """
    info = check_pairs(db, dataset)
    if style not in STYLES:
        raise LabelError(f"unknown format {style!r}: use conversational or standard")
    out = Path(out)
    fmt = file_format(out)
    if min_margin is not None and not isinstance(min_margin, (int, float)):
        raise LabelError(f"the minimum margin must be a number, not {min_margin!r}")
    use_scores = with_scores or min_margin is not None
    if with_grades and use_scores:
        raise LabelError("a margin comes from a reward model's scores or from the grades, not both")
    if with_grades:
        from .settings import label_schema

        aspects = label_schema(db, info.name).get("aspects") or []
        grades = _grades(db, info.name, check_annotator(annotator) if annotator else None)
    score_model, scores = _scores(db, info.name, score_model) if use_scores else (None, {})
    decided = decisions(db, info.name, annotator)
    labels = {row: lab for row, (lab, _why) in decided.items()}
    table = _pairs(db, info.name)
    summary = ExportSummary(dataset=info.name, out=str(out), file_format=fmt, style=style,
                            source=f"annotator {check_annotator(annotator)}" if annotator else "majority",
                            rows=0, pairs=table.num_rows, score_model=score_model)
    left_out: Counter = Counter()
    kept: Counter = Counter()
    rows = []
    for rec in table.to_pylist():
        label = labels.get(rec["row"])
        if label is None and labeled_only:
            left_out["unlabeled"] += 1
            continue
        if label in NO_PREFERENCE and not keep_ties:
            left_out[label] += 1
            continue
        score = None
        if use_scores:
            score = scores.get(rec["row"])
            if score is None:
                left_out["unscored"] += 1
                continue
            if label == "rejected":  # the scores follow their responses
                score = (score[1], score[0], -score[2])
            if min_margin is not None and score[2] < min_margin:
                left_out["below_min_margin"] += 1
                continue
        graded = {}
        if with_grades:
            given = grades.get(rec["row"])
            if not given:
                left_out["ungraded"] += 1
                continue
            flip = label == "rejected"
            graded = {"margin": grade_margin([g["grade"] for g in given], flip)}
            graded |= {aspect_column(a): written_choice([g["aspects"][a] for g in given if a in g["aspects"]], flip)
                       for a in aspects}
        if label is None:
            summary.unlabeled += 1
        elif label in NO_PREFERENCE:
            kept[label] += 1
        elif label == "rejected":
            summary.flipped += 1
        else:
            summary.agreed += 1
        if label is not None and decided[rec["row"]][1] in ("review", "gold"):
            if decided[rec["row"]][1] == "review":
                summary.reviewed += 1
            else:
                summary.gold += 1
        pair = apply_preference(
            {"prompt": _messages(rec["prompt"]), "chosen": _messages(rec["chosen"]),
             "rejected": _messages(rec["rejected"])}, label)
        if style == "standard":
            pair = {"prompt": prompt_text(pair["prompt"]), "chosen": _text(pair["chosen"]),
                    "rejected": _text(pair["rejected"])}
        rows.append(pair | {"source_row": rec["row"], "human_label": label}
                    | (dict(zip(SCORE_COLUMNS, score)) if with_scores else {}) | graded)
    write_rows(rows, out, fmt, _schema(style, with_scores, aspects if with_grades else None))
    summary.rows = len(rows)
    summary.left_out = dict(left_out)
    summary.kept = dict(kept)
    return summary


def export_log(db: Database, dataset: str, out: str | os.PathLike) -> ExportSummary:
    """Write ``dataset``'s raw label log (every event, undos included, in the order written)."""
    info = check_pairs(db, dataset)
    out = Path(out)
    fmt = file_format(out)
    log = label_log(db, info.name)
    rows = log.to_pylist()
    if fmt == "jsonl":
        for r in rows:
            r["created_at"] = r["created_at"].isoformat() if r["created_at"] else None
            r["options"] = json.loads(r["options"]) if r["options"] else {}
        write_rows(rows, out, fmt)
    else:
        write_rows(rows, out, fmt, log.schema)
    return ExportSummary(dataset=info.name, out=str(out), file_format=fmt, style=None, source="label log",
                         rows=len(rows))


def hub_token() -> str | None:
    """The Hugging Face token of this process ($HF_TOKEN, or a saved login), if any."""
    from huggingface_hub import get_token

    return os.environ.get("HF_TOKEN") or get_token()


def push_to_hub(path: str | os.PathLike, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Push an exported file to the Hub dataset repo ``repo_id`` with ``datasets``; return its URL."""
    import datasets
    import httpx2  # huggingface_hub's HTTP client: its errors (HfHubHTTPError among them) derive from HTTPError

    token = token or hub_token()
    if not token:
        raise LabelError("no Hugging Face token: set HF_TOKEN (or run `hf auth login`) to push to the Hub")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id or ""):
        raise LabelError(f"{repo_id!r} is not a Hub dataset repo id (owner/name)")
    fmt = file_format(path)
    try:
        ds = (datasets.Dataset.from_parquet(str(path)) if fmt == "parquet"
              else datasets.Dataset.from_json(str(path)))
        ds.push_to_hub(repo_id, token=token, private=private)
    except (httpx2.HTTPError, OSError, ValueError) as err:
        raise LabelError(f"could not push to {repo_id}: {first_line(err)}") from None
    return f"https://huggingface.co/datasets/{repo_id}"
