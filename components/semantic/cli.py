"""The command line of semantic search: ``app.py embed``, ``app.py similar`` and the semantic and
hybrid modes of ``app.py search``. Nothing heavy is imported at module level (app.py builds its
parser from these functions on every start)."""

from __future__ import annotations

import argparse
import json
import sys

SEARCH_MODES = ("bm25", "semantic", "hybrid")


def add_embed_arguments(s: argparse.ArgumentParser) -> None:
    from ..jobs.cli import add_job_arguments

    s.add_argument("name", help="dataset name")
    s.add_argument("--model", required=True, metavar="PATH_OR_HUB_ID",
                   help="a sentence-transformers model, or a plain transformers encoder (mean-pooled)")
    s.add_argument("--field", choices=["prompt", "chosen", "rejected", "text"],
                   help="what to embed (default: a document's text, else the prompt)")
    add_job_arguments(s, batch_default=32)


def embed_command(db, args) -> int:
    from ..jobs.cli import run_job_command
    from .embed import embed_step
    from .errors import SemanticError

    try:
        step = embed_step(db, args.name, args.model, args.field, args.batch_size)
    except SemanticError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rc, result = run_job_command(db, step, args, noun="rows", what=f"embed {step.field} with {args.model}")
    if result is not None:
        print(json.dumps(result.as_dict() | step.identity()) if args.json else result.describe())
        if result.status == "failed":
            return 1
    return rc


def add_similar_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("name", help="dataset name")
    s.add_argument("row", type=int, help="the row to find rows like")
    s.add_argument("--k", type=int, default=10, help="how many rows (default 10)")
    s.add_argument("--model", help="the embedding model (default: the newest vectors of the dataset)")
    s.add_argument("--engine", choices=["auto", "embeddings", "mlt"], default="auto",
                   help="embeddings, Lucene's MoreLikeThis on the BM25 index, or auto (embeddings when there are any)")
    s.add_argument("--json", action="store_true", help="print one JSON object per row")


def similar_command(db, args) -> int:
    from .errors import SemanticError
    from .similar import similar

    try:
        found = similar(db, args.name, args.row, k=args.k, model=args.model, engine=args.engine)
    except SemanticError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a SearchError from the BM25 side (no index yet), told in one line
        from ..search.errors import SearchError

        if not isinstance(err, SearchError):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.json:
        for n in found.neighbours:
            print(json.dumps({"rank": n.rank, "dataset": n.dataset, "row": n.row, "score": round(n.score, 6),
                              "engine": found.engine, "link": n.link}))
        return 0
    how = f"by embedding ({found.model})" if found.engine == "embeddings" else \
        f"by Lucene MoreLikeThis on {found.model}" + (f" ({found.note})" if found.note else "")
    print(f"{len(found.neighbours)} rows like row {found.row} of {found.dataset}, {how}")
    for n in found.neighbours:
        print(f"{n.rank:>5}  {n.row:<8} {n.score:8.4f}")
    return 0


def semantic_results(db, args, datasets, filters):
    """The results of ``app.py search --mode semantic|hybrid``."""
    from .search import hybrid_search, semantic_search

    if args.topics:
        from .errors import SemanticError

        raise SemanticError("--topics runs BM25 only: leave out --mode")
    if args.mode == "semantic":
        return semantic_search(db, datasets, args.query, k=args.k or 10, offset=args.offset, filters=filters,
                               model=args.model)
    return hybrid_search(db, datasets, args.query, k=args.k or 10, offset=args.offset, filters=filters,
                         model=args.model, mode="lucene" if args.lucene else "words", bm25_field=args.field)


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``embed`` and ``similar`` commands' parsers; each runs as ``run(db, args)``."""
    s = sub.add_parser("embed", parents=[common], help="embed a dataset's rows for semantic search (a job; --ray)")
    add_embed_arguments(s)
    s.set_defaults(run=embed_command)
    s = sub.add_parser("similar", parents=[common], help="the rows most like a row, with their similarity")
    add_similar_arguments(s)
    s.set_defaults(run=similar_command)
