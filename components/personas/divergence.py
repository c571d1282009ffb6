"""Where personas disagree: per pair, the entropy of the labels the personas gave it, the pairs with
the most divergence first (where pluralism matters); and per persona, how far a human labeling as
that persona agrees with the model role-playing it.

A label counts for a persona when its options name one (``labels.add_label(..., options={"persona":
NAME, "persona_version": V})``; the judge adds ``"simulated": true``). A persona's label of a pair is
the one most of its annotators gave (a tie between its annotators leaves the pair undecided for it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Iterable

from ..schema import judged
from ..store import Database

SOURCES = ("all", "human", "simulated")

# The persona of each current label is in the options of the event that set it: current_labels
# gives (dataset, row, annotator, created_at); the event log gives its options.
_PERSONA_LABELS = f"""
    SELECT c.row, c.annotator, c.label,
           json_extract_string(e.options, '$.persona') AS persona,
           TRY_CAST(json_extract_string(e.options, '$.persona_version') AS INTEGER) AS persona_version,
           coalesce(TRY_CAST(json_extract_string(e.options, '$.simulated') AS BOOLEAN), false) AS simulated
    FROM current_labels c
    JOIN label_events e ON e.dataset = c.dataset AND e.row = c.row AND e.annotator = c.annotator
                       AND e.created_at = c.created_at AND e.label = c.label
    WHERE c.dataset = ? AND {judged("c.label")}
      AND json_extract_string(e.options, '$.persona') IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY c.row, c.annotator ORDER BY e.id DESC) = 1
    ORDER BY c.row, c.annotator
"""


def persona_labels(db: Database, dataset: str, source: str = "all") -> list[dict]:
    """Every current judgment given as a persona in ``dataset``: row, annotator, label, persona,
    persona_version, simulated. ``source``: all, human or simulated labels."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    out = db.dicts(_PERSONA_LABELS, [dataset])
    if source != "all":
        out = [r for r in out if r["simulated"] == (source == "simulated")]
    return out


def plurality(labels: Iterable[str]) -> str | None:
    """The label given most often; None when two or more tie at the top.

    >>> plurality(["chosen", "chosen", "tie"]), plurality(["chosen", "rejected"])
    ('chosen', None)
    """
    counts = Counter(labels).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def persona_table(rows: Iterable[dict]) -> dict[int, dict[str, str]]:
    """{row: {persona: its label}} from ``persona_labels`` rows (a persona's annotators vote)."""
    votes: dict[int, dict[str, list[str]]] = {}
    for r in rows:
        votes.setdefault(r["row"], {}).setdefault(r["persona"], []).append(r["label"])
    table: dict[int, dict[str, str]] = {}
    for row, by_persona in votes.items():
        for persona, labs in by_persona.items():
            top = plurality(labs)
            if top is not None:
                table.setdefault(row, {})[persona] = top
    return table


def label_entropy(labels: Iterable[str]) -> float:
    """The entropy (bits) of a pair's labels: 0 when every persona agrees, 1 for an even split of two
    labels, 2 for four personas giving four different labels (``scipy.stats.entropy``).

    >>> label_entropy(["chosen", "chosen"]), label_entropy(["chosen", "rejected"])
    (0.0, 1.0)
    """
    from scipy.stats import entropy

    counts = list(Counter(labels).values())
    return round(float(entropy(counts, base=2)), 6) if len(counts) > 1 else 0.0


@dataclass
class Divergence:
    row: int
    personas: int  # personas with a label of this pair
    entropy: float  # bits
    labels: dict  # persona -> label
    counts: dict  # label -> personas

    def as_dict(self) -> dict:
        return asdict(self)


def rank_divergence(table: dict[int, dict[str, str]], min_personas: int = 2) -> list[Divergence]:
    """The pairs labeled by at least ``min_personas`` personas, the most divergent first: by entropy,
    then by how many personas labeled the pair, then in source order.

    >>> [d.row for d in rank_divergence({0: {"a": "chosen", "b": "chosen"}, 1: {"a": "chosen", "b": "rejected"}})]
    [1, 0]
    """
    out = []
    for row, by_persona in table.items():
        if len(by_persona) < min_personas:
            continue
        labs = list(by_persona.values())
        out.append(Divergence(row, len(by_persona), label_entropy(labs), dict(sorted(by_persona.items())),
                              dict(Counter(labs).most_common())))
    out.sort(key=lambda d: (-d.entropy, -d.personas, d.row))
    return out


def dataset_divergence(db: Database, dataset: str, source: str = "all", min_personas: int = 2) -> list[Divergence]:
    """``rank_divergence`` over the persona labels of ``dataset`` (``source``: all, human or simulated)."""
    from ..labels import check_pairs

    name = check_pairs(db, dataset).name
    return rank_divergence(persona_table(persona_labels(db, name, source)), min_personas)


@dataclass
class PersonaAgreement:
    persona: str
    humans: list  # annotators who labeled as the persona
    simulated: list  # judges role-playing it
    items: int  # pairs both a human and a simulated label decided
    raw: float | None  # share of those pairs with the same label
    kappa: float | None  # Cohen's kappa (labels.cohen_kappa)

    def as_dict(self) -> dict:
        return asdict(self)


def human_vs_simulated(db: Database, dataset: str) -> list[PersonaAgreement]:
    """For each persona of ``dataset``'s labels: agreement between the humans labeling as that persona
    and the models role-playing it (each side's label of a pair is its annotators' plurality)."""
    from ..labels import check_pairs, cohen_kappa

    name = check_pairs(db, dataset).name
    rows = persona_labels(db, name)
    out = []
    for persona in sorted({r["persona"] for r in rows}):
        mine = [r for r in rows if r["persona"] == persona]
        human = {row: v[persona] for row, v in persona_table(r for r in mine if not r["simulated"]).items()}
        sim = {row: v[persona] for row, v in persona_table(r for r in mine if r["simulated"]).items()}
        both = sorted(human.keys() & sim.keys())
        a, b = [human[r] for r in both], [sim[r] for r in both]
        out.append(PersonaAgreement(
            persona, sorted({r["annotator"] for r in mine if not r["simulated"]}),
            sorted({r["annotator"] for r in mine if r["simulated"]}), len(both),
            (sum(x == y for x, y in zip(a, b)) / len(both)) if both else None,
            cohen_kappa(a, b) if both else None))
    return out
