"""Search on real Lucene indexes built from real DuckDB rows: fields, highlighting, Lucene syntax,
filters, stale indexes, several datasets, paging, and the Search view's plain functions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import labels, search
from components.ingest import ingest, load_demo
from components.store import Database
from components.search.java import LOCK
from components.views import search as view
from helpers import run_cli
from components.views.search_form import SearchForm
from components import catalogue


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


PHRASE_ROWS = [
    # "credit card" as a phrase in rows 0 and 2 only; "sorry" in a chosen reply only in row 2
    {"prompt": "I lost my credit card yesterday.", "chosen": "Call your bank to block it.",
     "rejected": "Sorry, I have no idea."},
    {"prompt": "Which card game gives credit for tricks?", "chosen": "Bridge, in a way.", "rejected": "Poker."},
    {"prompt": "Show me a card trick.", "chosen": "I am sorry, I cannot do magic.",
     "rejected": "Sure: the credit card trick."},
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
    _ingest(db, tmp, "phrases", PHRASE_ROWS)
    _ingest(db, tmp, "rated", [
        {"prompt": "Say it twice.", "chosen": "Padding, padding.", "rejected": "No.", "score_chosen": 7.0,
         "score_rejected": 2.5},
        {"prompt": "Any padding?", "chosen": "Yes.", "rejected": "None.", "score_chosen": 3.0, "score_rejected": 4.0},
    ])
    _ingest(db, tmp, "html", [
        {"id": "h1", "contents": 'Click <script>alert("x")</script> to keep running & <b>jumping</b>; '
                                 "<running> is tagged too."},
        {"id": "h2", "contents": "The runner runs: a run, two runs, Running late. " + "filler words here. " * 40
                                 + "At the very end she ran home running."},
    ])
    for d in catalogue.datasets(db):
        search.build_index(db, d.name)
    yield db
    db.close()


def rows_of(res) -> list[int]:
    return [h.row for h in res.hits]


# -- indexing -------------------------------------------------------------------------------------


def test_index_metadata_lives_in_the_database(sdb):
    meta = search.saved_index(sdb, "filters")
    info = catalogue.dataset(sdb, "filters")
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
    final = search.search(sdb, ["convos"], "walrus", field="final", mode="lucene").hits[0]
    assert (final.part, final.speaker, final.turn) == ("rejected", "assistant", 1)
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


def test_plain_words_honour_quotes_and_field_prefixes(sdb):
    def rows(query, mode="words"):
        return sorted(rows_of(search.search(sdb, ["phrases"], query, mode=mode)))

    assert rows("credit card") == [0, 1, 2]
    assert rows('"credit card"') == rows('"credit card"', "lucene") == [0, 2]
    assert rows("chosen:sorry") == rows("chosen:sorry", "lucene") == [2]
    assert rows("sorry") == [0, 2]
    assert rows('prompt:"credit card"') == [0]
    assert rows('chosen:sorry "credit card"') == [0, 2]
    # an unknown prefix stays part of its word (one token for the analyzer), and the results say so
    unknown = search.search(sdb, ["phrases"], "colour:card trick")
    assert sorted(rows_of(unknown)) == [1, 2] and unknown.ignored == ["colour:card"]
    hit = search.search(sdb, ["phrases"], "chosen:sorry").hits[0]
    assert (hit.part, hit.speaker) == ("chosen", "assistant") and "<mark>sorry</mark>" in hit.snippet
    # other operators are searched as words, and the results say so
    res = search.search(sdb, ["phrases"], "credit AND -trick")
    assert res.ignored == ["AND", "-trick"] and sorted(rows_of(res)) == [0, 1, 2]
    assert search.search(sdb, ["phrases"], '"credit card"').ignored == []
    out = view.run_search(sdb, SearchForm("card AND trick*", ["phrases"]))
    assert "`AND`, `trick*` as words; Lucene syntax reads them as operators" in out["summary"]


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
    ({"length_chosen": (None, 60)}, lambda r: len(r["chosen"]) <= 60),
    ({"length_prompt": (40, None)}, lambda r: len(r["prompt"]) >= 40),
    ({"length_chosen": (100, None), "margin": (None, 5)}, lambda r: len(r["chosen"]) >= 100 and r["score_chosen"] - 2.5 <= 5),
    ({"length_prompt": (None, 40), "length_chosen": (50, None), "meta:votes": (None, 25)},
     lambda r: len(r["prompt"]) <= 40 and len(r["chosen"]) >= 50 and r["votes"] <= 25),
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


def test_the_form_makes_per_side_lengths_and_two_numeric_filters_at_once(sdb):
    # query, datasets, field, mode, split, length from/to, slot 1, label, prompt/chosen/rejected lengths, slot 2
    form = SearchForm.from_inputs("apple", ["filters"], "contents", "words", "any", "", "", "margin", "", "5", "any",
                                  "", "", "100", "", "", "", "meta:votes", "", "25")
    assert form.ranges == {"length_chosen": ("100", ""), "margin": ("", "5"), "meta:votes": ("", "25")}
    out = view.run_search(sdb, form)
    expected = _expected(lambda r: len(r["chosen"]) >= 100 and r["score_chosen"] - 2.5 <= 5 and r["votes"] <= 25)
    assert 0 < len(expected) < 12 and out["total"] == len(expected)
    assert sorted(h.row for h in out["hits"]) == expected
    # the same search from its query string, and back into the form's boxes
    again, page = SearchForm.from_params(dict(__import__("urllib.parse").parse.parse_qsl(form.url(2)[1:])),
                                         ["filters", "fields"])
    assert again == form and page == 2 and SearchForm.from_inputs(*again.inputs()) == form
    with pytest.raises(search.SearchError, match="set twice"):
        SearchForm.from_inputs("apple", ["filters"], "contents", "words", "any", "", "", "margin", "1", "", "any",
                               "", "", "", "", "", "", "margin", "", "3")


def test_hit_cards_say_where_the_snippet_is_from_and_show_ratings_and_labels(sdb):
    labels.add_label(sdb, "rated", 0, "chosen", "cara")
    labels.add_label(sdb, "rated", 0, "chosen", "dev")
    labels.add_label(sdb, "rated", 0, "rejected", "eve")
    labels.add_label(sdb, "rated", 0, "skip", "fay")  # a skip is no judgment
    res = search.search(sdb, ["rated"], "padding")
    hit, other = res.hits
    assert (hit.row, hit.part, hit.speaker, hit.turn) == (0, "chosen", "assistant", 1)
    assert (hit.score_chosen, hit.score_rejected, hit.margin) == (7.0, 2.5, 4.5)
    assert hit.labels == {"chosen": 2, "rejected": 1}
    assert hit.link == "?tab=compare&dataset=rated&row=0&q=padding"
    card = view.hit_html(hit)
    assert '<span class="sr-part side-chosen">chosen · assistant, turn 1</span>' in card
    assert '<span class="sr-ratings">chosen 7 · rejected 2.5 · margin +4.5</span>' in card
    assert '<span class="sr-label">labeled: chosen 2, rejected 1</span>' in card
    assert f'<span class="sr-score" title="BM25 relevance score">BM25 {hit.score:.4f}</span>' in card
    assert 'href="?tab=compare&amp;dataset=rated&amp;row=0&amp;q=padding"' in card
    assert (other.row, other.part, other.speaker, other.margin, other.labels) == (1, "prompt", "user", -1.0, {})
    assert '<span class="sr-label">unlabeled</span>' in view.hit_html(other)
    # a prompt's later turns say which speaker and turn
    turn = search.search(sdb, ["convos"], "tusk", field="prompt").hits[0]
    assert (turn.part, turn.speaker, turn.turn) == ("prompt", "assistant", 2)
    # a document has no side
    doc = search.search(sdb, ["html"], "runner").hits[0]
    assert (doc.part, doc.speaker, doc.turn) == ("", "", None) and "sr-part" not in view.hit_html(doc)


def test_a_dataset_without_an_index_says_so_and_background_indexing_shows_progress(tmp_path):
    db = Database(tmp_path / "bg.duckdb")
    _ingest(db, tmp_path, "old", FIELD_ROWS)
    _ingest(db, tmp_path, "new", CONVERSATIONS)
    _ingest(db, tmp_path, "newer", PHRASE_ROWS)
    search.build_index(db, "old")
    with pytest.raises(search.IndexNotReady, match="new has no search index yet; build it with"):
        search.search(db, ["new"], "tapir")
    # several datasets: the ready ones are searched, the others named
    out = view.run_search(db, SearchForm("quokka OR tapir", ["old", "new"], mode="lucene"))
    assert out["total"] == 3 and "not searched: new has no search index yet" in out["summary"]
    assert "0 hits" not in out["summary"]

    running, seen = __import__("threading").Event(), []

    def watch(job):
        seen.append((job.dataset, job.state, job.fraction))
        if job.state == "running":
            running.set()

    with LOCK:  # the worker starts the first build and waits for Java: the states can be read as they are
        jobs = search.index_in_background(db, ["new", "newer"], on_progress=watch)
        assert [j.state for j in jobs] == ["queued", "queued"]
        assert running.wait(60)
        with pytest.raises(search.IndexNotReady, match=r"new has no search index yet: indexing it now \(0%\)"):
            search.search(db, ["new"], "tapir")
        with pytest.raises(search.IndexNotReady, match="newer has no search index yet: it is waiting to be indexed"):
            search.search(db, ["newer"], "card")
        panel = view.indexes_html(db)
        assert panel.count("<progress") == 2 and "waiting to be indexed" in panel and view.pending(db)
    assert search.wait_for_background(120)
    assert [(j.dataset, j.state) for j in search.background_status(db)] == [("newer", "done"), ("new", "done")]
    assert search.search(db, ["new"], "tapir").total == 2 and search.search(db, ["newer"], '"credit card"').total == 2
    fractions = [f for d, state, f in seen if d == "new"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1] == ("newer", "done", 1.0)
    assert not view.pending(db) and "<progress" not in view.indexes_html(db)
    # a build that fails says why, and the worker goes on to the next
    search.index_in_background(db, ["gone", "old"])
    assert search.wait_for_background(120)
    assert search.job_of(db, "gone").describe() == "gone: indexing failed: no dataset named 'gone'"
    assert search.job_of(db, "old").state == "done"
    db.close()


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
    out = view.run_search(sdb, SearchForm("egg yolk", ["demo-assistant-pairs"]))
    assert out["error"] == "" and out["total"] >= 1
    assert "hit" in out["summary"] and " ms" in out["summary"]
    assert 'href="?tab=compare&amp;dataset=demo-assistant-pairs&amp;row=0&amp;q=egg+yolk"' in out["html"]
    assert "<mark>" in out["html"] and out["url"] == "?tab=search&q=egg+yolk&datasets=demo-assistant-pairs"
    bad = view.run_search(sdb, SearchForm("egg AND (", ["demo-assistant-pairs"], mode="lucene"))
    assert "⚠️ Cannot parse &#x27;egg AND (&#x27;" in bad["error"] and bad["html"] == ""
    # a page past the end shows the last page, and the query string says which
    last = view.run_search(sdb, SearchForm("apple", ["filters"]), 999)
    assert last["page"] == last["pages"] > 1 and last["html"].count('class="sr-hit"') >= 1
    assert last["url"].endswith(f"&p={last['pages']}")


def test_view_filters_and_choices(sdb):
    form = SearchForm.from_inputs("apple", ["filters"], "contents", "words", "train", "10", "", "meta:votes", " ",
                                  "20.5", "any")
    f = form.filters()
    assert f.split == "train" and f.ranges == {"length": ("10", None), "meta:votes": (None, "20.5")}
    assert SearchForm.from_inputs("a", [], "contents", "words", "any", "", None, "margin", "", "", "any").ranges == {}
    out = view.run_search(sdb, form)
    assert out["total"] == len(_expected(lambda r: _length(r) >= 10 and r["votes"] <= 20.5))
    bad = view.run_search(sdb, SearchForm("apple", ["filters"], ranges={"length": ("ten", "")}))
    assert "not a number" in bad["error"]
    labels_of = dict((v, k) for k, v in view.number_choices(sdb, ["filters"]))
    assert "meta:votes" in labels_of and "margin" in labels_of and "length" not in labels_of
    assert "meta:votes" not in dict((v, k) for k, v in view.number_choices(sdb, ["fields"]))
    every, ready = view.searchable_choices(sdb)
    assert set(ready) <= set(every) and "filters" in ready
    assert view.queue_index(sdb, None, None, None).startswith("⚠️")
    assert "between 0 and 1" in view.queue_index(sdb, "filters", 0.9, 2)


def test_concurrent_searches_give_the_serial_results(demo_db):
    """Many threads searching at once (a served app) get exactly what one thread gets."""
    import threading

    for d in catalogue.datasets(demo_db):
        search.build_index(demo_db, d.name)
    names = [d.name for d in catalogue.datasets(demo_db)]
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


def test_threads_that_searched_leave_the_jvm_when_they_end(demo_db):
    """A served app's worker threads come and go; each that searched is detached from the JVM when
    it ends, so none stays in Java's thread list (pyjnius attaches them and never detaches)."""
    import threading

    from components.search.java import java

    name = catalogue.datasets(demo_db)[0].name
    search.build_index(demo_db, name)
    search.search(demo_db, [name], "water")
    threads_mx = java().autoclass("java.lang.management.ManagementFactory").getThreadMXBean()
    before = threads_mx.getThreadCount()
    for _ in range(3):
        batch = [threading.Thread(target=search.search, args=(demo_db, [name], "water")) for _ in range(10)]
        for t in batch:
            t.start()
        for t in batch:
            t.join()
    # 30 threads searched and ended; without detaching, Java would count 30 more
    assert threads_mx.getThreadCount() - before < 5


def test_a_search_puts_the_jvms_signal_handlers_back(demo_db):
    """Compiled Java code faults on purpose and counts on the JVM's SIGSEGV handler; a library that
    resets SIGSEGV after Java started (faulthandler.disable, say) would make the next such fault end the
    process. Every call into Java puts the JVM's handler back first."""
    import signal

    from components.search.java import _sigaction

    name = catalogue.datasets(demo_db)[0].name
    search.build_index(demo_db, name)
    search.search(demo_db, [name], "water")
    jvm = _sigaction(signal.SIGSEGV)[:8]
    assert jvm != bytes(8)  # Java's own, not the default
    signal.signal(signal.SIGSEGV, signal.SIG_DFL)
    assert _sigaction(signal.SIGSEGV)[:8] != jvm
    assert search.search(demo_db, [name], "water").total > 0
    assert _sigaction(signal.SIGSEGV)[:8] == jvm


def test_a_renamed_or_deleted_dataset_takes_its_index_folder_with_it(demo_db):
    name = "demo-trl-standard"
    built = search.build_index(demo_db, name)
    old_folder = Path(built.path)
    assert old_folder.is_dir()
    labels.rename_dataset(demo_db, name, "renamed-pairs")
    assert not old_folder.exists()
    assert search.wait_for_background(timeout=120)
    moved = search.index_status(demo_db, "renamed-pairs")
    assert moved.ready and Path(moved.path).name == "renamed-pairs"
    assert search.search(demo_db, ["renamed-pairs"], "herbs", k=3).total > 0
    labels.delete_dataset(demo_db, "renamed-pairs")
    assert not Path(moved.path).exists() and search.index_status(demo_db, "renamed-pairs") is None


def test_pairs_with_an_empty_side_are_a_filter(tmp_path):
    db = Database(tmp_path / "e.duckdb")
    try:
        rows = [{"prompt": f"question about kettles {i}", "chosen": "" if i in (1, 4) else f"kettle answer {i}",
                 "rejected": f"other kettle reply {i}"} for i in range(6)]
        _ingest(db, tmp_path, "kettles", rows)
        search.build_index(db, "kettles")
        got = search.search(db, ["kettles"], "kettle", k=10, filters=search.Filters(label="empty_side"))
        assert got.total == 2 and sorted(h.row for h in got.hits) == [1, 4]
    finally:
        db.close()
    cli = run_cli("search", "kettles", "kettle", "--label", "empty_side", "--json", "--db", str(db.path))
    assert cli.returncode == 0, cli.stderr
    assert sorted(json.loads(line)["row"] for line in cli.stdout.splitlines()) == [1, 4]


def test_documents_are_read_ahead_and_leaving_early_closes_the_reader():
    from components.search.feed import ahead as _ahead

    closed = []

    def batches():
        try:
            for i in range(100):
                yield [f"doc {i}"]
        finally:
            closed.append(True)

    ahead = _ahead(batches())
    assert [next(ahead), next(ahead)] == [["doc 0"], ["doc 1"]]
    ahead.close()  # the build stopped (an error, Ctrl-C): the reader stops and its cursor closes
    assert closed == [True]

    def failing():
        yield ["doc 0"]
        raise ValueError("the database went away")

    with pytest.raises(ValueError, match="went away"):
        list(_ahead(failing()))
    assert [b for b in _ahead(batches())] == [[f"doc {i}"] for i in range(100)]


def test_a_bound_beyond_any_number_is_one_line(sdb):
    from components.semantic.filters import passing_rows

    for bound in ("1e309", "-1e309", "5e12"):
        with pytest.raises(search.SearchError) as err:
            search.search(sdb, ["filters"], "apple", filters=search.Filters(ranges={"length": (bound, None)}))
        assert str(err.value).startswith(f"the length bound {bound} is out of range"), err.value
    with pytest.raises(search.SearchError, match="out of range"):  # the semantic filters read the same bounds
        passing_rows(sdb, "filters", search.Filters(ranges={"length": (None, "1e309")}))
