"""Preference-data formats: detection and normalization to one conversation model.

Every dataset becomes records of the same shape:

* ``prompt``   -- the messages before the response (a list of ``{"role", "content"}``),
* ``chosen``   -- the preferred response messages (for a conversation: its final turns),
* ``rejected`` -- the other response's messages (pairs only),
* ``text`` / ``source_id`` -- for plain-text documents,
* ``score_chosen`` / ``score_rejected`` -- ratings when the source has them,
* ``metadata`` -- every other source column, as JSON that keeps its type.

A format is detected from the source's columns (and a sample of values) and described as a
``Plan``: column expressions over the source table ``src``, evaluated in bulk by DuckDB. The
functions here are pure -- they take column names and Arrow types and return plans -- so each can
be checked on its own:

>>> import pyarrow as pa
>>> detect({"prompt": pa.string(), "chosen": pa.string(), "rejected": pa.string()}).format
'trl-standard'
>>> split_transcript("\\n\\nHuman: Hi\\n\\nAssistant: Hello!")
[{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pyarrow as pa

from .text import sql_literal

DEFAULT_MAX_CHARS = 200_000
"""Rows whose text is longer than this (in UTF-8 bytes) are rejected as too long."""

MAPPING_KEYS = ("prompt", "chosen", "rejected", "messages", "text", "id", "score_chosen", "score_rejected")
"""Keys accepted by an explicit column mapping (``--map chosen=response_j``)."""

SDSD_FIELDS = {"domain", "subarea", "principle", "goal", "is_violation", "is_truncated"}
SCORE_NAMES = {
    "score_chosen": ("score_chosen", "chosen_score", "chosen_rating", "chosen-rating", "rating_chosen"),
    "score_rejected": ("score_rejected", "rejected_score", "rejected_rating", "rejected-rating", "rating_rejected"),
}
TEXT_NAMES = ("text", "contents", "content", "body", "document")
ID_NAMES = ("id", "docid", "doc_id", "_id")

_TURN = re.compile(r"\n\n(Human|Assistant): ?")


class FormatError(ValueError):
    """The source's columns fit no known format (the message lists them and shows --map)."""


def split_transcript(text: str) -> list[dict]:
    """Split an HH-RLHF transcript into messages (the pure-Python twin of the SQL in ``_hh``).

    >>> split_transcript("\\n\\nHuman: 2+2?\\n\\nAssistant: 4\\n\\nHuman: thanks")[-1]
    {'role': 'user', 'content': 'thanks'}
    """
    parts = _TURN.split(text)
    return [
        {"role": "user" if role == "Human" else "assistant", "content": content}
        for role, content in zip(parts[1::2], parts[2::2])
    ]


def q(name: str) -> str:
    """Quote a column name for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Plan:
    """How to turn the source table ``src`` into records.

    ``stages`` are lists of extra ``expr AS name`` columns computed one CTE after another (later
    stages can use earlier names); the final columns are SQL expressions over the last stage.
    ``checks`` are ``(condition, reason)``: a row for which a condition holds is rejected with that
    reason (the first that holds wins).
    """

    format: str
    kind: str
    prompt: str = "NULL"
    chosen: str = "NULL"
    rejected: str = "NULL"
    text: str = "NULL"
    source_id: str = "NULL"
    score_chosen: str = "NULL"
    score_rejected: str = "NULL"
    stages: list[list[str]] = field(default_factory=list)
    checks: list[tuple[str, str]] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    mapping: dict | None = None
    meta_extra: list[str] = field(default_factory=list)  # ``name := expr`` added to the metadata


# -- small expression builders -------------------------------------------------------------------

MSG_TYPE = "STRUCT(role VARCHAR, content VARCHAR)[]"


def _is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_messages(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        return False
    v = t.value_type
    return pa.types.is_struct(v) and {"role", "content"} <= {f.name for f in v}


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def messages_expr(col: str, t: pa.DataType, role: str) -> str:
    """SQL turning column ``col`` into a message list: a string becomes one ``role`` message."""
    if _is_string(t):
        return f"CASE WHEN {q(col)} IS NULL THEN NULL ELSE [{{'role': '{role}', 'content': {q(col)}}}] END::{MSG_TYPE}"
    if _is_messages(t):
        return (
            f"list_transform({q(col)}, lambda m: {{'role': lower(m.role::VARCHAR), "
            f"'content': m.content::VARCHAR}})::{MSG_TYPE}"
        )
    raise FormatError(f"column {col!r} has type {t}, expected a string or a list of {{role, content}} messages")


def _text_len(expr: str) -> str:
    """Total size of a message list's contents (bytes: constant time per message in DuckDB)."""
    return f"coalesce(list_sum(list_transform({expr}, lambda m: strlen(coalesce(m.content, '')))), 0)"


def _blank(expr: str) -> str:
    """True when every message of ``expr`` is empty or whitespace (stops at the first letter)."""
    return f"NOT list_bool_or(list_transform({expr}, lambda m: regexp_matches(coalesce(m.content, ''), '[^[:space:]]')))"


def empty_side(chosen: str = "chosen", rejected: str = "rejected") -> str:
    """SQL true for a pair with an empty side: ``chosen`` or ``rejected`` holds no message with any
    text in it (no messages at all, or only empty or blank ones). Such a pair is data -- a reply can
    be empty -- so it is loaded and flagged, never rejected; a side that is missing (NULL) is not
    a pair at all. Written once: ingest counts with it, the catalogue reports it."""
    blank = [f"coalesce({_blank(side)}, true)" for side in (chosen, rejected)]
    return f"({chosen} IS NOT NULL AND {rejected} IS NOT NULL AND ({blank[0]} OR {blank[1]}))"


EMPTY_SIDE_SQL = empty_side()
"""The rule over the ``records`` table's own columns."""


def _pair_checks(max_chars: int) -> list[tuple[str, str]]:
    """Checks common to every pair format, on the final prompt/chosen/rejected columns (an empty
    side is not among them: see ``empty_side``)."""
    return [
        ("_chosen IS NULL", "missing chosen"),
        ("_rejected IS NULL", "missing rejected"),
        ("NOT list_contains(list_transform(coalesce(_prompt, []), lambda m: m.role), 'user')", "no user turn"),
        (_blank("_prompt"), "empty prompt"),
        (f"{_text_len('_prompt')} + {_text_len('_chosen')} + {_text_len('_rejected')} > {max_chars}", "too long"),
    ]


def _conversation_checks(max_chars: int) -> list[tuple[str, str]]:
    return [
        ("coalesce(len(_prompt), 0) + coalesce(len(_chosen), 0) = 0", "empty conversation"),
        ("NOT list_contains(list_transform(coalesce(_prompt, []), lambda m: m.role), 'user')", "no user turn"),
        (f"{_text_len('_prompt')} + {_text_len('_chosen')} > {max_chars}", "too long"),
    ]


def _scores(columns: dict[str, pa.DataType], plan: Plan, mapping: dict | None = None) -> None:
    """Fill ``plan.score_*`` from top-level rating columns or fields of a struct column."""
    mapping = mapping or {}
    for key, names in SCORE_NAMES.items():
        if key in mapping:
            setattr(plan, key, f"TRY_CAST({q(mapping[key])} AS DOUBLE)")
            plan.used.add(mapping[key])
            continue
        found = next((n for n in names if n in columns and _is_number(columns[n])), None)
        if found:
            setattr(plan, key, f"{q(found)}::DOUBLE")
            plan.used.add(found)
            continue
        for col, t in columns.items():
            if pa.types.is_struct(t):
                inner = next((n for n in names if t.get_field_index(n) >= 0 and _is_number(t.field(n).type)), None)
                if inner:
                    # kept in metadata too: the struct stays whole there
                    setattr(plan, key, f"{q(col)}.{q(inner)}::DOUBLE")
                    break


# -- the formats ----------------------------------------------------------------------------------


def _hh(columns, max_chars) -> Plan:
    """HH-RLHF: chosen/rejected transcripts; the turns both share are the prompt."""
    def turns(side: str) -> list[str]:
        return [
            f"regexp_extract_all({q(side)}, '\\n\\n(Human|Assistant):', 1) AS _{side}_roles",
            f"string_split_regex({q(side)}, '\\n\\n(?:Human|Assistant): ?') AS _{side}_parts",
        ]

    def msgs(side: str) -> str:
        return (
            f"list_transform(_{side}_roles, lambda r, i: {{'role': CASE r WHEN 'Human' THEN 'user' "
            f"ELSE 'assistant' END, 'content': _{side}_parts[i + 1]}})::{MSG_TYPE} AS _{side}_all"
        )

    lcp = (
        "coalesce(list_position(list_transform(range(1, least(len(_chosen_all), len(_rejected_all)) + 1), "
        "lambda i: _chosen_all[i] = _rejected_all[i]), false) - 1, least(len(_chosen_all), len(_rejected_all))) AS _shared"
    )
    plan = Plan(
        format="hh-rlhf",
        kind="pairs",
        stages=[turns("chosen") + turns("rejected"), [msgs("chosen"), msgs("rejected")], [lcp]],
        prompt="_chosen_all[1:_shared]",
        chosen="CASE WHEN \"chosen\" IS NULL THEN NULL ELSE _chosen_all[_shared + 1:] END",
        rejected="CASE WHEN \"rejected\" IS NULL THEN NULL ELSE _rejected_all[_shared + 1:] END",
        used={"chosen", "rejected"},
    )
    plan.checks = [
        ('"chosen" IS NULL', "missing chosen"),
        ('"rejected" IS NULL', "missing rejected"),
        ("len(_chosen_roles) = 0 OR len(_rejected_roles) = 0", "not a Human/Assistant transcript"),
        ("_chosen_all = _rejected_all", "chosen and rejected identical"),
    ] + _pair_checks(max_chars)
    return plan


def _preference(columns, max_chars, prompt_col, chosen_col, rejected_col, fmt, mapping=None) -> Plan:
    """TRL preference formats: standard (strings) or conversational (message lists)."""
    plan = Plan(format=fmt, kind="pairs", mapping=mapping)
    if prompt_col is not None:
        plan.prompt = messages_expr(prompt_col, columns[prompt_col], "user")
        plan.chosen = messages_expr(chosen_col, columns[chosen_col], "assistant")
        plan.rejected = messages_expr(rejected_col, columns[rejected_col], "assistant")
        plan.used |= {prompt_col, chosen_col, rejected_col}
    else:
        # implicit prompt: the longest common prefix of the two conversations
        c = messages_expr(chosen_col, columns[chosen_col], "assistant")
        r = messages_expr(rejected_col, columns[rejected_col], "assistant")
        plan.stages = [
            [f"{c} AS _chosen_all", f"{r} AS _rejected_all"],
            [
                "coalesce(list_position(list_transform(range(1, least(len(_chosen_all), len(_rejected_all)) + 1), "
                "lambda i: _chosen_all[i] = _rejected_all[i]), false) - 1, "
                "least(len(_chosen_all), len(_rejected_all))) AS _shared"
            ],
        ]
        plan.prompt = "_chosen_all[1:_shared]"
        plan.chosen = "_chosen_all[_shared + 1:]"
        plan.rejected = "_rejected_all[_shared + 1:]"
        plan.used |= {chosen_col, rejected_col}
    plan.checks = _pair_checks(max_chars)
    _scores(columns, plan, mapping)
    return plan


def _split_final(messages: str) -> tuple[list[str], str, str]:
    """Stages and expressions splitting a conversation after its last user turn."""
    stages = [[
        f"{messages} AS _all",
    ], [
        "len(_all) - coalesce(nullif(list_position(list_reverse(list_transform(_all, lambda m: m.role)), 'user'), 0) - 1, len(_all)) AS _last_user",
    ]]
    return stages, "_all[1:_last_user]", "_all[_last_user + 1:]"


def _conversation(columns, max_chars, col, fmt, mapping=None) -> Plan:
    """A dialogue (SDSD or any ``messages`` list): prompt up to the last user turn, then the reply."""
    if not _is_messages(columns[col]):
        raise FormatError(f"column {col!r} has type {columns[col]}, expected a list of {{role, content}} messages")
    stages, prompt, reply = _split_final(messages_expr(col, columns[col], "user"))
    plan = Plan(format=fmt, kind="conversations", stages=stages, prompt=prompt, chosen=reply, used={col}, mapping=mapping)
    plan.checks = [(f"{q(col)} IS NULL", "empty conversation")] + _conversation_checks(max_chars)
    return plan


def _sdsd_revision(columns, max_chars) -> Plan:
    """SDSD revisions: chosen is the revised final turn, rejected the original final turn."""
    if not _is_messages(columns["messages"]) or not _is_string(columns["revision"]):
        raise FormatError("SDSD revisions need 'messages' as a message list and 'revision' as a string")
    all_ = messages_expr("messages", columns["messages"], "user")
    plan = Plan(
        format="sdsd-revisions",
        kind="pairs",
        stages=[[f"{all_} AS _all"]],
        prompt="_all[1:len(_all) - 1]",
        chosen="CASE WHEN \"revision\" IS NULL THEN NULL ELSE [{'role': 'assistant', 'content': \"revision\"}] END::" + MSG_TYPE,
        rejected="_all[-1:]",
        used={"messages", "revision"},
    )
    plan.checks = [
        ('"messages" IS NULL OR len(_all) = 0', "empty conversation"),
        ("_all[-1].role <> 'assistant'", "final turn is not the assistant's"),
    ] + _pair_checks(max_chars)
    return plan


def _documents(columns, max_chars, text_col, id_col, fmt="documents", mapping=None) -> Plan:
    if not _is_string(columns[text_col]):
        raise FormatError(f"column {text_col!r} has type {columns[text_col]}, expected text")
    plan = Plan(format=fmt, kind="documents", text=q(text_col), used={text_col}, mapping=mapping)
    if id_col:
        plan.source_id = f"{q(id_col)}::VARCHAR"
        plan.used.add(id_col)
    plan.checks = [
        (f"{q(text_col)} IS NULL OR trim({q(text_col)}) = ''", "empty text"),
        (f"strlen({q(text_col)}) > {max_chars}", "too long"),
    ]
    return plan


def _hint(columns) -> str:
    cols = ", ".join(f"{c} ({t})" for c, t in columns.items() if not c.startswith("__"))
    return (
        f"columns found: {cols}. Map them explicitly, e.g. "
        "--map prompt=question chosen=response_j rejected=response_k "
        "(keys: " + ", ".join(MAPPING_KEYS) + ")"
    )


def parse_mapping(items: list[str] | dict | None) -> dict | None:
    """Parse ``["prompt=question", "chosen=answer"]`` into a mapping, checking the keys.

    >>> parse_mapping(["prompt=question", "chosen=a", "rejected=b"])
    {'prompt': 'question', 'chosen': 'a', 'rejected': 'b'}
    """
    if not items:
        return None
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            for part in str(item).replace(",", " ").split():
                if "=" not in part:
                    raise FormatError(f"mapping {part!r} is not key=column")
                k, v = part.split("=", 1)
                pairs.append((k.strip(), v.strip()))
    mapping = {}
    for k, v in pairs:
        if k not in MAPPING_KEYS:
            raise FormatError(f"unknown mapping key {k!r}; use one of {', '.join(MAPPING_KEYS)}")
        if not v:
            raise FormatError(f"mapping {k!r} names no column")
        mapping[k] = v
    return mapping


def _mapped(columns, max_chars, mapping) -> Plan:
    missing = [v for v in mapping.values() if v not in columns]
    if missing:
        raise FormatError(f"mapped column(s) {', '.join(map(repr, missing))} not in the source; {_hint(columns)}")
    m = mapping
    if "text" in m:
        return _documents(columns, max_chars, m["text"], m.get("id"), fmt="mapped-documents", mapping=m)
    if "messages" in m:
        return _conversation(columns, max_chars, m["messages"], "mapped-conversations", mapping=m)
    if "chosen" in m and "rejected" in m:
        sides = [columns[m["chosen"]], columns[m["rejected"]]]
        fmt = "mapped-conversational" if any(_is_messages(t) for t in sides) else "mapped-standard"
        plan = _preference(columns, max_chars, m.get("prompt"), m["chosen"], m["rejected"], fmt, mapping=m)
        if m.get("id"):
            plan.source_id = f"{q(m['id'])}::VARCHAR"
            plan.used.add(m["id"])
        return plan
    raise FormatError("a mapping needs chosen= and rejected= (pairs), messages= (conversations) or text= (documents)")


def detect(columns: dict[str, pa.DataType], sample: list[dict] | None = None,
           mapping: dict | None = None, max_chars: int = DEFAULT_MAX_CHARS) -> Plan:
    """Choose the format of a source from its columns (and a few sample rows).

    Raises ``FormatError`` naming the columns found when nothing fits.
    """
    columns = {c: t for c, t in columns.items() if not c.startswith("__")}
    if mapping:
        return _mapped(columns, max_chars, mapping)
    names = set(columns)
    if {"messages", "revision"} <= names:
        return _sdsd_revision(columns, max_chars)
    if "messages" in names and _is_messages(columns["messages"]):
        fmt = "sdsd-dialogues" if len(SDSD_FIELDS & names) >= 3 else "conversations"
        return _conversation(columns, max_chars, "messages", fmt)
    if {"chosen", "rejected"} <= names:
        c, r = columns["chosen"], columns["rejected"]
        if _is_string(c) and _is_string(r):
            if "prompt" in names:
                return _preference(columns, max_chars, "prompt", "chosen", "rejected", "trl-standard")
            texts = [str(row.get("chosen") or "") for row in (sample or [])]
            if any(_TURN.search(t) for t in texts):
                plan = _hh(columns, max_chars)
                _scores(columns, plan)
                return plan
            raise FormatError(
                "chosen/rejected are plain strings with no prompt column and no Human:/Assistant: turns; "
                + _hint(columns)
            )
        if _is_messages(c) and _is_messages(r):
            if "prompt" in names:
                return _preference(columns, max_chars, "prompt", "chosen", "rejected", "trl-conversational")
            return _preference(columns, max_chars, None, "chosen", "rejected", "trl-conversational-implicit")
        if "prompt" in names and (_is_messages(c) or _is_string(c)) and (_is_messages(r) or _is_string(r)):
            return _preference(columns, max_chars, "prompt", "chosen", "rejected", "trl-conversational")
        raise FormatError(f"chosen/rejected have types {c} / {r}, expected strings or message lists; " + _hint(columns))
    text_col = next((n for n in TEXT_NAMES if n in names and _is_string(columns[n])), None)
    if text_col:
        id_col = next((n for n in ID_NAMES if n in names), None)
        return _documents(columns, max_chars, text_col, id_col)
    raise FormatError("unknown format; " + _hint(columns))


def metadata_columns(columns: dict[str, pa.DataType], plan: Plan) -> dict[str, str]:
    """The source columns kept as metadata, with their Arrow types."""
    return {c: str(t) for c, t in columns.items() if c not in plan.used and not c.startswith("__")}


def select_sql(plan: Plan, columns: dict[str, pa.DataType], source: str = "src") -> str:
    """The SELECT that normalizes ``source`` (with ``__row``, optional ``__problem``) to records.

    Its columns: row, prompt, chosen, rejected, text, source_id, score_chosen, score_rejected,
    metadata, problem (NULL when the row is good), raw (the source row as JSON, for rejects; the
    reader's ``__raw`` text where it has one).
    """
    meta = metadata_columns(columns, plan)
    if meta or plan.meta_extra:
        meta_sql = "to_json(struct_pack(" + ", ".join([f"{q(c)} := {q(c)}" for c in meta] + plan.meta_extra) + "))"
    else:
        meta_sql = "NULL::JSON"
    raw_cols = [c for c in columns if not c.startswith("__")]
    raw_sql = "to_json(struct_pack(" + ", ".join(f"{q(c)} := {q(c)}" for c in raw_cols) + "))::VARCHAR" if raw_cols else "NULL"
    if "__raw" in columns:  # the row's own text, kept by the reader for rows it could not read
        raw_sql = f"coalesce(__raw, {raw_sql})"
    ctes = [f"s0 AS (SELECT * FROM {source})"]
    for i, stage in enumerate(plan.stages, start=1):
        ctes.append(f"s{i} AS (SELECT *, {', '.join(stage)} FROM s{i - 1})")
    last = f"s{len(plan.stages)}"
    final = (
        f"f AS (SELECT *, {plan.prompt} AS _prompt, {plan.chosen} AS _chosen, {plan.rejected} AS _rejected "
        f"FROM {last})"
    )
    ctes.append(final)
    cases = " ".join(f"WHEN {cond} THEN {sql_literal(reason)}" for cond, reason in plan.checks)
    problem = f"CASE {cases} ELSE NULL END" if cases else "NULL"
    if "__problem" in columns:
        problem = f"coalesce(__problem, {problem})"
    ctes.append(f"g AS (SELECT *, {problem} AS _problem FROM f)")
    return (
        "WITH " + ", ".join(ctes) + " SELECT __row AS row, "
        f"_prompt::{MSG_TYPE} AS prompt, _chosen::{MSG_TYPE} AS chosen, _rejected::{MSG_TYPE} AS rejected, "
        f"({plan.text})::VARCHAR AS text, ({plan.source_id})::VARCHAR AS source_id, "
        f"({plan.score_chosen})::DOUBLE AS score_chosen, ({plan.score_rejected})::DOUBLE AS score_rejected, "
        f"{meta_sql} AS metadata, _problem AS problem, "
        f"CASE WHEN _problem IS NULL THEN NULL ELSE left({raw_sql}, 20000) END AS raw FROM g"
    )
