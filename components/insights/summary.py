"""A dataset's statistics in a few sentences: the same words on the command line (plain text) and on
the Statistics tab (Markdown, with the dataset's own strings escaped by the page's rule)."""

from __future__ import annotations

from typing import Callable


def _pct(x: float | None) -> str:
    """
    >>> _pct(0.4567), _pct(None)
    ('45.7%', '–')
    """
    return "–" if x is None else f"{x:.1%}"


def describe_stats(s: dict, markdown: bool = False, escape: Callable[[str], str] = str) -> list[str]:
    """The summary of ``dataset_stats``' result, one paragraph per item; with ``markdown``, figures in
    bold and a heading, and ``escape`` applied to the dataset's name and reasons (untrusted text)."""
    b = (lambda x: f"**{x}**") if markdown else (lambda x: x)
    dup, bias, near = s["duplicates"], s["length_bias"], s["duplicates"]["near"]
    title = f"{escape(s['dataset'])} (version {s['version']})"
    lines = [f"### {title}" if markdown else title,
             f"{b(format(s['rows'], ','))} pairs · "
             f"{b(format(s['rejected_rows'], ','))} rows rejected at ingest · "
             f"{b(format(s['flagged_empty_side'], ','))} pairs with an empty side · "
             f"{b(format(dup['identical_sides'], ','))} with chosen identical to rejected"]
    for reason, n in (s["rejected_by_reason"] or {}).items():
        lines.append(f"- rejected {n:,}: {escape(reason)}")
    lines.append(f"\n{b('Length bias:')} the chosen response is longer in {b(_pct(bias['chosen_longer_share']))} of "
                 f"pairs ({bias['chosen_longer']:,} longer, {bias['chosen_shorter']:,} shorter, "
                 f"{bias['same_length']:,} the same).")
    lab = (s.get("labels") or {}).get("length_bias") or {}
    if lab.get("judgments"):
        lines.append(f"Annotators picked the longer response in {b(_pct(lab['longer_picked_share']))} of "
                     f"{lab['judgments']:,} judgments.")
    lines += _reward_model(s.get("reward_model") or {}, b, escape)
    r = s["ratings"]
    if r["scored"]:
        lines.append(f"\n{b('Ratings:')} {r['scored']:,} scored pairs; margin 0 or less in "
                     f"{b(format(r['margin_nonpositive'], ','))}.")
    lines.append(f"\n{b('Duplicates:')} {dup['duplicate_prompts']['groups']:,} prompts occur more than once "
                 f"({dup['duplicate_prompts']['rows']:,} rows); {dup['duplicate_pairs']['groups']:,} pairs occur more "
                 f"than once ({dup['duplicate_pairs']['rows']:,} rows); "
                 + (f"near-duplicate prompts are being looked for (MinHash LSH over every distinct prompt, "
                    f"Jaccard ≥ {near['threshold']})…" if near.get("pending") else
                    f"{near['clusters_found']:,} clusters of near-duplicate prompts ({near['rows_in_clusters']:,} "
                    f"rows; MinHash LSH over all {near['distinct_prompts']:,} distinct prompts, Jaccard ≥ "
                    f"{near['threshold']})."))
    emb = dup.get("by_embedding")
    if emb and emb.get("pending"):
        lines.append(f"Near-duplicate rows by embedding are being looked for (cosine ≥ {emb['threshold']})…")
    elif emb:
        lines.append(f"By embedding: {b(format(emb['clusters_found'], ','))} "
                     f"cluster{'' if emb['clusters_found'] == 1 else 's'} of near-duplicate rows "
                     f"({emb['rows_in_clusters']:,} rows; cosine ≥ {emb['threshold']} between the {escape(emb['field'])} "
                     f"embeddings of {escape(emb['model'])}, over all {emb['vectors']:,} vectors).")
    lines.append(f"\nComputed in {s['timings_s']['total']:.2f} s.")
    return lines


def _reward_model(rm: dict, b: Callable[[str], str], escape: Callable[[str], str]) -> list[str]:
    """The reward model's accuracy, overall and per length-difference bin (one line a bin with pairs)."""
    if not rm.get("model"):
        return []
    d = rm["by_difference"]
    out = [f"\n{b('Reward model')} {escape(rm['model'])}: scores the chosen side higher in "
           f"{b(_pct(rm['accuracy']))} of {rm['pairs']:,} scored pairs"
           + (f"; agrees with the people's majority in {b(_pct(rm['majority_accuracy']))} of "
              f"{rm['judged']:,} judged pairs." if rm["judged"] else ".")
           + (f" Other models: {escape(', '.join(m for m in rm['models'] if m != rm['model']))}."
              if len(rm["models"]) > 1 else ""),
           "By length difference (chosen − rejected, characters):"]
    for i, label in enumerate(d["labels"]):
        if not d["pairs"][i]:
            continue
        line = f"- {label}: {_pct(d['accuracy'][i])} of {d['pairs'][i]:,}"
        if d["judged"][i]:
            line += f" · vs majority {_pct(d['majority_accuracy'][i])} of {d['judged'][i]:,}"
        out.append(line)
    return out
