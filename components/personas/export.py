"""Export per persona: TRL's preference format with the persona's system message first in the prompt.

A pair belongs to a persona in two ways: it was revised for that persona (its record's metadata names
it, and its prompt already starts with the persona's system message), or it was labeled as that
persona (by a person or a judge; the persona's label decides its direction, as the majority does in
``labels.export``). One pair labeled by several personas gives one row per persona: the same prompt
under different system messages, with different preferred answers.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..store import Database
from .divergence import persona_labels, persona_table
from .library import PersonaError, persona, version_of

STYLES = ("conversational", "standard")


@dataclass
class PersonaExport:
    dataset: str
    out: str
    style: str
    rows: int = 0
    personas: dict = field(default_factory=dict)  # persona -> rows written
    flipped: int = 0
    left_out: dict = field(default_factory=dict)  # reason -> rows

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        each = ", ".join(f"{n:,} {p}" for p, n in sorted(self.personas.items())) or "none"
        text = (f"{self.dataset}: {self.rows:,} persona pairs written to {self.out} ({self.style}; {each}); "
                f"{self.flipped:,} flipped by the persona's label")
        if self.left_out:
            text += "; left out " + ", ".join(f"{n:,} {k}" for k, n in sorted(self.left_out.items()))
        return text


def _messages(ms) -> list[dict]:
    return [{"role": m.get("role"), "content": m.get("content")} for m in ms or []]


def persona_pairs(db: Database, dataset: str, name: str | None = None) -> tuple[list[dict], Counter]:
    """The pairs of ``dataset`` for persona ``name`` (every persona when None), in source order, each
    with ``prompt`` starting with the persona's system message; and a count of what was left out."""
    from ..labels import check_pairs
    from ..revise import with_system

    info = check_pairs(db, dataset)
    if name is not None and persona(db, name) is None and not db.scalar(
            "SELECT count(*) FROM persona_history WHERE name = ?", [name]):
        raise PersonaError(f"no persona {name!r}; list them with: python app.py personas list")
    table = persona_table(persona_labels(db, info.name))
    versions: dict[tuple[int, str], int] = {}
    for r in persona_labels(db, info.name):
        key = (r["row"], r["persona"])
        versions[key] = max(versions.get(key, 0), r["persona_version"] or 0)
    records = db.dicts(
        """SELECT row, prompt, chosen, rejected, json_extract_string(metadata, '$.persona') AS persona,
                  TRY_CAST(json_extract_string(metadata, '$.persona_version') AS INTEGER) AS persona_version
           FROM records WHERE dataset = ? AND rejected IS NOT NULL ORDER BY row""", [info.name])
    cache: dict[tuple[str, int], str] = {}

    def system(p: str, version: int) -> str | None:
        if (p, version) not in cache:
            found = (version_of(db, p, version) if version else None) or persona(db, p)
            cache[(p, version)] = found.system_message if found else None
        return cache[(p, version)]

    out, left = [], Counter()
    for rec in records:
        labeled = table.get(rec["row"], {})
        names = set(labeled) | ({rec["persona"]} if rec["persona"] else set())
        if not names:
            left["no persona"] += 1
            continue
        if name is not None and name not in names:
            left["other personas only"] += 1
            continue
        if name is not None:
            names = {name}
        for p in sorted(names):
            label = labeled.get(p)
            if label in ("tie", "both_bad"):
                left[label] += 1
                continue
            if p == rec["persona"]:
                prompt = _messages(rec["prompt"])  # revised for it: the system message is already first
                version = rec["persona_version"]
            else:
                version = versions.get((rec["row"], p)) or 0
                text = system(p, version)
                if text is None:
                    left["persona deleted"] += 1
                    continue
                prompt = with_system(_messages(rec["prompt"]), text)[0]
                version = version or persona(db, p).version
            chosen, rejected = _messages(rec["chosen"]), _messages(rec["rejected"])
            if label == "rejected":
                chosen, rejected = rejected, chosen
            out.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "persona": p,
                        "persona_version": version, "source_row": rec["row"], "persona_label": label})
    return out, left


def export_persona_pairs(db: Database, dataset: str, out: str | os.PathLike, name: str | None = None,
                         style: str = "conversational") -> PersonaExport:
    """Write the pairs of persona ``name`` (every persona when None) of ``dataset`` to ``out`` (.jsonl or
    .parquet) in TRL's preference format; extra columns ``persona``, ``persona_version``,
    ``source_row`` and ``persona_label`` say where each row came from."""
    from ..labels import file_format, prompt_text

    if style not in STYLES:
        raise PersonaError(f"unknown format {style!r}: use conversational or standard")
    out = Path(out)
    try:
        fmt = file_format(out)
    except ValueError as err:
        raise PersonaError(str(err)) from None
    rows, left = persona_pairs(db, dataset, name)
    summary = PersonaExport(dataset=dataset, out=str(out), style=style, left_out=dict(left))
    for r in rows:
        summary.personas[r["persona"]] = summary.personas.get(r["persona"], 0) + 1
        summary.flipped += r["persona_label"] == "rejected"
        if style == "standard":
            r |= {"prompt": prompt_text(r["prompt"]), "chosen": "\n\n".join(m["content"] or "" for m in r["chosen"]),
                  "rejected": "\n\n".join(m["content"] or "" for m in r["rejected"])}
    summary.rows = len(rows)
    _write(rows, out, fmt, style)
    return summary


def _write(rows: list[dict], out: Path, fmt: str, style: str) -> None:
    """Write as the labels' export does (through ``out.part``), with this export's parquet schema."""
    import pyarrow as pa

    from ..labels import LabelError
    from ..labels.export import write_rows

    schema = None
    if fmt == "parquet":
        msgs = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        t = msgs if style == "conversational" else pa.string()
        schema = pa.schema([("prompt", t), ("chosen", t), ("rejected", t), ("persona", pa.string()),
                            ("persona_version", pa.int64()), ("source_row", pa.int64()),
                            ("persona_label", pa.string())])
    try:
        write_rows(rows, out, fmt, schema)
    except LabelError as err:
        raise PersonaError(str(err)) from None
