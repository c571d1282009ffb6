"""Search on real Lucene indexes built from real DuckDB rows: fields, highlighting, Lucene syntax,
filters, stale indexes, several datasets, paging, and the Search view's plain functions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from components import labels, search
from components.ingest import ingest, load_demo
from components.store import Database
from components.views import search as view


def _ingest(db: Database, tmp_path, name: str, rows: list[dict], split: str | None = None) -> None:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ingest(db, str(src), name=name, split=split)


FIELD_ROWS = [
    # "quokka" is in a different part of each row
    {"prompt": "Tell me about garden birds.", "chosen": "Robins and wrens visit feeders.",
     "rejected": "A quokka is not a bird."},
    {"prompt": "Which animal smiles?", "chosen": "The quokka looks like it smiles.", "rejected": "Cats do."},
    {"prompt": "Is a quokka friendly?", "chosen": "They are calm around people.", "rejected": "No idea."},
    {"prompt": "Unrelated question about tea.", "chosen": "Green tea steeps for two minutes.",
     "rejected": "Boil it for an hour."},
]

CONVERSATIONS = [
    {"prompt": [{"role": "user", "content": "My walrus project needs a name."},
                {"role": "assistant", "content": "How about Tusk?"},
                {"role": "user", "content": "Something about a tapir instead, please."}],
     "chosen": [{"role": "assistant", "content": "Try Snout Club."}],
     "rejected": [{"role": "assistant", "content": "Walrus Works."}]},
    {"prompt": [{"role": "user", "content": "What do tapirs eat?"}],
     "chosen": [{"role": "assistant", "content": "Fruit, leaves and aquatic plants."}],
     "rejected": [{"role": "assistant", "content": "Mostly fish."}]},
]


def _filter_rows() -> list[dict]:
    rows = []
    for i in range(12):
        # rows 0-9 say "apple" often (they rank first); row 11 says it once and is the only one with 100+ votes
        rows.append({
            "prompt": f"Question {i} about apple" + (" apple" * (10 - i) if i < 10 else ""),
            "chosen": "A good answer. " + "padding " * (i * 5),
            "rejected": "A bad answer.",
            "score_chosen": float(i),
            "score_rejected": 2.5,
            "votes": 150 if i == 11 else i * 3,
        })
    return rows


@pytest.fixture(scope="module")
def sdb(tmp_path_factory) -> Database:
    """One database for the module: the demo datasets plus small ones, every dataset indexed."""
    tmp = tmp_path_factory.mktemp("search")
    db = Database(tmp / "search.duckdb")
    load_demo(db)
    _ingest(db, tmp, "fields", FIELD_ROWS, split="train")
    _ingest(db, tmp, "convos", CONVERSATIONS, split="test")
    _ingest(db, tmp, "filters", _filter_rows(), split="train")
    _ingest(db, tmp, "html", [
        {"id": "h1", "contents": 'Click <script>alert("x")</script> to keep running & <b>jumping</b>; '
                                 "<running> is tagged too."},
        {"id": "h2", "contents": "The runner runs: a run, two runs, Running late. " + "filler words here. " * 40
                                 + "At the very end she ran home running."},
    ])
    for d in db.datasets():
        search.build_index(db, d.name)
    yield db
    db.close()


def rows_of(res) -> list[int]:
    return [h.row for h in res.hits]


# -- indexing -------------------------------------------------------------------------------------


def test_index_metadata_lives_in_the_database(sdb):
    meta = search.saved_index(sdb, "filters")
    info = sdb.dataset("filters")
    assert meta["documents"] == 12
    assert meta["dataset_version"] == info.version
    assert meta["k1"] == pytest.approx(0.9) and meta["b"] == pytest.approx(0.4)
    assert meta["build_seconds"] > 0 and meta["built_at"] is not None
    assert meta["path"].endswith("filters") and (search.index_root(sdb) / "filters").is_dir()
    assert meta["numeric_fields"]["meta:votes"] == search.metadata_field("votes")
    status = search.index_status(sdb, "filters")
    assert status.ready and status.problem() == ""
    # every demo dataset is indexed with all of its rows that have text
    for s in search.index_statuses(sdb):
        assert s.state == "ready" and s.documents == s.rows


def test_bm25_parameters_are_per_index(sdb, tmp_path):
    db = Database(tmp_path / "bm25.duckdb")
    _ingest(db, tmp_path, "tea", FIELD_ROWS)
    search.build_index(db, "tea")
    default = search.search(db, ["tea"], "quokka").hits
    search.build_index(db, "tea", k1=2.0, b=1.0)
    assert search.saved_index(db, "tea")["k1"] == 2.0 and search.saved_index(db, "tea")["b"] == 1.0
    tuned = search.search(db, ["tea"], "quokka").hits
    assert [h.row for h in tuned] and [h.score for h in tuned] != [h.score for h in default]
    with pytest.raises(search.SearchError, match="b must be between 0 and 1"):
        search.build_index(db, "tea", b=1.5)
    db.close()


def test_java_starts_without_a_placeholder_key_left_in_the_environment():
    """Pyserini's encoders need an OpenAI key at import: only that import sees a placeholder, so an
    OpenAI-compatible backend never takes it for the user's key."""
    script = (
        "import os\n"
        "from components.search.java import import_pyserini, java\n"
        "java()\n"
        "assert 'OPENAI_API_KEY' not in os.environ, 'after java()'\n"
        "module = import_pyserini('pyserini.search.lucene')\n"
        "assert module.LuceneSearcher and 'OPENAI_API_KEY' not in os.environ, 'after the import'\n"
        "print('clean')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          cwd=str(search.index.ROOT))
    assert proc.returncode == 0 and proc.stdout.strip() == "clean", proc.stderr[-2000:]


# -- fields ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,rows", [("rejected", [0]), ("chosen", [1]), ("prompt", [2]), ("contents", [0, 1, 2])])
def test_fielded_search_only_hits_that_field(sdb, field, rows):
    res = search.search(sdb, ["fields"], "quokka", field=field)
    assert sorted(rows_of(res)) == rows and res.total == len(rows)
    if field != "contents":
        assert all(h.part == field for h in res.hits)
        assert all("<mark>quokka</mark>" in h.snippet for h in res.hits)


def test_lucene_field_prefix_only_hits_that_field(sdb):
    assert rows_of(search.search(sdb, ["fields"], "chosen:quokka", mode="lucene")) == [1]
    assert rows_of(search.search(sdb, ["fields"], "prompt:quokka OR rejected:quokka", mode="lucene")) == [0, 2] or \
        sorted(rows_of(search.search(sdb, ["fields"], "prompt:quokka OR rejected:quokka", mode="lucene"))) == [0, 2]
    assert rows_of(search.search(sdb, ["fields"], "quokka -chosen:quokka -prompt:quokka", mode="lucene")) == [0]


def test_final_turns_field(sdb):
    # "walrus" is in an early turn and in the rejected reply; only the reply is a final turn
    assert rows_of(search.search(sdb, ["convos"], "walrus", field="final")) == [0]
    assert search.search(sdb, ["convos"], "walrus", field="final", mode="lucene").hits[0].part == "final"
    # "tapir" is in the last user turn of row 0 and the only user turn of row 1
    assert sorted(rows_of(search.search(sdb, ["convos"], "tapir", field="final"))) == [0, 1]
    # "project" is only in the first turn of row 0: everything finds it, the final turns do not
    assert rows_of(search.search(sdb, ["convos"], "project", field="contents")) == [0]
    assert search.search(sdb, ["convos"], "project", field="final").total == 0


# -- highlighting ---------------------------------------------------------------------------------


def test_highlight_is_stemming_aware(sdb):
    hit = search.search(sdb, ["html"], "running", field="contents").hits
    by_row = {h.row: h for h in hit}
    snippet = by_row[1].snippet
    for word in ("runs", "run", "Running"):
        assert f"<mark>{word}</mark>" in snippet
    # "runner" and "ran" have other stems: Lucene did not match them, so they are not marked
    assert "<mark>runner</mark>" not in snippet and "<mark>ran</mark>" not in snippet


def test_highlight_escapes_html_before_marking(sdb):
    hit = search.search(sdb, ["html"], "running jumping", field="contents").hits
    snippet = {h.row: h for h in hit}[0].snippet
    assert "<script>" not in snippet and "<b>" not in snippet
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in snippet
    assert "&lt;b&gt;<mark>jumping</mark>&lt;/b&gt;" in snippet
    assert "&lt;<mark>running</mark>&gt;" in snippet and "keep <mark>running</mark> &amp;" in snippet


def test_snippet_window_finds_matches_far_into_a_long_text(sdb):
    hit = {h.row: h for h in search.search(sdb, ["html"], "home", field="contents").hits}[1]
    assert hit.snippet.startswith("… ") and "<mark>home</mark>" in hit.snippet
    assert len(hit.plain_snippet()) <= search.SNIPPET_CHARS + 4


def test_lucene_wildcards_phrases_and_boosts_are_marked(sdb):
    res = search.search(sdb, ["demo-field-notes"], 'garden* AND "small space"', mode="lucene")
    assert res.total >= 1
    snippet = res.hits[0].snippet
    assert "<mark>small</mark>" in snippet and "<mark>space</mark>" in snippet
    assert "<mark>gardening</mark>" in snippet.lower() or "<mark>garden</mark>" in snippet.lower()
    boosted = search.search(sdb, ["demo-field-notes"], "running^5 garden", mode="lucene")
    plain = search.search(sdb, ["demo-field-notes"], "running garden", mode="lucene")
    assert boosted.total == plain.total and rows_of(boosted) != rows_of(plain)


@pytest.mark.parametrize("query, marked, row", [
    ("clam~1", "calm", 2),  # a transposition is one edit in Lucene: "clam~1" finds "calm"
    ("quoka~", "quokka", 1),
    ("chosen:/smi[a-z]+/", "smiles", 1),  # the index term is "smile": Lucene matched the stem
    ("chosen:[smile TO smilf]", "smiles", 1),
    ("prompt:friend*", "friendly", 2),
])
def test_marked_words_are_the_words_lucene_matched(sdb, query, marked, row):
    res = search.search(sdb, ["fields"], query, mode="lucene")
    assert row in rows_of(res)
    hit = {h.row: h for h in res.hits}[row]
    assert f"<mark>{marked}</mark>" in hit.snippet
    assert hit.snippet.count("<mark>") == 1  # words the query did not match stay unmarked


def test_prohibited_words_are_not_marked(sdb):
    hits = search.search(sdb, ["fields"], "tea -prompt:green", field="chosen", mode="lucene").hits
    assert [h.row for h in hits] == [3]
    assert "<mark>tea</mark>" in hits[0].snippet and "Green" in hits[0].snippet
    assert "<mark>Green</mark>" not in hits[0].snippet


def test_stems_come_from_the_index_analyzer():
    table = search.stems(["running", "the", "happiness", "o'reilly's"])
    assert table["running"] == ("run",) and table["the"] == () and table["happiness"] == ("happi",)
    assert table["o'reilly's"] == ("o'reilli",)


# -- Lucene syntax errors -------------------------------------------------------------------------

MALFORMED = [
    "egg AND", '"unclosed phrase', "(egg", "egg)", "*egg", "?gg", "egg^", "egg^^2", "AND", "chosen:",
    "[a TO", "OR OR", "prompt:(boil", "/unclosed regex", "nosuchfield:egg", "~",
]


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_lucene_query_gives_a_readable_error_and_the_next_query_works(sdb, bad):
    with pytest.raises(search.QuerySyntaxError) as err:
        search.search(sdb, ["demo-assistant-pairs"], bad, mode="lucene")
    message = str(err.value)
    assert "\n" not in message and 10 < len(message) < 300
    assert message.startswith("Cannot parse") or message.startswith("unknown field")
    assert "Exception" not in message and "Traceback" not in message
    assert search.search(sdb, ["demo-assistant-pairs"], "egg AND yolk", mode="lucene").total >= 1


def test_words_mode_never_raises_on_syntax(sdb):
    for text in MALFORMED:
        res = search.search(sdb, ["demo-assistant-pairs"], text + " egg")
        assert res.total >= 1
    with pytest.raises(search.SearchError, match="no searchable words"):
        search.search(sdb, ["demo-assistant-pairs"], "the and of")


# -- filters --------------------------------------------------------------------------------------


def _expected(predicate) -> list[int]:
    return [i for i, r in enumerate(_filter_rows()) if predicate(r)]


def _length(r) -> int:
    return len("\n\n".join([r["prompt"], r["chosen"], r["rejected"]]))


@pytest.mark.parametrize("ranges,predicate", [
    ({"length": (300, None)}, lambda r: _length(r) >= 300),
    ({"length": (None, 250)}, lambda r: _length(r) <= 250),  # 250 itself is in
    ({"length": (148, 352)}, lambda r: 148 <= _length(r) <= 352),
    ({"score_chosen": (3, 7.5)}, lambda r: 3 <= r["score_chosen"] <= 7.5),
    ({"margin": (0, None)}, lambda r: r["score_chosen"] - r["score_rejected"] >= 0),
    ({"margin": (-1.5, -0.5)}, lambda r: -1.5 <= r["score_chosen"] - r["score_rejected"] <= -0.5),
    ({"meta:votes": (10, 20)}, lambda r: 10 <= r["votes"] <= 20),
    ({"meta:votes": (10, None), "score_chosen": (None, 6)}, lambda r: r["votes"] >= 10 and r["score_chosen"] <= 6),
])
def test_filters_change_totals(sdb, ranges, predicate):
    everything = search.search(sdb, ["filters"], "apple", k=50)
    assert everything.total == 12
    res = search.search(sdb, ["filters"], "apple", k=50, filters=search.Filters(ranges=ranges))
    expected = _expected(predicate)
    assert 0 < len(expected) < 12
    assert res.total == len(expected)
    assert sorted(rows_of(res)) == expected
    # the filtered ranking is the unfiltered one with the other rows taken out
    assert rows_of(res) == [r for r in rows_of(everything) if r in expected]


def test_a_filter_applies_to_the_whole_ranked_list_not_a_cut_top_k(sdb):
    top = search.search(sdb, ["filters"], "apple", k=3)
    assert 11 not in rows_of(top) and top.total == 12
    res = search.search(sdb, ["filters"], "apple", k=3, filters=search.Filters(ranges={"meta:votes": (100, None)}))
    assert res.total == 1 and rows_of(res) == [11] and res.hits[0].rank == 1


def test_split_filter_and_several_datasets(sdb):
    both = search.search(sdb, ["fields", "convos"], "tapir OR quokka", mode="lucene", k=20)
    assert {h.dataset for h in both.hits} == {"fields", "convos"}
    alone = [search.search(sdb, [d], "tapir OR quokka", mode="lucene").total for d in ("fields", "convos")]
    assert both.total == sum(alone)
    train = search.search(sdb, ["fields", "convos"], "tapir OR quokka", mode="lucene",
                          filters=search.Filters(split="train"))
    assert train.datasets == ["fields"] and train.total == alone[0]
    nothing = search.search(sdb, ["fields", "convos"], "quokka", filters=search.Filters(split="validation"))
    assert nothing.total == 0 and nothing.hits == []


def test_bad_filter_values_are_one_line_errors(sdb):
    with pytest.raises(search.SearchError, match="not a number"):
        search.search(sdb, ["filters"], "apple", filters=search.Filters(ranges={"length": ("ten", None)}))
    with pytest.raises(search.SearchError, match="range is empty"):
        search.search(sdb, ["filters"], "apple", filters=search.Filters(ranges={"length": (50, 10)}))
    with pytest.raises(search.SearchError, match="unknown range filter"):
        search.search(sdb, ["filters"], "apple", filters=search.Filters(ranges={"colour": (1, 2)}))


def test_label_status_filter(sdb):
    for row, who, label in [(0, "ann", "chosen"), (1, "ann", "rejected"), (1, "bob", "rejected"),
                            (2, "ann", "rejected"), (2, "bob", "chosen"), (3, "ann", "skip"), (4, "ann", "tie")]:
        labels.add_label(sdb, "filters", row, label, who)
    labels.add_label(sdb, "fields", 1, "rejected", "ann")

    def total(label, datasets=("filters",)):
        return search.search(sdb, list(datasets), "apple OR quokka", mode="lucene", k=50,
                             filters=search.Filters(label=label))

    assert sorted(rows_of(total("labeled"))) == [0, 1, 2, 4]  # a skip is not a judgment
    assert total("unlabeled").total == 8
    assert rows_of(total("flipped")) == [1]  # row 2 is a 1-1 split: no majority
    both = total("flipped", ("filters", "fields"))
    assert sorted((h.dataset, h.row) for h in both.hits) == [("fields", 1), ("filters", 1)]


# -- stale and missing indexes --------------------------------------------------------------------


def test_a_stale_index_is_detected_and_not_served(sdb, tmp_path):
    db = Database(tmp_path / "stale.duckdb")
    _ingest(db, tmp_path, "notes", FIELD_ROWS)
    with pytest.raises(search.IndexNotReady, match="no search index yet"):
        search.search(db, ["notes"], "quokka")
    search.build_index(db, "notes")
    assert search.search(db, ["notes"], "quokka").total == 3
    _ingest(db, tmp_path, "notes", FIELD_ROWS[:2])  # re-ingest: version 2
    status = search.index_status(db, "notes")
    assert status.state == "stale" and status.dataset_version == 1 and status.version == 2
    with pytest.raises(search.IndexNotReady, match="stale: built from version 1, the dataset is now version 2"):
        search.search(db, ["notes"], "quokka")
    assert "stale" in view.indexes_html(db)
    search.build_index(db, "notes")
    assert search.index_status(db, "notes").ready
    assert search.search(db, ["notes"], "quokka").total == 2
    # an index folder that disappeared (or was rebuilt for another database) is not served either
    shutil.rmtree(search.index_root(db) / "notes")
    assert search.index_status(db, "notes").state == "missing"
    with pytest.raises(search.IndexNotReady, match="gone"):
        search.search(db, ["notes"], "quokka")
    db.close()


def test_rebuilding_one_index_of_a_several_dataset_search(tmp_path):
    db = Database(tmp_path / "multi.duckdb")
    _ingest(db, tmp_path, "one", FIELD_ROWS)
    _ingest(db, tmp_path, "two", CONVERSATIONS)
    for name in ("one", "two"):
        search.build_index(db, name)
    assert search.search(db, ["one", "two"], "quokka OR tapir", mode="lucene").total == 5
    _ingest(db, tmp_path, "one", FIELD_ROWS[:1])
    search.build_index(db, "one")  # the old index's readers are closed, the new one is opened
    both = search.search(db, ["one", "two"], "quokka OR tapir", mode="lucene")
    assert both.total == 3 and {h.dataset for h in both.hits} == {"one", "two"}
    assert search.search(db, ["one"], "quokka").total == 1
    db.close()


# -- find_rows: BM25 with a ready index, else a text match ---------------------------------------


def test_find_rows_ranks_with_a_ready_index(sdb):
    found = search.find_rows(sdb, "fields", "quokka smiles", 10)
    assert found.engine == "BM25 index" and found.note is None
    assert found.rows == rows_of(search.search(sdb, ["fields"], "quokka smiles", k=10))
    assert found.rows[0] == 1 and sorted(found.rows) == [0, 1, 2]
    assert search.find_rows(sdb, "fields", "quokka", 2).rows == rows_of(search.search(sdb, ["fields"], "quokka"))[:2]
    # documents without a rejected response are not pairs
    assert sorted(search.find_rows(sdb, "html", "running", 10).rows) == [0, 1]
    assert search.find_rows(sdb, "html", "running", 10, pairs_only=True).rows == []


def test_find_rows_without_an_index_takes_rows_containing_every_word(tmp_path):
    db = Database(tmp_path / "plain.duckdb")
    _ingest(db, tmp_path, "pairs", FIELD_ROWS)
    _ingest(db, tmp_path, "docs", [{"id": "d1", "contents": "A quokka looks like it smiles."},
                                   {"id": "d2", "contents": "Nothing here."}])
    found = search.find_rows(db, "pairs", 'QUOKKA "looks like"', 10)
    assert found == search.Found([1], "text match", "pairs has no search index; took the rows containing every word")
    assert search.find_rows(db, "pairs", "quokka", 10).rows == [0, 1, 2]  # source order
    assert search.find_rows(db, "pairs", "quokka", 2).rows == [0, 1]
    assert search.find_rows(db, "pairs", "quokka walrus", 10).rows == []
    assert search.find_rows(db, "docs", '"looks like" smiles', 10).rows == [0]
    assert search.find_rows(db, "docs", "smiles", 10, pairs_only=True).rows == []
    with pytest.raises(search.SearchError, match="type something"):
        search.find_rows(db, "pairs", '   ', 10)
    with pytest.raises(search.SearchError, match="no dataset named"):
        search.find_rows(db, "nope", "quokka", 10)
    # once indexed, the same call ranks; once stale, it falls back again and says so
    search.build_index(db, "pairs")
    assert search.find_rows(db, "pairs", "quokka", 10).engine == "BM25 index"
    _ingest(db, tmp_path, "pairs", FIELD_ROWS[:2])
    stale = search.find_rows(db, "pairs", "quokka", 10)
    assert stale.engine == "text match" and stale.rows == [0, 1] and "stale" in stale.note
    db.close()


# -- paging ---------------------------------------------------------------------------------------


def test_pages_are_slices_of_one_ranking(sdb):
    datasets = ["filters", "fields"]
    whole = search.search(sdb, datasets, "answer OR apple OR quokka", mode="lucene", k=30)
    assert whole.total > 12
    pages = [search.search(sdb, datasets, "answer OR apple OR quokka", mode="lucene", k=5, offset=o)
             for o in range(0, whole.total, 5)]
    flat = [(h.rank, h.row, h.score) for p in pages for h in p.hits]
    assert flat == [(h.rank, h.row, h.score) for h in whole.hits][:len(flat)]
    assert len(flat) == whole.total
    assert search.search(sdb, datasets, "apple", k=5, offset=whole.total + 10).hits == []


# -- the view's plain functions -------------------------------------------------------------------


def test_view_run_search_shows_hits_with_links(sdb):
    out = view.run_search(sdb, "egg yolk", ["demo-assistant-pairs"], "contents", "words", view.make_filters(), 1)
    assert out["error"] == "" and out["total"] >= 1
    assert "hit" in out["summary"] and " ms" in out["summary"]
    assert 'href="?dataset=demo-assistant-pairs&amp;row=0"' in out["html"] and "<mark>" in out["html"]
    bad = view.run_search(sdb, "egg AND (", ["demo-assistant-pairs"], "contents", "lucene", view.make_filters(), 1)
    assert "⚠️ Cannot parse &#x27;egg AND (&#x27;" in bad["error"] and bad["html"] == ""
    # a page past the end shows the last page
    last = view.run_search(sdb, "apple", ["filters"], "contents", "words", view.make_filters(), 999)
    assert last["page"] == last["pages"] > 1 and last["html"].count('class="sr-hit"') >= 1


def test_view_filters_and_choices(sdb):
    f = view.make_filters("train", "10", "", "meta:votes", " ", "20.5", "any")
    assert f.split == "train" and f.ranges == {"length": ("10", None), "meta:votes": (None, "20.5")}
    assert view.make_filters("any", "", None, "margin", "", "", "any").ranges == {}
    out = view.run_search(sdb, "apple", ["filters"], "contents", "words", f, 1)
    assert out["total"] == len(_expected(lambda r: _length(r) >= 10 and r["votes"] <= 20.5))
    bad = view.run_search(sdb, "apple", ["filters"], "contents", "words", view.make_filters(length_min="ten"), 1)
    assert "not a number" in bad["error"]
    labels = dict((v, k) for k, v in view.number_choices(sdb, ["filters"]))
    assert "meta:votes" in labels and "margin" in labels
    assert "meta:votes" not in dict((v, k) for k, v in view.number_choices(sdb, ["fields"]))
    every, ready = view.searchable_choices(sdb)
    assert set(ready) <= set(every) and "filters" in ready
    assert view.build_index(sdb, None, None, None).startswith("⚠️")


def test_concurrent_searches_give_the_serial_results(demo_db):
    """Many threads searching at once (a served app) get exactly what one thread gets."""
    import threading

    for d in demo_db.datasets():
        search.build_index(demo_db, d.name)
    names = [d.name for d in demo_db.datasets()]
    wide = search.Filters(ranges={"length": (400, None)})
    expected = {None: search.search(demo_db, names, "water").total,
                "length": search.search(demo_db, names, "water", filters=wide).total}
    assert 0 < expected["length"] < expected[None]
    seen, errors = [], []

    def work(i):
        try:
            for j in range(30):
                key = "length" if (i + j) % 2 else None
                got = search.search(demo_db, names, "water", filters=wide if key else None).total
                seen.append(got == expected[key])
        except Exception as err:  # noqa: BLE001 - any failure in a thread is the test's failure
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(seen) == 180 and all(seen)
