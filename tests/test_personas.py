"""Personas: the library with its history, revision for a persona, the judge, divergence, export."""

from __future__ import annotations

import json
import os

import pytest

from helpers import KAPPA_TABLE, ROOT, run_cli, write_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from components import access, labels, personas as pz, revise as rv  # noqa: E402
from components.ingest import ingest  # noqa: E402
from components.store import Database  # noqa: E402
from components.views import personas as view  # noqa: E402
from components.views import revise as revise_view  # noqa: E402
from components.views import revise_form as form  # noqa: E402
from components import catalogue

DIALOGUES = "demo-sdsd-dialogues"
PAIRS = "demo-assistant-pairs"
ROLES = {"system", "user", "assistant"}


def fast(**kw) -> rv.Settings:
    return rv.Settings(**({"max_new_tokens": 8, "temperature": 0.8, "top_p": 0.95, "seed": 1} | kw))


def assert_trl_conversational(example: dict) -> None:
    """TRL's conversational preference format with an explicit prompt: ``prompt``, ``chosen`` and
    ``rejected`` are lists of ``{"role", "content"}`` messages; the completions are assistant turns."""
    for key in ("prompt", "chosen", "rejected"):
        assert isinstance(example[key], list) and example[key], key
        for m in example[key]:
            assert set(m) == {"role", "content"} and m["role"] in ROLES and isinstance(m["content"], str), m
    assert example["prompt"][-1]["role"] == "user"
    assert all(m["role"] == "assistant" for m in example["chosen"] + example["rejected"])


# -- the library -----------------------------------------------------------------------------------


def test_library_ships_a_dozen_personas_with_different_values(db):
    items = pz.read_personas()
    assert len(items) >= 12
    assert len({p["attributes"]["values"] for p in items}) == len(items)  # no two share their values
    found = pz.personas(db)
    assert [p.name for p in found] == sorted(p["name"] for p in items)
    teacher = pz.resolve(db, "retired-teacher")
    assert teacher.version == 1 and "patience, kindness" in teacher.system_message
    assert teacher.system_message.startswith("You are talking with someone who describes themselves")
    with pytest.raises(pz.PersonaError, match="no persona 'retired'.*retired-teacher"):
        pz.resolve(db, "retired")


def test_edits_make_versions_and_the_history_keeps_each_system_message(db):
    first = pz.resolve(db, "startup-founder").system_message
    p, what = pz.save_persona(db, {"name": "startup-founder", "attributes": {"values": "speed", "age": "31"},
                                   "template": "Be brief with a founder ({age}) who values {values}."}, author="ana")
    assert (what, p.version, p.system_message) == ("updated", 2, "Be brief with a founder (31) who values speed.")
    assert pz.save_persona(db, p.as_dict(), author="ana")[1] == "unchanged"
    hist = pz.persona_history(db, "startup-founder")
    assert [(h["version"], h["action"], h["author"]) for h in hist] == [(2, "edit", "ana"), (1, "library", None)]
    assert hist[1]["system_message"] == first and pz.version_of(db, "startup-founder", 1).system_message == first
    assert pz.delete_persona(db, "startup-founder", "ana") and not pz.delete_persona(db, "startup-founder")
    assert pz.persona(db, "startup-founder") is None
    assert pz.seed_personas(db, pz.read_personas()) == 0  # a new process does not bring it back
    for bad, words in [({"name": "Bad Name", "attributes": {"a": "b"}}, "lower-case"),
                       ({"name": "ok", "attributes": {}}, "attributes must be"),
                       ({"name": "ok", "attributes": {"a": "b"}, "template": "Hi {nickname}"}, "not attributes")]:
        with pytest.raises(pz.PersonaError, match=words):
            pz.save_persona(db, bad)


def test_import_and_export_as_json_lines(db, tmp_path):
    out = tmp_path / "lib.jsonl"
    assert pz.write_personas(pz.personas(db), out) == len(pz.personas(db))
    assert [p["name"] for p in pz.read_personas(out)] == [p.name for p in pz.personas(db)]
    mine = tmp_path / "mine.jsonl"
    mine.write_text(json.dumps({"name": "night-shift-nurse", "attributes": {"values": "sleep"}}) + "\n"
                    + json.dumps({"name": "new-one", "attributes": {"values": "curiosity"}}) + "\n"
                    + json.dumps({"name": "retired-teacher", **pz.resolve(db, "retired-teacher").as_dict()}) + "\n")
    assert pz.import_personas(db, mine, "ben") == {"created": 1, "updated": 1, "unchanged": 1}
    assert pz.resolve(db, "night-shift-nurse").version == 2
    assert pz.persona_history(db, "new-one")[0]["action"] == "import"
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"name": "a", "attributes": {"v": "x"}}\n{not json\n')
    with pytest.raises(pz.PersonaError, match="line 2 is not JSON") as caught:
        pz.import_personas(db, broken)
    assert "\n" not in str(caught.value) and pz.persona(db, "a") is None  # nothing of a bad file lands


def test_personas_cli(tmp_path):
    db = str(tmp_path / "p.duckdb")
    listed = json.loads(run_cli("personas", "list", "--json", "--db", db).stdout)
    assert len(listed) >= 12 and all(p["system_message"] for p in listed)
    shown = run_cli("personas", "show", "privacy-engineer", "--db", db)
    assert shown.returncode == 0 and "system message:" in shown.stdout and "threat model" in shown.stdout
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps({"name": "beekeeper", "attributes": {"values": "patience", "age": "60"}}) + "\n")
    added = run_cli("personas", "add", str(f), "--json", "--db", db)
    assert json.loads(added.stdout) == {"created": 1, "updated": 0, "unchanged": 0}
    assert json.loads(run_cli("personas", "show", "beekeeper", "--json", "--db", db).stdout)["version"] == 1
    bad = run_cli("personas", "show", "nobody", "--db", db)
    assert bad.returncode == 1 and bad.stderr.startswith("error: no persona 'nobody'") and "Traceback" not in bad.stderr


# -- revising for a persona ------------------------------------------------------------------------


@pytest.fixture
def backend(tiny_model) -> rv.LocalBackend:
    return rv.local_backend(tiny_model, "cpu")


def test_revision_for_a_persona_stores_its_provenance(demo_db, backend):
    teacher = pz.resolve(demo_db, "retired-teacher").provenance()
    nurse = pz.resolve(demo_db, "night-shift-nurse").provenance()
    src = rv.conversation(demo_db, DIALOGUES, 0)
    ps = rv.resolve_principles(demo_db, "concise")
    crit = rv.critique_messages(src.prompt, src.final, ps, teacher)
    assert teacher["system_message"] in crit[1]["content"] and "person" in crit[0]["content"]
    assert teacher["system_message"] not in rv.critique_messages(src.prompt, src.final, ps)[1]["content"]
    assert nurse["system_message"] in rv.revision_messages(src.prompt, src.final, ps, "x", nurse)[1]["content"]
    rows = []
    for persona in (teacher, nurse):  # one row x two personas: two pairs
        r = rv.revise_one(demo_db, DIALOGUES, 0, "chosen", "concise", backend, fast(), persona=persona)
        assert r["persona"] == persona
        rows.append(rv.accept(demo_db, r, reviewed_by="ana"))
        assert rv.get_revision(demo_db, r["id"])["persona"] == persona
    assert rows == [(f"{DIALOGUES}-revisions", 0), (f"{DIALOGUES}-revisions", 1)]
    recs = [catalogue.record(demo_db, f"{DIALOGUES}-revisions", i) for i in (0, 1)]
    for rec, persona in zip(recs, (teacher, nurse)):
        assert rec["prompt"][0] == {"role": "system", "content": persona["system_message"]}
        # the dialogue's own system turn (a plan) gives way to the persona's; the provenance keeps it
        assert src.prompt[0]["role"] == "system" and rec["prompt"][1:] == src.prompt[1:]
        assert rec["rejected"] == [src.final]
        m = rec["metadata"]
        assert m["source_system"] == src.prompt[0]["content"]
        assert (m["persona"], m["persona_version"], m["system_message"]) == (persona["name"], 1,
                                                                          persona["system_message"])
        assert m["source_row"] == 0 and m["principles"] == ["concise"] and m["model"] == backend.model
    assert recs[0]["source_id"] != recs[1]["source_id"]


def test_a_conversation_with_its_own_system_turn_gets_the_persona_first(demo_db, backend):
    ingest(demo_db, str(write_pairs(demo_db.path.parent / "sys.jsonl", 0, extra=[{
        "prompt": [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hello?"}],
        "chosen": [{"role": "assistant", "content": "Ahoy."}], "rejected": [{"role": "assistant", "content": "Hi."}]}])),
        name="sys")
    persona = pz.resolve(demo_db, "teen-gamer").provenance()
    r = rv.revise_one(demo_db, "sys", 0, "chosen", "concise", backend, fast(max_new_tokens=4), persona=persona)
    into, row = rv.accept(demo_db, r, "Ahoy, gamer.")
    rec = catalogue.record(demo_db, into, row)
    assert [m["role"] for m in rec["prompt"]] == ["system", "user"]
    assert rec["prompt"][0]["content"] == persona["system_message"]
    assert rec["metadata"]["source_system"] == "You are a pirate."


def test_batch_job_per_persona_resumes_and_accepts(demo_db, backend):
    ps = rv.resolve_principles(demo_db, "concise")
    a = pz.resolve(demo_db, "rural-farmer").provenance()
    b = pz.resolve(demo_db, "climate-scientist").provenance()
    settings = fast(max_new_tokens=4, batch_size=2)
    job_a, _ = rv.start_job(demo_db, PAIRS, [0, 1], ps, backend, settings, accept_into="by-persona", persona=a)
    job_b, _ = rv.start_job(demo_db, PAIRS, [0, 1], ps, backend, settings, accept_into="by-persona", persona=b)
    assert job_a["id"] != job_b["id"] and job_a["persona"] == a
    assert rv.start_job(demo_db, PAIRS, [0, 1], ps, backend, settings, accept_into="by-persona",
                        persona=a) == (job_a, True)
    for job in (job_a, job_b):
        assert rv.run_job(demo_db, job["id"], backend)["done"] == 2
    recs = [catalogue.record(demo_db, "by-persona", i) for i in range(4)]
    assert [(r["metadata"]["persona"], r["metadata"]["source_row"]) for r in recs] == [
        ("rural-farmer", 0), ("rural-farmer", 1), ("climate-scientist", 0), ("climate-scientist", 1)]
    assert recs[0]["prompt"][1:] == recs[2]["prompt"][1:] and recs[0]["prompt"][0] != recs[2]["prompt"][0]


def test_view_revision_for_a_persona(demo_db, tiny_model):
    request = form.RevisionRequest(DIALOGUES, 1, "chosen", form.PrincipleChoice(["concise"]),
                                   form.ModelChoice("local", tiny_model), form.GenerationChoice(4, 0.8, 0.95, 1, 0),
                                   persona="devout-parent")
    status, _, revision, result, _ = list(revise_view.revise_updates(demo_db, request, None, access.LOCAL))[-1]
    assert result["persona"]["name"] == "devout-parent" and "devout-parent" in status
    assert revise_view.persona_card(demo_db, "devout-parent").count("<dt>") == 5
    msg = revise_view.accept_result(demo_db, result, revision, "ana", "")
    assert msg.startswith("✅ Accepted") and "for persona **devout-parent**" in msg
    request.persona = "nobody"
    refused = list(revise_view.revise_updates(demo_db, request, None, access.LOCAL))
    assert len(refused) == 1 and refused[0][0].startswith("⚠️ no persona") and "nobody" in refused[0][0]


# -- the judge ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def judge_model(tiny_model, tmp_path_factory):
    """The tiny model with weights set so that, greedy, it answers every judge prompt "Preference: A".

    Attention and MLP outputs are zeroed, so the last hidden state is the current token's embedding
    and the model is a bigram machine: its output head maps the generation prompt's last token to
    "Pre...", each token of the answer to the next one, and the answer's last token to the end of turn.
    """
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.getbasetemp() / "judge-says-a"
    if (path / "config.json").exists():
        return str(path)
    tok = PreTrainedTokenizerFast.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    start = tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False, add_generation_prompt=True)
    chain = [tok(start, add_special_tokens=False)["input_ids"][-1]]
    chain += tok("Preference: A", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert len(set(chain[:-1])) == len(chain) - 1  # each input token has one successor
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        head = model.lm_head.weight
        head.zero_()
        emb = model.model.embed_tokens.weight
        for current, following in zip(chain, chain[1:]):
            head[following] = 10 * emb[current] / emb[current].norm()
    tmp = path.with_name(path.name + ".partial")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(path)
    return str(path)


def test_judge_labels_land_under_their_own_annotator(demo_db, judge_model):
    judge = rv.local_backend(judge_model, "cpu")
    farmer = pz.resolve(demo_db, "rural-farmer")
    labels.add_label(demo_db, PAIRS, 0, "rejected", "ada")  # a human's label stays hers
    s = pz.judge_pairs(demo_db, PAIRS, farmer, judge, rows="0-5")
    assert s.annotator == "sim-rural-farmer@judge-says-a" and s.rows == 6
    assert s.labeled == 6 and s.unparseable == 0  # the fine-tuned judge always answers "Preference: A"
    mine = labels.labeled_rows(demo_db, PAIRS, s.annotator)
    # reply A is the chosen side unless the order was swapped for this pair and persona
    assert mine == {r: "rejected" if pz.swapped(PAIRS, r, "rural-farmer") else "chosen" for r in range(6)}
    assert set(mine.values()) == {"chosen", "rejected"}  # both orders occur among six pairs
    assert labels.labeled_rows(demo_db, PAIRS, "ada") == {0: "rejected"}
    ev = json.loads(demo_db.scalar("SELECT options FROM label_events WHERE annotator = ? ORDER BY id LIMIT 1",
                                   [s.annotator]))
    assert (ev["persona"], ev["persona_version"], ev["simulated"]) == ("rural-farmer", 1, True)
    assert ev["judge"]["model"] == judge_model and ev["judge"]["verdict"] == "A"
    again = pz.judge_pairs(demo_db, PAIRS, farmer, judge, rows="0-5")
    assert (again.already, again.labeled) == (6, 0)  # already judged: left as they are


def test_an_unreadable_judge_counts_its_answers_and_invents_no_label(demo_db, backend):
    s = pz.judge_pairs(demo_db, PAIRS, pz.resolve(demo_db, "teen-gamer"), backend, fast(max_new_tokens=6), limit=4)
    assert s.labeled + s.unparseable == 4 and len(s.unparseable_rows) == s.unparseable
    assert len(labels.labeled_rows(demo_db, PAIRS, s.annotator)) == s.labeled
    assert s.unparseable >= 1  # random weights write gibberish


def test_parse_verdict_is_robust():
    assert pz.parse_verdict("Preference: a") == "A" and pz.parse_verdict("preference - Response B") == "B"
    assert pz.parse_verdict("Preference: equally good") == "tie" and pz.parse_verdict("a cat sat") is None
    assert pz.parse_verdict("Reply A and reply B are both fine") is None
    assert pz.annotator_name("x" * 40, "m" * 80) == ("sim-" + "x" * 40 + "@" + "m" * 19)
    labels.check_annotator(pz.annotator_name("retired-teacher", "/models/Qwen 2.5 (7B)/"))


def test_judge_cli(tmp_path, judge_model):
    db = tmp_path / "j.duckdb"
    d = Database(db)
    ingest(d, str(ROOT / "data/demo/assistant-pairs.jsonl"), name="pairs")
    d.close()
    r = run_cli("judge", "pairs", "--persona", "retired-teacher", "--persona", "privacy-engineer", "--model",
                judge_model, "--limit", "3", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(s["persona"], s["labeled"], s["annotator"]) for s in out] == [
        ("retired-teacher", 3, "sim-retired-teacher@judge-says-a"),
        ("privacy-engineer", 3, "sim-privacy-engineer@judge-says-a")]
    bad = run_cli("judge", "pairs", "--persona", "nobody", "--model", judge_model, "--db", str(db))
    assert bad.returncode == 1 and "no persona 'nobody'" in bad.stderr and "Traceback" not in bad.stderr


# -- divergence and agreement ---------------------------------------------------------------------


def test_divergence_ranking_on_a_hand_made_table():
    table = {
        0: {"a": "chosen", "b": "chosen", "c": "chosen", "d": "chosen"},  # all agree: 0 bits
        1: {"a": "chosen", "b": "chosen", "c": "rejected", "d": "rejected"},  # 2-2: 1 bit
        2: {"a": "chosen", "b": "rejected", "c": "tie", "d": "both_bad"},  # four labels: 2 bits
        3: {"a": "chosen", "b": "chosen", "c": "chosen", "d": "rejected"},  # 3-1: 0.811 bits
        4: {"a": "chosen", "b": "rejected"},  # 1 bit, but only two personas: after row 1
        5: {"a": "rejected"},  # one persona: no divergence to speak of
    }
    ranked = pz.rank_divergence(table)
    assert [d.row for d in ranked] == [2, 1, 4, 3, 0]
    assert [d.entropy for d in ranked] == [2.0, 1.0, 1.0, pytest.approx(0.811278, abs=1e-6), 0.0]
    assert ranked[0].counts == {"chosen": 1, "rejected": 1, "tie": 1, "both_bad": 1}


def test_divergence_and_human_vs_simulated_from_labels(db, tmp_path):
    ingest(db, str(write_pairs(tmp_path / "p.jsonl", 50)), name="p")

    def as_persona(row, label, who, persona, simulated=False):
        labels.add_label(db, "p", row, label, who, options={"persona": persona, "persona_version": 1}
                         | ({"simulated": True} if simulated else {}))

    for row, labs in {0: "cccc", 1: "ccrr", 2: "crtb", 3: "cccr"}.items():
        for persona, lab in zip("abcd", labs):
            name = {"c": "chosen", "r": "rejected", "t": "tie", "b": "both_bad"}[lab]
            as_persona(row, name, f"human-{persona}", f"persona-{persona}")
    labels.add_label(db, "p", 0, "rejected", "no-persona")  # not a persona label: left out
    as_persona(0, "rejected", "human-a2", "persona-a")  # persona-a's two annotators now split on row 0
    ranked = pz.dataset_divergence(db, "p")
    assert [d.row for d in ranked] == [2, 1, 3, 0] and ranked[-1].personas == 3
    as_persona(3, "chosen", "human-d", "persona-d")  # a changed label replaces the old one
    assert [d.row for d in pz.dataset_divergence(db, "p")] == [2, 1, 3, 0]
    assert {d.row: d.entropy for d in pz.dataset_divergence(db, "p")}[3] == 0.0
    labels.undo(db, "p", "human-d")  # undone: persona-d's earlier label of row 3 is back in effect
    assert {d.row: d.entropy for d in pz.dataset_divergence(db, "p")}[3] == pytest.approx(0.811278, abs=1e-6)
    # human vs simulated for one persona: the textbook kappa table (0.4)
    for row, (human, sim) in enumerate(KAPPA_TABLE):
        as_persona(row, human, "kim", "persona-k")
        as_persona(row, sim, "sim-persona-k@m", "persona-k", simulated=True)
    agree = {a.persona: a for a in pz.human_vs_simulated(db, "p")}["persona-k"]
    assert (agree.humans, agree.simulated, agree.items) == (["kim"], ["sim-persona-k@m"], 50)
    assert agree.kappa == pytest.approx(0.4) and agree.raw == pytest.approx(0.7)
    assert len(pz.persona_labels(db, "p", "simulated")) == 50
    line, table, agreement = view.divergence_view(db, "p", "human")
    assert table[0][0] == 2 and "split the personas" in line
    assert view.divergence_view(db, "nope", "all")[0].startswith("⚠️")


# -- export -------------------------------------------------------------------------------------------


def test_export_puts_the_system_message_first_and_is_trl_conversational(demo_db, backend, tmp_path, tiny_model):
    teacher = pz.resolve(demo_db, "retired-teacher")
    nurse = pz.resolve(demo_db, "night-shift-nurse")
    r = rv.revise_one(demo_db, DIALOGUES, 0, "chosen", "concise", backend, fast(max_new_tokens=4),
                      persona=teacher.provenance())
    into, _ = rv.accept(demo_db, r, "Here is a short, warm answer.")
    labels.add_label(demo_db, PAIRS, 0, "rejected", "bo", options={"persona": nurse.name, "persona_version": 1})
    labels.add_label(demo_db, PAIRS, 0, "chosen", "cy", options={"persona": teacher.name, "persona_version": 1})
    labels.add_label(demo_db, PAIRS, 1, "tie", "cy", options={"persona": teacher.name, "persona_version": 1})
    out = tmp_path / "all.jsonl"
    s = pz.export_persona_pairs(demo_db, PAIRS, out)
    assert (s.rows, s.personas, s.flipped) == (2, {"night-shift-nurse": 1, "retired-teacher": 1}, 1)
    assert s.left_out["tie"] == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    source = catalogue.record(demo_db, PAIRS, 0)
    for row in rows:
        assert_trl_conversational(row)
        p = pz.resolve(demo_db, row["persona"])
        assert row["prompt"][0] == {"role": "system", "content": p.system_message}
        assert row["prompt"][1:] == [{"role": m["role"], "content": m["content"]} for m in source["prompt"]]
    nurse_row = next(r for r in rows if r["persona"] == nurse.name)
    assert nurse_row["chosen"][0]["content"] == source["rejected"][-1]["content"]  # the nurse's flip
    # the revised pairs: already conditioned, exported for their persona only
    s2 = pz.export_persona_pairs(demo_db, into, tmp_path / "t.parquet", teacher.name)
    import pyarrow.parquet as pq

    got = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert s2.rows == 1 and got[0]["prompt"][0]["content"] == teacher.system_message
    assert got[0]["chosen"] == [{"role": "assistant", "content": "Here is a short, warm answer."}]
    assert_trl_conversational(got[0])
    # what a trainer does with it: the chat template renders the persona's system message first
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(tiny_model)
    text = tok.apply_chat_template(got[0]["prompt"] + got[0]["chosen"], tokenize=False)
    assert text.startswith("<|im_start|>system\n" + teacher.system_message)
    with pytest.raises(pz.PersonaError, match="no persona 'nobody'"):
        pz.export_persona_pairs(demo_db, PAIRS, tmp_path / "x.jsonl", "nobody")


def test_cli_revise_two_personas_then_export_them(tmp_path, tiny_model):
    db = tmp_path / "cli.duckdb"
    d = Database(db)
    ingest(d, str(ROOT / "data/demo/assistant-pairs.jsonl"), name="pairs")
    d.close()
    r = run_cli("revise", "pairs", "--rows", "2", "--model", tiny_model, "--max-new-tokens", "4", "--persona",
                "rural-farmer", "--persona", "philosophy-professor", "--accept", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    jobs = json.loads(r.stdout)["jobs"]
    assert [(j["persona"], j["done"], j["results"][0]["into_row"]) for j in jobs] == [
        ("rural-farmer", 1, 0), ("philosophy-professor", 1, 1)]
    out = tmp_path / "personas.jsonl"
    e = run_cli("export", "pairs-revisions", "--all-personas", "--out", str(out), "--db", str(db), "--json")
    assert e.returncode == 0, e.stderr
    assert json.loads(e.stdout)["personas"] == {"philosophy-professor": 1, "rural-farmer": 1}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["prompt"][0]["role"] == "system" for row in rows)
    one = run_cli("export", "pairs-revisions", "--persona", "rural-farmer", "--out", str(tmp_path / "f.jsonl"),
                  "--db", str(db))
    assert one.returncode == 0 and "1 persona pairs" in one.stdout
    bad = run_cli("export", "pairs-revisions", "--persona", "x", "--annotator", "y", "--out", str(out), "--db", str(db))
    assert bad.returncode == 2 and "not allowed with" in bad.stderr
    bad = run_cli("revise", "pairs", "--persona", "nobody", "--model", tiny_model, "--db", str(db))
    assert bad.returncode == 1 and "no persona 'nobody'" in bad.stderr and "Traceback" not in bad.stderr


# -- the view -------------------------------------------------------------------------------------------


def test_view_functions_and_roles(db):
    assert len(view.library_table(db)) >= 12
    card, name, attrs, template = view.show(db, "disability-advocate")
    assert name == "disability-advocate" and "values: dignity" in attrs and "<dl>" in card
    line, p = view.save(db, "new-voice", "values: <b>care</b>\nage: 40", "", "ana")
    assert line.startswith("✅ Saved **new-voice** (created, version 1)") and p.attributes[0] == ("values", "<b>care</b>")
    assert "&lt;b&gt;care" in view.show(db, "new-voice")[0]
    assert view.save(db, "Bad", "values: x", "", "ana")[0].startswith("⚠️")
    assert view.save(db, "x", "no colon here", "", "ana")[0].startswith("⚠️ attribute line 1")
    from components import ui
    from components.views.common import ROLE_ATTR

    from types import SimpleNamespace

    import gradio as gr

    access.add_user(db, "pat", "annotator", "pat-password-1")
    access.add_user(db, "vi", "viewer", "vi-password-1")
    demo = ui.build_app(db, mode="password")
    handlers = {f.fn.__name__: f.fn for f in demo.fns.values()
                if getattr(f.fn, "__module__", "") == "components.views.personas"}
    declared = {name: getattr(fn, ROLE_ATTR).role for name, fn in handlers.items()}
    assert declared["on_save"] == declared["on_delete"] == declared["on_import"] == "admin"
    assert declared["on_divergence"] == declared["on_pick"] == "viewer"
    # exercised: an annotator's save is refused on the server and nothing is saved; a viewer reads a card
    with pytest.raises(gr.Error, match="editing personas needs the admin role; you are pat"):
        handlers["on_save"]("by-pat", "values: x", "", _studio_request=SimpleNamespace(username="pat"))
    assert "by-pat" not in {p.name for p in pz.personas(db)}
    assert "disability-advocate" in str(handlers["on_pick"]("disability-advocate",
                                                             _studio_request=SimpleNamespace(username="vi")))
