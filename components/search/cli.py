"""``app.py index NAME`` and ``app.py search NAME QUERY``: build indexes, search (BM25, a TREC run from
topics; semantic and hybrid through ``semantic.cli``)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..text import fail
from .. import catalogue


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The search commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("index", parents=[common], help="build the search index (BM25, Lucene) of datasets")
    s.add_argument("names", nargs="*", metavar="NAME", help="dataset name(s)")
    s.add_argument("--all", action="store_true", help="index every dataset")
    s.add_argument("--k1", type=float, default=0.9, help="BM25 k1 of the index (default 0.9)")
    s.add_argument("--b", type=float, default=0.4, help="BM25 b of the index (default 0.4)")
    s.add_argument("--json", action="store_true", help="print one JSON list")
    s.set_defaults(run=index_command)

    s = sub.add_parser("search", parents=[common], help="search datasets (BM25); batch mode writes a TREC run")
    s.add_argument("name", help="dataset name, or several joined by commas")
    s.add_argument("query", nargs="?", help="what to search for")
    s.add_argument("--field", choices=["contents", "prompt", "chosen", "rejected", "final"], default="contents",
                   help="field to search (default contents: everything)")
    s.add_argument("--lucene", action="store_true",
                   help='Lucene query syntax: "phrases", AND OR -, field:, wildcards*, ^boosts')
    s.add_argument("--k", type=int, help="hits to return (default 10; 1000 with --topics)")
    s.add_argument("--offset", type=int, default=0, help="skip this many hits (paging)")
    s.add_argument("--split", help="only datasets of this split")
    s.add_argument("--filter", action="append", metavar="NAME=MIN:MAX",
                   help="range filter on length, length_prompt, length_chosen, length_rejected, score_chosen, "
                        "score_rejected, margin or meta:COLUMN; repeatable")
    s.add_argument("--label", choices=["any", "unlabeled", "labeled", "flipped", "empty_side"], default="any",
                   help="label status filter, or empty_side: the pairs with an empty response")
    s.add_argument("--topics", metavar="FILE", help="batch mode: one 'qid<TAB>query' per line")
    s.add_argument("--output", metavar="RUN", help="batch mode: the TREC run file to write")
    s.add_argument("--tag", default="studio-bm25", help="run tag in the TREC run (batch mode)")
    s.add_argument("--json", action="store_true", help="print one JSON object per hit")
    s.add_argument("--mode", choices=["bm25", "semantic", "hybrid"], default="bm25",
                   help="bm25 (default), semantic (nearest by embedding) or hybrid (reciprocal rank fusion of both)")
    s.add_argument("--model", help="semantic and hybrid: the embedding model (default: the dataset's newest vectors)")
    s.set_defaults(run=search_command)


def index_command(db, args) -> int:
    from .. import search

    names = [d.name for d in catalogue.datasets(db)] if args.all else args.names
    if not names:
        return fail("name a dataset to index, or pass --all")

    def progress(frac, desc):
        if not args.json and sys.stderr.isatty():
            print(f"[{frac:4.0%}] {desc}", file=sys.stderr)

    out = []
    try:
        for name in names:
            summary = search.build_index(db, name, k1=args.k1, b=args.b, progress=progress)
            out.append(summary)
            if not args.json:
                print(summary.describe())
    except search.SearchError as err:
        return fail(err)
    if args.json:
        print(json.dumps([s.as_dict() for s in out]))
    return 0


def search_command(db, args) -> int:
    from .. import search

    datasets = [n for n in args.name.split(",") if n]
    try:
        filters = _search_filters(args)
        if args.topics:
            if args.mode != "bm25":
                return fail("--topics runs BM25 only: leave out --mode")
            if args.query is not None:
                return fail("give either a QUERY or --topics FILE, not both")
            if not args.output:
                return fail("--topics needs --output RUN (the TREC run file to write)")
            topics = search.read_topics(args.topics)
            results = search.batch_search(db, datasets, topics, k=args.k or 1000, field=args.field,
                                          mode="lucene" if args.lucene else "words", filters=filters)
            lines = search.write_run(results, args.output, tag=args.tag)
            print(f"wrote {lines:,} lines for {len(topics)} topics to {args.output}", file=sys.stderr)
            return 0
        if args.query is None:
            return fail("give a QUERY to search for (or --topics FILE --output RUN)")
        if args.mode != "bm25":
            from ..semantic.cli import semantic_results

            res = semantic_results(db, args, datasets, filters)
        else:
            res = search.search(db, datasets, args.query, field=args.field, mode="lucene" if args.lucene else "words",
                                k=args.k or 10, offset=args.offset, filters=filters)
    except search.SearchError as err:
        return fail(err)
    try:
        _print_hits(res, args.json)
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _search_filters(args):
    from .. import search

    ranges = {}
    for spec in args.filter or []:
        name, eq, bounds = spec.partition("=")
        low, colon, high = bounds.partition(":")
        if not eq or not colon or not name:
            raise search.SearchError(f"--filter {spec!r}: use NAME=MIN:MAX (either side may be empty), "
                                     "e.g. length=100:2000 or meta:rank=:10")
        ranges[name] = (low or None, high or None)
    return search.Filters(split=args.split, ranges=ranges, label=args.label)


def _print_hits(res, as_json: bool) -> None:
    several = len(res.datasets) > 1
    if as_json:
        for h in res.hits:
            print(json.dumps({"rank": h.rank, "docid": f"{h.dataset}/{h.row}" if several else str(h.row),
                              "dataset": h.dataset, "row": h.row, "score": round(h.score, 6),
                              "source_id": h.source_id, "part": h.part, "speaker": h.speaker, "turn": h.turn,
                              "score_chosen": h.score_chosen, "score_rejected": h.score_rejected,
                              "margin": h.margin, "labels": h.labels, "snippet": h.plain_snippet(),
                              "snippet_html": h.snippet, "link": h.link}))
        return
    print(f"{res.total:,} hits in {', '.join(res.datasets) or 'no dataset'} ({res.seconds * 1000:.1f} ms)"
          + (f"; showing {res.offset + 1}-{res.offset + len(res.hits)}" if res.hits else ""))
    width = max([len(f"{h.dataset}/{h.row}" if several else str(h.row)) for h in res.hits] or [5])
    for h in res.hits:
        docid = f"{h.dataset}/{h.row}" if several else str(h.row)
        snippet = " ".join(h.plain_snippet().split())
        where = f"{h.part} ({h.speaker}): " if h.part and h.speaker else f"{h.part}: " if h.part else ""
        print(f"{h.rank:>5}  {docid:<{width}}  {h.score:8.4f}  {where}{snippet}")
