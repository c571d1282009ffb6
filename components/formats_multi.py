"""N responses to one prompt, the formats beside ``formats``' pairs: UltraFeedback's raw rows
(``instruction`` and ``completions`` with ``response``, ``overall_score`` and per-aspect
``annotations``) and any ``prompt`` with a list of ``responses`` (strings, or structs with a text and
a score; optional ``scores`` beside them). Each row is stored as the pair of its best- and
worst-scored responses, with every response kept in the metadata for ranking (``labels.ranking``).
"""

from __future__ import annotations

import pyarrow as pa

from .formats import DEFAULT_MAX_CHARS, MSG_TYPE, Plan, _is_string, _pair_checks, detect, messages_expr, q


def detect_any(columns: dict[str, pa.DataType], sample: list[dict] | None = None, mapping: dict | None = None,
               max_chars: int = DEFAULT_MAX_CHARS) -> Plan:
    """``formats.detect``, with the N-response formats tried first (a mapping says what it is itself)."""
    multi = None if mapping else multi_columns({c: t for c, t in columns.items() if not c.startswith("__")})
    if multi:
        return responses_plan(columns, max_chars, *multi)
    return detect(columns, sample, mapping=mapping, max_chars=max_chars)

CONTENT_FIELDS = ("response", "content", "text", "completion", "output")
SCORE_FIELDS = ("overall_score", "score", "rating", "reward")
ASPECT_FIELDS = ("annotations", "aspects", "ratings")
MAX_RESPONSES = 9  # ranked from the keyboard with keys 1 to 9


def multi_columns(columns: dict[str, pa.DataType]) -> tuple[str, str, str] | None:
    """``(prompt column, responses column, format)`` of an N-response source, else None."""
    for prompt, many, fmt in (("instruction", "completions", "ultrafeedback-raw"),
                              ("prompt", "responses", "responses"), ("prompt", "completions", "responses")):
        t = columns.get(many)
        if prompt in columns and _is_string(columns[prompt]) and t is not None and (
                pa.types.is_list(t) or pa.types.is_large_list(t)):
            v = t.value_type
            if _is_string(v) or (pa.types.is_struct(v) and any(f.name in CONTENT_FIELDS for f in v)):
                return prompt, many, fmt
    return None


def responses_plan(columns, max_chars, prompt_col, many_col, fmt) -> Plan:
    """N responses to one prompt, stored as the pair of the best- and the worst-scored (the first and
    the second without scores); the metadata keeps every response (``labels.ranking``)."""
    t = columns[many_col].value_type
    col = q(many_col)
    if _is_string(t):
        listed = "scores" in columns and (pa.types.is_list(columns["scores"]) or pa.types.is_large_list(columns["scores"]))
        score = 'TRY_CAST("scores"[i] AS DOUBLE)' if listed else "NULL::DOUBLE"
        items = (f"list_transform(range(1, coalesce(len({col}), 0) + 1), lambda i: {{'content': {col}[i]::VARCHAR, "
                 f"'score': {score}, 'aspects': NULL::JSON}})")
    else:
        fields = {f.name for f in t}
        content = next(f for f in CONTENT_FIELDS if f in fields)
        sf = next((f for f in SCORE_FIELDS if f in fields), None)
        af = next((f for f in ASPECT_FIELDS if f in fields), None)
        score = f"TRY_CAST(x.{q(sf)} AS DOUBLE)" if sf else "NULL::DOUBLE"
        aspects = f"to_json(x.{q(af)})" if af else "NULL::JSON"
        items = (f"list_transform({col}, lambda x: {{'content': x.{q(content)}::VARCHAR, 'score': {score}, "
                 f"'aspects': {aspects}}})")
    plan = Plan(format=fmt, kind="pairs")
    scores = "list_transform(_resp, lambda r: r.score)"
    plan.stages = [
        [f"{items} AS _resp"],
        [f"coalesce(list_position({scores}, list_max({scores})), 1) AS _ci",
         f"coalesce(list_position({scores}, list_min({scores})), 2) AS _ri0"],
        ["CASE WHEN _ri0 = _ci THEN (CASE WHEN _ci = 1 THEN 2 ELSE 1 END) ELSE _ri0 END AS _ri"],
    ]
    plan.prompt = messages_expr(prompt_col, columns[prompt_col], "user")
    plan.chosen = f"[{{'role': 'assistant', 'content': _resp[_ci].content}}]::{MSG_TYPE}"
    plan.rejected = f"[{{'role': 'assistant', 'content': _resp[_ri].content}}]::{MSG_TYPE}"
    plan.score_chosen, plan.score_rejected = "_resp[_ci].score", "_resp[_ri].score"
    plan.used |= {prompt_col, many_col} | ({"scores"} if "scores" in columns else set())
    plan.meta_extra = ["\"responses\" := _resp", "\"chosen_index\" := _ci - 1", "\"rejected_index\" := _ri - 1"]
    plan.checks = [(f"coalesce(len({q(many_col)}), 0) < 2", "fewer than two responses"),
                   (f"len({q(many_col)}) > {MAX_RESPONSES}",
                    f"more than {MAX_RESPONSES} responses (a ranking takes keys 1 to {MAX_RESPONSES})"),
                   ("list_sum(list_transform(_resp, lambda r: strlen(coalesce(r.content, '')))) > "
                    f"{max_chars}", "too long"),
                   *_pair_checks(max_chars)]
    return plan
