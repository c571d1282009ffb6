"""Principle-guided revision with a real (tiny, random-weight) transformers model made here."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT, run_cli

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from components import access, revise as rv  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.store import Database  # noqa: E402
from components.views import revise as view  # noqa: E402
from components.views import revise_batch as batch_view  # noqa: E402
from components.views import revise_form as form  # noqa: E402
from components import catalogue

DIALOGUES = "demo-sdsd-dialogues"
PAIRS = "demo-assistant-pairs"


@pytest.fixture
def backend(tiny_model) -> rv.LocalBackend:
    return rv.local_backend(tiny_model, "cpu")


def fast_settings(**kw) -> rv.Settings:
    return rv.Settings(**({"max_new_tokens": 12, "temperature": 0.8, "top_p": 0.95, "seed": 1} | kw))


# -- principles ---------------------------------------------------------------------------------


def test_library_has_twenty_principles_in_groups_and_a_pink_elephant():
    items = rv.load_library()
    groups = {p["group"] for p in items}
    assert len([p for p in items if not p.get("template")]) >= 20
    assert {"harmlessness", "honesty", "helpfulness", "privacy", "style"} <= groups
    pink = next(p for p in items if p["id"] == "pink-elephant")
    assert pink["template"] and pink["params"] == ["avoid", "steer"]
    assert any(p.get("default") for p in items)


def test_principles_seeded_once_then_edited_with_history(db):
    ps = rv.principles(db)
    assert len(ps) >= 21
    before = rv.principle_row(db, "concise")
    assert before["version"] == 1 and before["origin"] == "library"
    edited = rv.save_principle(db, {"id": "concise", "group": "style", "title": "Short",
                                    "text": "Say it in as few words as the answer allows."}, author="ana")
    assert edited.version == 2 and edited.title == "Short"
    rv.save_principle(db, {"id": "no-emoji", "group": "style", "title": "No emoji", "text": "Do not use emoji."},
                      author="ben")
    assert rv.delete_principle(db, "no-emoji", author="ben")
    assert not rv.delete_principle(db, "no-emoji")
    hist = rv.principle_history(db, "concise")
    assert [(h["version"], h["action"], h["author"]) for h in hist] == [(2, "edit", "ana"), (1, "library", None)]
    assert [h["action"] for h in rv.principle_history(db, "no-emoji")] == ["delete", "create"]
    assert "no-emoji" not in {p.id for p in rv.principles(db)}
    # seeding the library again (a new process) keeps the user's edit
    assert rv.seed_principles(db, rv.load_library()) == 0
    assert rv.principle_row(db, "concise")["title"] == "Short"


def test_bad_principles_are_refused_in_one_line(db):
    for bad, words in [
        ({"id": "Bad Id", "title": "t", "text": "x"}, "id"),
        ({"id": "ok", "title": "", "text": "x"}, "title is empty"),
        ({"id": "ok", "title": "t", "text": "Avoid {x}", "params": ["y"]}, "do not match"),
    ]:
        with pytest.raises(rv.RevisionError, match=words):
            rv.save_principle(db, bad)


def test_resolve_principles_fills_the_pink_elephant(db):
    ps = rv.resolve_principles(db, "no-fabrication,pink-elephant:avoid=the stock market:steer=savings habits")
    assert [p.id for p in ps] == ["no-fabrication", "pink-elephant"]
    assert "the stock market" in ps[1].text and "savings habits" in ps[1].text and "{" not in ps[1].text
    assert ps[1].as_dict()["values"] == {"avoid": "the stock market", "steer": "savings habits"}
    with pytest.raises(rv.RevisionError, match="fill in steer"):
        rv.resolve_principles(db, "pink-elephant:avoid=x")
    with pytest.raises(rv.RevisionError, match="no principle 'honest'"):
        rv.resolve_principles(db, "honest")
    defaults = rv.resolve_principles(db, None)
    assert defaults and all(p.default for p in defaults)


# -- prompts, context policy, critique parsing -----------------------------------------------------


def test_prompts_carry_the_principles_and_the_final_turn(demo_db):
    src = rv.conversation(demo_db, DIALOGUES, 0)
    assert src.final["role"] == "assistant" and src.prompt[-1]["role"] == "user"
    ps = rv.resolve_principles(demo_db, "safe-high-stakes-advice")
    crit = rv.critique_messages(src.prompt, src.final, ps)
    assert "[safe-high-stakes-advice]" in crit[1]["content"] and src.final["content"] in crit[1]["content"]
    assert "Violations:" in crit[1]["content"]
    rev = rv.revision_messages(src.prompt, src.final, ps, "Violations: safe-high-stakes-advice")
    assert "Violations: safe-high-stakes-advice" in rev[1]["content"]
    rejected = rv.conversation(demo_db, PAIRS, 0, "rejected")
    record = catalogue.record(demo_db, PAIRS, 0)
    assert rejected.final["content"] == record["rejected"][-1]["content"]
    with pytest.raises(rv.RevisionError, match="documents"):
        rv.conversation(demo_db, "demo-field-notes", 0)
    with pytest.raises(rv.RevisionError, match="row 999"):
        rv.conversation(demo_db, DIALOGUES, 999)


def test_context_policy_drops_oldest_turns_and_says_so(demo_db, backend):
    src = rv.conversation(demo_db, DIALOGUES, 0)
    ps = rv.resolve_principles(demo_db, "no-sycophancy")
    full = backend.count(rv.revision_messages(src.prompt, src.final, ps, ""))
    kept, notes = rv.fit_context(src.prompt, src.final, ps, backend.count, full + 2 * 64 - 30, 64)
    assert 0 < len(kept) < len(src.prompt) and kept == src.prompt[-len(kept):]
    assert "dropped the" in notes[0] and "oldest" in notes[0]
    assert kept[0]["role"] != "system" or len(kept) == len(src.prompt)
    with pytest.raises(rv.RevisionError, match="context too long"):
        rv.fit_context(src.prompt, src.final, ps, backend.count, 200, 64)
    assert rv.fit_context(src.prompt, src.final, ps, backend.count, None, 64) == (src.prompt, [])


def test_critique_parsing_never_crashes_and_keeps_the_raw_text():
    ids = ["no-fabrication", "concise", "no-sycophancy"]
    c = rv.parse_critique("Violations: concise, no-fabrication\nCritique: it pads.", ids)
    assert c.parsed and c.violations == ["concise", "no-fabrication"] and not c.none
    c = rv.parse_critique("violations - None.\nCritique: fine", ids)
    assert c.parsed and c.none and c.violations == []
    c = rv.parse_critique("The reply flatters the user (no-sycophancy) but otherwise is fine", ids)
    assert not c.parsed and c.violations == ["no-sycophancy"]
    rng = random.Random(7)
    alphabet = "Violations:,-\n {}[]()\x00\ufffd" + "".join(ids)
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        c = rv.parse_critique(text, ids)
        assert c.raw == text and set(c.violations) <= set(ids)
    for weird in (None, 42, b"bytes"):
        assert rv.parse_critique(weird, ids).parsed is False


def test_settings_are_checked():
    for bad in ({"max_new_tokens": 0}, {"temperature": -1}, {"top_p": 0}, {"max_new_tokens": "x"}):
        with pytest.raises(rv.RevisionError):
            rv.Settings(**bad).checked()


# -- the local backend: streaming, stop, batching -------------------------------------------------


def test_local_backend_streams_token_by_token(backend):
    assert backend.device == "cpu" and backend.dtype == "float32"
    assert rv.local_backend(backend.model, "cpu") is backend  # loaded once, kept
    messages = [{"role": "user", "content": "Tell me about the weather."}]
    s = backend.stream(messages, fast_settings(max_new_tokens=24))
    pieces = list(s)
    assert len(pieces) >= 10  # text arrives per token, not in one block at the end
    assert s.result.tokens == 24 and s.result.finish == "length"
    assert s.result.text == "".join(pieces) and s.result.ttft_s is not None
    again = backend.stream(messages, fast_settings(max_new_tokens=24))
    assert "".join(again) == s.result.text  # same seed, same text


def test_stop_cancels_the_generation_early(backend):
    stop = threading.Event()
    s = backend.stream([{"role": "user", "content": "Go on for a long time."}],
                       fast_settings(max_new_tokens=2000), stop)
    got = 0
    for _ in s:
        got += 1
        if got == 5:
            stop.set()
    assert s.result.finish == "stopped"
    assert s.result.tokens < 2000 and s.result.tokens <= 5 + 3


def test_batch_generation_pads_left_and_matches_single_greedy(backend):
    long = [{"role": "user", "content": "A much longer question " * 20}]
    short = [{"role": "user", "content": "Hi"}]
    greedy = fast_settings(temperature=0, max_new_tokens=8)
    batch = backend.generate_batch([long, short], greedy)
    singles = [backend.stream(m, greedy) for m in (long, short)]
    for s in singles:
        list(s)
    assert [g.tokens for g in batch] == [8, 8]
    assert batch[0].prompt_tokens > batch[1].prompt_tokens
    assert [g.text for g in batch] == [s.result.text for s in singles]


def test_revise_stream_critique_then_revision(demo_db, backend):
    src = rv.conversation(demo_db, DIALOGUES, 0)
    ps = rv.resolve_principles(demo_db, "safe-high-stakes-advice,no-sycophancy")
    updates = list(rv.revise_stream(src, ps, backend, fast_settings()))
    phases = [u.phase for u in updates]
    assert phases[0] == "critique" and "revision" in phases and phases[-1] == "done"
    assert phases.index("revision") > max(i for i, p in enumerate(phases) if p == "critique")
    crit_texts = [u.critique for u in updates if u.phase == "critique" and u.critique]
    assert len(set(crit_texts)) >= 5  # the critique grows chunk by chunk
    r = updates[-1].result
    assert r["critique"] == updates[-1].critique and r["revision"] == updates[-1].revision.strip()
    assert r["tokens"]["critique"] == 12 and r["tokens"]["revision"] == 12
    assert r["model"] == backend.model and r["device"] == "cpu" and r["dtype"] == "float32"
    assert r["backend"] == "local" and r["seed"] == 1 and r["latency_s"] > 0
    assert [p["id"] for p in r["principles"]] == ["safe-high-stakes-advice", "no-sycophancy"]


def test_stop_during_revise_stream_keeps_what_was_written(demo_db, backend):
    src = rv.conversation(demo_db, DIALOGUES, 1)
    ps = rv.resolve_principles(demo_db, "concise")
    stop = threading.Event()
    last = None
    for last in rv.revise_stream(src, ps, backend, fast_settings(max_new_tokens=3000), stop):
        if len(last.critique) > 20:
            stop.set()
    assert last.phase == "stopped" and last.critique
    r = last.result
    assert 0 < r["tokens"]["critique"] < 3000 and r["tokens"]["revision"] == 0
    assert r["critique"] == last.critique and r["status"] == "failed"
    assert r["error"] == "stopped before the revision"
    assert any("stopped by the user during the critique" in n for n in r["notes"])


# -- accepting ------------------------------------------------------------------------------------


def test_accept_stores_a_pair_with_provenance(demo_db, backend):
    r = rv.revise_one(demo_db, DIALOGUES, 2, "chosen", "no-fabrication,concise", backend, fast_settings())
    src = rv.conversation(demo_db, DIALOGUES, 2)
    into, row = rv.accept(demo_db, r, reviewed_by="ana")
    assert (into, row) == (f"{DIALOGUES}-revisions", 0)
    info = catalogue.dataset(demo_db, into)
    assert (info.kind, info.format, info.row_count, info.version) == ("pairs", "revisions", 1, 1)
    rec = catalogue.record(demo_db, into, 0)
    assert rec["prompt"] == src.prompt
    assert rec["chosen"] == [{"role": "assistant", "content": r["revision"]}]
    assert rec["rejected"] == [src.final]
    m = rec["metadata"]
    assert (m["source_dataset"], m["source_row"], m["source_side"]) == (DIALOGUES, 2, "chosen")
    assert m["principles"] == ["no-fabrication", "concise"] and m["critique"] == r["critique"]
    assert m["model"] == backend.model and m["backend"] == "local" and m["device"] == "cpu"
    assert m["settings"]["max_new_tokens"] == 12 and m["seed"] == 1
    assert m["tokens"]["total"] == 24 and m["latency_s"] > 0 and m["revised_at"]
    assert m["accepted_by"] == "ana" and m["edited"] is False
    stored = rv.get_revision(demo_db, r["id"])
    assert stored["status"] == "accepted" and stored["into_row"] == 0 and stored["edited"] is False
    # a second accepted revision appends a row and bumps the version
    r2 = rv.revise_one(demo_db, DIALOGUES, 3, "chosen", "concise", backend, fast_settings())
    assert rv.accept(demo_db, r2, reviewed_by="ana") == (into, 1)
    assert catalogue.dataset(demo_db, into).version == 2 and catalogue.dataset(demo_db, into).row_count == 2


def test_an_edited_revision_keeps_the_edit(demo_db, backend):
    r = rv.revise_one(demo_db, PAIRS, 0, "rejected", "respectful-tone", backend, fast_settings())
    text = "I hear you. Here is what I would do, step by step."
    into, row = rv.accept(demo_db, r, final_text=text, reviewed_by="ben", into="my-revisions")
    rec = catalogue.record(demo_db, "my-revisions", row)
    assert rec["chosen"][0]["content"] == text
    assert rec["metadata"]["edited"] is True and rec["metadata"]["model_revision"] == r["revision"]
    assert rec["rejected"][0]["content"] == catalogue.record(demo_db, PAIRS, 0)["rejected"][-1]["content"]
    stored = rv.get_revision(demo_db, r["id"])
    assert stored["edited"] is True and stored["final_revision"] == text and stored["reviewed_by"] == "ben"
    with pytest.raises(rv.RevisionError, match="empty"):
        rv.accept(demo_db, r, final_text="   ")
    with pytest.raises(rv.RevisionError, match="holds conversations"):
        rv.accept(demo_db, rv.revise_one(demo_db, PAIRS, 1, "chosen", "concise", backend, fast_settings()),
                  into=DIALOGUES)


# -- batch jobs -----------------------------------------------------------------------------------


def test_batch_revises_n_rows_and_resumes_after_an_interruption(demo_db, backend):
    rows = rv.select_rows(demo_db, PAIRS, "0-5")
    assert rows == [0, 1, 2, 3, 4, 5]
    ps = rv.resolve_principles(demo_db, "no-fabrication")
    settings = fast_settings(max_new_tokens=6, batch_size=2)
    job, resumed = rv.start_job(demo_db, PAIRS, rows, ps, backend, settings)
    assert not resumed
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.done)
        if p.done >= 2:
            stop.set()  # interrupt after the first batch of two

    out = rv.run_job(demo_db, job["id"], backend, stop, progress)
    assert out["stopped"] and out["status"] == "interrupted" and out["done"] == 2
    first = {r["row"]: r["id"] for r in rv.revisions(demo_db, job_id=job["id"])}
    assert sorted(first) == [0, 1]
    again, resumed = rv.start_job(demo_db, PAIRS, rows, ps, backend, settings)
    assert resumed and again["id"] == job["id"]
    done = []
    out = rv.run_job(demo_db, job["id"], backend, progress=lambda p: done.append(p.done))
    assert out["status"] == "done" and out["done"] == 6 and out["pending"] == 6
    results = rv.revisions(demo_db, job_id=job["id"])
    assert sorted(r["row"] for r in results) == rows  # every row once, none twice
    assert {r["id"] for r in results if r["row"] in first} == set(first.values())  # the first two kept
    assert done[0] == 2
    pending = rv.pending(demo_db, job["id"])
    assert len(pending) == 6 and all(p["status"] == "pending" and p["critique"] is not None for p in pending)
    # review: accept one with an edit, reject another
    into, row = rv.accept(demo_db, pending[0], "A better answer.", "cy", stored=True)
    rv.reject(demo_db, pending[1]["id"], "cy")
    assert catalogue.record(demo_db, into, row)["metadata"]["job_id"] == job["id"]
    assert len(rv.pending(demo_db, job["id"])) == 4
    with pytest.raises(rv.RevisionError, match="no longer pending"):
        rv.accept(demo_db, pending[0], "again", stored=True)


def test_batch_with_accept_goes_straight_into_the_dataset(demo_db, backend):
    rows = rv.select_rows(demo_db, DIALOGUES, None, limit=3)
    ps = rv.resolve_principles(demo_db, "concise")
    job, _ = rv.start_job(demo_db, DIALOGUES, rows, ps, backend, fast_settings(max_new_tokens=4, batch_size=3),
                          accept_into="straight")
    out = rv.run_job(demo_db, job["id"], backend)
    assert out["done"] == 3 and out["pending"] == 0
    assert catalogue.dataset(demo_db, "straight").row_count == 3
    assert [catalogue.record(demo_db, "straight", i)["metadata"]["source_row"] for i in range(3)] == rows
    assert "batch of 3" in catalogue.record(demo_db, "straight", 0)["metadata"]["notes"]


def test_select_rows_by_query_and_bad_rows(demo_db):
    notes = []
    hits = rv.select_rows(demo_db, PAIRS, query="egg yolk", notes=notes)
    assert hits and all("yolk" in json.dumps(catalogue.record(demo_db, PAIRS, r)).lower() for r in hits)
    assert notes == [f"{PAIRS} has no search index; took the rows containing every word"]
    with pytest.raises(rv.RevisionError, match="no rows"):
        rv.select_rows(demo_db, PAIRS, query="zzqqxxnotaword")
    with pytest.raises(rv.RevisionError, match="ranges"):
        rv.select_rows(demo_db, PAIRS, "1,x")
    assert rv.select_rows(demo_db, PAIRS, "0-1000", limit=3) == [0, 1, 2]


# -- errors ---------------------------------------------------------------------------------------


def test_clear_errors_for_missing_models_and_unreachable_endpoints(tmp_path):
    with pytest.raises(rv.RevisionError, match="does not exist"):
        rv.local_backend(str(tmp_path / "nope"), "cpu")
    with pytest.raises(rv.RevisionError, match="no config.json"):
        rv.local_backend(str(tmp_path), "cpu")
    with pytest.raises(rv.RevisionError, match="not found: not a local folder, not in the local cache"):
        rv.local_backend("no-such-org/no-such-model", "cpu")
    from helpers import free_port

    ep = rv.EndpointBackend(f"http://127.0.0.1:{free_port()}/v1", "m")
    with pytest.raises(rv.RevisionError, match="unreachable"):
        list(ep.stream([{"role": "user", "content": "hi"}], fast_settings()))
    with pytest.raises(rv.RevisionError, match="http"):
        rv.EndpointBackend("localhost:8000", "m")


def test_out_of_memory_is_one_line(backend):
    msg = backend._run_error(MemoryError(), fast_settings())
    assert msg.startswith("out of memory on cpu") and "\n" not in msg


def test_accepted_pairs_go_only_to_valid_dataset_names(demo_db, backend):
    r = rv.revise_one(demo_db, DIALOGUES, 0, "chosen", "concise", backend, fast_settings(max_new_tokens=4))
    for bad in ("../victim", "/x", "a/b", ".hidden"):
        with pytest.raises(rv.RevisionError, match="must start with a letter or digit") as caught:
            rv.accept(demo_db, r, into=bad)
        assert "\n" not in str(caught.value)
        with pytest.raises(rv.RevisionError, match="must start with a letter or digit"):
            rv.start_job(demo_db, DIALOGUES, [0], rv.resolve_principles(demo_db, "concise"), backend,
                         fast_settings(), accept_into=bad)
    assert catalogue.dataset(demo_db, "victim") is None and rv.get_revision(demo_db, r["id"]) is None


# -- the CLI --------------------------------------------------------------------------------------


def pairs_db(path: Path) -> str:
    d = Database(path)
    ingest(d, str(ROOT / "data/demo/assistant-pairs.jsonl"), name="pairs")
    d.close()
    return str(path)


def test_cli_revise_pending_then_accept_into(tmp_path, tiny_model):
    db = pairs_db(tmp_path / "cli.duckdb")
    r = run_cli("revise", "pairs", "--rows", "0,2", "--model", tiny_model, "--max-new-tokens", "6",
                "--principles", "concise,pink-elephant:avoid=money:steer=hobbies", "--db", db, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "done" and out["pending"] == 2 and [x["row"] for x in out["results"]] == [0, 2]
    r = run_cli("revise", "pairs", "--rows", "1", "--model", tiny_model, "--max-new-tokens", "6", "--accept",
                "--into", "pairs-v2", "--side", "rejected", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "1 accepted into pairs-v2" in r.stdout and "row 1: -> pairs-v2 row 0" in r.stdout
    bad = run_cli("revise", "pairs", "--model", str(tmp_path / "missing"), "--db", db)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: model folder") and "Traceback" not in bad.stderr
    bad = run_cli("revise", "pairs", "--model", tiny_model, "--principles", "pink-elephant", "--db", db)
    assert bad.returncode == 1 and "fill in avoid, steer" in bad.stderr
    bad = run_cli("revise", "pairs", "--model", tiny_model, "--into", "x", "--db", db)
    assert bad.returncode == 1 and "--accept" in bad.stderr
    for target in ("../victim", "/x"):
        bad = run_cli("revise", "pairs", "--rows", "0", "--model", tiny_model, "--accept", "--into", target, "--db", db)
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.strip() == (f"error: dataset name {target!r} must start with a letter or digit and hold "
                                      "only letters, digits, '.', '_' or '-' (at most 100 characters)")


@pytest.mark.parametrize("at", ["[1/6]", "[3/6]"])
def test_cli_batch_interrupted_with_ctrl_c_resumes_without_redoing_rows(tmp_path, tiny_model, at):
    """Ctrl-C lands wherever the command is (generating, reading or writing the database): the outcome
    is the same -- exit 130, the resume line, no traceback, and the finished rows kept."""
    db = pairs_db(tmp_path / "cli.duckdb")
    args = [sys.executable, str(ROOT / "app.py"), "revise", "pairs", "--rows", "0-5", "--model", tiny_model,
            "--max-new-tokens", "60", "--batch-size", "1", "--db", db]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"HF_HUB_OFFLINE": "1"})
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith(at):
            proc.send_signal(signal.SIGINT)  # Ctrl-C in the middle of the next row
            break
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, "".join(lines) + rest
    assert "run the same command again to resume job" in rest and "Traceback" not in rest, rest
    kept = int(at[1])
    r = subprocess.run(args + ["--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # at least the two rows finished before Ctrl-C are kept (the third may finish before the signal lands)
    resumed = re.search(r"resuming job .*?(\d) of 6 done; (\d) to go", r.stderr, re.S)
    assert resumed and kept <= int(resumed[1]) < 6 and int(resumed[1]) + int(resumed[2]) == 6, r.stderr
    out = json.loads(r.stdout)
    assert out["status"] == "done" and out["done"] == 6
    assert sorted(x["row"] for x in out["results"]) == [0, 1, 2, 3, 4, 5]


# -- plain functions of the view -------------------------------------------------------------------


def test_view_functions(demo_db, backend):
    messages, line = view.load_conversation(demo_db, DIALOGUES, 0, "chosen")
    assert messages[-1]["role"] == "assistant" and "row 0" in line and "tab=revise" in line
    assert view.load_conversation(demo_db, "demo-field-notes", 0, "chosen")[1].startswith("⚠️")
    assert form.PrincipleChoice(["concise"], "x", "y", "tone=warm; n=2").values() == {
        "avoid": "x", "steer": "y", "tone": "warm", "n": "2"}
    assert form.with_template(["concise"], "", "gardening") == ["concise", "pink-elephant"]
    assert form.with_template(["pink-elephant"], "x", "") == ["pink-elephant"]
    r = rv.revise_one(demo_db, DIALOGUES, 0, "chosen", "concise", backend, fast_settings())
    msg = view.accept_result(demo_db, r, r["revision"] + " <b>edited</b>", "ana", "")
    assert msg.startswith("✅ Accepted (edited) as row 0")
    assert view.accept_result(demo_db, None, "x", "ana", "").startswith("⚠️")
    assert "float32" in view.device_line(backend) and "cpu" in view.device_line(backend)


def test_view_revision_and_batch_functions(demo_db, backend, tiny_model):
    request = form.RevisionRequest(DIALOGUES, 0, "chosen", form.PrincipleChoice(["concise"]),
                                   form.ModelChoice("local", tiny_model), form.GenerationChoice(6, 0.8, 0.95, 1, 0))
    steps = list(view.revise_updates(demo_db, request, threading.Event(), access.LOCAL))
    status, critique, revision, result, device = steps[-1]
    assert status.startswith("✅ Done") and result["revision"] == revision.strip() and "float32" in device
    assert result["settings"]["max_new_tokens"] == 6 and result["principles"][0]["id"] == "concise"
    missing = form.RevisionRequest(None, 0, "chosen", form.PrincipleChoice(), form.ModelChoice(),
                                   form.GenerationChoice())
    assert [s[0] for s in view.revise_updates(demo_db, missing, threading.Event(), access.LOCAL)] == [
        "⚠️ pick a dataset and a row first"]
    request.dataset = PAIRS
    with pytest.raises(rv.RevisionError, match="must start with a letter or digit"):
        batch_view.start_batch(demo_db, request, batch_view.BatchChoice("0-1", accept_straight=True, into="../victim"),
                               access.LOCAL)
    start = batch_view.start_batch(demo_db, request, batch_view.BatchChoice("0-1", limit=5, batch_size=2),
                                   access.LOCAL)
    assert not start.resumed and start.job["rows"] == [0, 1] and start.job["settings"]["batch_size"] == 2
    steps = list(batch_view.run_batch(demo_db, start, threading.Event(), None))
    job = steps[-1]
    assert job["status"] == "done" and job["pending"] == 2 and [p.done for p in steps[:-1]][-1] == 2
    assert "done · 2 of 2 rows have a result · 2 pending review" in batch_view.finished_line("x", job)
    table, ids = batch_view.pending_table(demo_db)
    assert len(ids) == 2 and {r[2] for r in table} == {0, 1}
    item = batch_view.review_item(demo_db, ids[0])
    assert item["found"] and item["result"]["id"] == ids[0] and item["chat"][-1]["role"] == "assistant"
    with pytest.raises(rv.RevisionError, match="already done"):
        batch_view.resume_batch(demo_db, job["id"], access.LOCAL)
    assert batch_view.jobs_table(demo_db)[0][:4] == [job["id"], PAIRS, "—", "done"]
