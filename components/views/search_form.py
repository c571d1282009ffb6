"""The Search tab's form as one object: its fields by name, the filters they make, and the query
string that holds them (so that Back, a reload and a shared link restore the same search).

>>> form = SearchForm("credit card", ["a", "b"], mode="lucene", ranges={"length_prompt": ("", "500"), "margin": ("1", "")})
>>> form.url(page=2)
'?tab=search&q=credit+card&datasets=a%2Cb&mode=lucene&length_prompt=%3A500&margin=1%3A&p=2'
>>> again, page = SearchForm.from_params({"tab": "search", "q": "credit card", "datasets": "a,b", "mode": "lucene",
...                                       "length_prompt": ":500", "margin": "1:", "p": "2"}, ["a", "b", "c"])
>>> again == form, page
(True, 2)
>>> SearchForm("", ["a"], ranking="hybrid", similar="12").url()
'?tab=search&q=&datasets=a&similar=12&rank=hybrid'
>>> SearchForm.from_params({"tab": "search", "datasets": "a", "similar": "12", "rank": "hybrid"}, ["a"])[0].similar
12
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from .. import search as engine
from .common import as_int

TAB_ID = "search"
LENGTHS = ("length", "length_prompt", "length_chosen", "length_rejected")
"""The length filters, each with its own pair of boxes (total, then each side)."""
SLOTS = 2
"""Other numeric filters (scores, margin, metadata columns) the form holds at once."""
DEFAULT_NUMBERS = ("margin", "score_chosen")
RANKINGS = ("bm25", "semantic", "hybrid")
"""BM25 alone, nearness of meaning (the dataset's embeddings), or the two fused by reciprocal rank."""


def _bound(v) -> str:
    return "" if v is None else str(v).strip()


@dataclasses.dataclass
class SearchForm:
    """What the form holds. ``ranges`` maps a range filter's name to its (from, to) text."""

    query: str = ""
    datasets: list[str] = dataclasses.field(default_factory=list)
    field: str = "contents"
    mode: str = "words"
    split: str = "any"
    label: str = "any"
    ranges: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    ranking: str = "bm25"  # bm25 | semantic | hybrid
    similar: int | None = None  # rows like this row of the first dataset, instead of a query

    def __post_init__(self):
        self.query = self.query or ""
        self.datasets = list(self.datasets or [])
        self.field = self.field if self.field in engine.FIELDS else "contents"
        self.mode = self.mode if self.mode in engine.MODES else "words"
        self.split = self.split or "any"
        self.label = self.label if self.label in engine.LABEL_STATUSES else "any"
        self.ranking = self.ranking if self.ranking in RANKINGS else "bm25"
        self.similar = as_int(self.similar, -1) if self.similar not in (None, "") else None
        if (self.similar is not None and self.similar < 0) or self.query.strip():
            self.similar = None  # a query typed ends a search for rows like a row
        self.ranges = {name: (_bound(lo), _bound(hi)) for name, (lo, hi) in (self.ranges or {}).items()
                       if name and (_bound(lo) or _bound(hi))}

    # -- the form's boxes -------------------------------------------------------------------------

    @classmethod
    def from_inputs(cls, query, datasets, field, mode, split, length_min, length_max, number, number_min, number_max,
                    label, *more) -> "SearchForm":
        """From the form's inputs in their order (``more``: the per-side lengths, then the other
        numeric slots as name, from, to, then the ranking and the row of a similar search)."""
        more = list(more) + [""] * (3 * 2 + 3 * (SLOTS - 1) + 2 - len(more))
        ranking, similar = more[3 * 2 + 3 * (SLOTS - 1):][:2]
        ranges = {"length": (length_min, length_max)}
        for i, name in enumerate(LENGTHS[1:]):
            ranges[name] = (more[2 * i], more[2 * i + 1])
        slots = [(number, number_min, number_max)] + [tuple(more[6 + 3 * i:9 + 3 * i]) for i in range(SLOTS - 1)]
        for name, lo, hi in slots:
            if name and (_bound(lo) or _bound(hi)):
                if name in ranges and (_bound(ranges[name][0]) or _bound(ranges[name][1])):
                    raise engine.SearchError(f"the {name} filter is set twice")
                ranges[name] = (lo, hi)
        return cls(query, datasets, field, mode, split, label, ranges, ranking or "bm25", similar)

    def inputs(self) -> list:
        """The values of the form's inputs, in their order (what ``from_inputs`` takes)."""
        lengths = [self.ranges.get(name, ("", "")) for name in LENGTHS]
        others = [(name, lo, hi) for name, (lo, hi) in self.ranges.items() if name not in LENGTHS][:SLOTS]
        defaults = [n for n in DEFAULT_NUMBERS if n not in [o[0] for o in others]]
        while len(others) < SLOTS:
            others.append((defaults.pop(0) if defaults else None, "", ""))
        values = [self.query, self.datasets, self.field, self.mode, self.split, *lengths[0], *others[0], self.label]
        for lo, hi in lengths[1:]:
            values += [lo, hi]
        for slot in others[1:]:
            values += list(slot)
        return values + [self.ranking, "" if self.similar is None else str(self.similar)]

    def filters(self) -> engine.Filters:
        return engine.Filters(split=None if self.split in ("", "any") else self.split,
                              ranges={name: (lo or None, hi or None) for name, (lo, hi) in self.ranges.items()},
                              label=self.label)

    # -- the query string -------------------------------------------------------------------------

    def url(self, page: int = 1) -> str:
        """The query string of this search at ``page`` (settings left at their defaults are left out)."""
        params = {"tab": TAB_ID, "q": self.query, "datasets": ",".join(self.datasets)}
        if self.similar is not None:
            params["similar"] = self.similar
        for name, value, default in (("field", self.field, "contents"), ("mode", self.mode, "words"),
                                     ("rank", self.ranking, "bm25"), ("split", self.split, "any"),
                                     ("label", self.label, "any")):
            if value != default:
                params[name] = value
        for name, (lo, hi) in self.ranges.items():
            params[name] = f"{lo}:{hi}"
        if page > 1:
            params["p"] = page  # not "page": Gradio reads that one itself (the pages of a multipage app)
        return "?" + urlencode(params)

    @classmethod
    def from_params(cls, params: dict, every: list[str], ready: list[str] | None = None) -> tuple["SearchForm", int]:
        """The form and page a query string holds (datasets not in ``every`` are dropped; none
        named: ``ready``)."""
        chosen = [d for d in (params.get("datasets") or "").split(",") if d in every] or list(ready or [])
        ranges = {}
        for name, value in params.items():
            if (name in engine.BUILTIN_NUMBERS or name.startswith("meta:")) and ":" in str(value):
                lo, _, hi = str(value).partition(":")
                ranges[name] = (lo, hi)
        form = cls(params.get("q") or "", chosen, params.get("field"), params.get("mode"), params.get("split"),
                   params.get("label"), ranges, params.get("rank") or "bm25", params.get("similar"))
        return form, max(1, as_int(params.get("p"), 1))
