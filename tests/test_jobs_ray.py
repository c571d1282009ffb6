"""Jobs on a real local Ray cluster (started once for the module): the same reward-model scoring job
gives the same scores in process and on Ray, an unreachable address is one line, Cancel stops the
cluster's actors, and a killed actor's batch is run again with nothing written twice. The tiny
reward model and the pairs are those of test_scores.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import ROOT, write_pairs
from test_scores import make_reward_model, pair_lines

os.environ["HF_HUB_OFFLINE"] = "1"

from components.jobs import record, runner  # noqa: E402
from components.scores.reward import reward_step  # noqa: E402
from components.store import Database  # noqa: E402

N = 40

DATASETS = ("inproc", "onray", "unreached", "cancelled", "killed")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python app.py ARGS`` offline, with this process's environment as it is now: after joining the
    cluster it holds RAY_AUTH_MODE=token, which a driver needs to join a cluster with token auth (the
    token itself is in ~/.ray/auth_token)."""
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs that this process has joined; yields its address (HOST:PORT)."""
    import ray

    # as ray_run.connect does: no Ray crash handler on SIGSEGV in a process that also runs the JVM
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs-ray")
    src = write_pairs(tmp / "pairs.jsonl", N)
    texts = [m["content"] for r in pair_lines(src) for s in ("prompt", "chosen", "rejected") for m in r[s]]
    model = str(make_reward_model(tmp / "reward", texts))
    db_path = tmp / "studio.duckdb"
    for name in DATASETS:
        got = cli("ingest", str(src), "--name", name, "--db", str(db_path))
        assert got.returncode == 0, got.stderr
    # the reference: the job in this process, through the command line
    got = cli("score", "inproc", "--model", model, "--device", "cpu", "--batch-size", "8", "--json",
              "--db", str(db_path))
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["done"] == N
    return {"tmp": tmp, "model": model, "db": db_path}


def scores(db: Database, dataset: str) -> dict[int, tuple[float, float, str]]:
    """(score_chosen, score_rejected, job) by row; asserts one row per pair."""
    got = db.rows("SELECT row, score_chosen, score_rejected, job FROM pair_scores WHERE dataset = ? ORDER BY row",
                  [dataset])
    rows = [r[0] for r in got]
    assert len(rows) == len(set(rows))
    return {r[0]: (r[1], r[2], r[3]) for r in got}


def read_scores(db_path, dataset: str) -> dict[int, tuple[float, float, str]]:
    db = Database(db_path)
    try:
        return scores(db, dataset)
    finally:
        db.close()


def step_actors(state: str | None = "ALIVE") -> list[dict]:
    """The cluster's actor-pool workers of job steps (Ray Data's MapWorker of ray_run._StepActor)."""
    import ray._private.state as ray_state

    return [a for a in ray_state.actors().values()
            if "_StepActor" in a["ActorClassName"] and (state is None or a["State"] == state)]


def same_scores(got: dict, want: dict) -> bool:
    """The same rows with the same scores, to 1e-5: another batch size pads other conversations
    together, which moves the float32 sums in the last bits."""
    return sorted(got) == sorted(want) and all(
        got[r][:2] == (pytest.approx(want[r][0], abs=1e-5), pytest.approx(want[r][1], abs=1e-5)) for r in want)


def test_the_same_job_scores_the_same_in_process_and_on_ray(world, cluster):
    got = cli("score", "onray", "--model", world["model"], "--device", "cpu", "--batch-size", "8", "--json",
              "--ray", cluster, "--db", str(world["db"]), timeout=180)
    assert got.returncode == 0, got.stderr
    assert "Traceback" not in got.stderr
    summary = json.loads(got.stdout)
    assert (summary["status"], summary["done"], summary["failed"], summary["where"]) == \
        ("done", N, 0, f"ray:{cluster}")
    db = Database(world["db"])
    try:
        here, there = scores(db, "inproc"), scores(db, "onray")
        job = record.get_job(db, summary["job"])
    finally:
        db.close()
    assert job["where_run"] == "ray" and job["status"] == "done" and job["rows_done"] == N
    assert sorted(there) == list(range(N))
    assert {r: s[:2] for r, s in there.items()} == {r: s[:2] for r, s in here.items()}  # identical floats
    assert {s[2] for s in there.values()} == {summary["job"]}


def test_an_unreachable_cluster_is_one_line_and_exit_1(world):
    got = cli("score", "unreached", "--model", world["model"], "--device", "cpu", "--ray", "127.0.0.1:1",
              "--db", str(world["db"]), timeout=60)
    assert got.returncode == 1
    assert "Traceback" not in got.stderr
    errors = [line for line in got.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == got.stderr.splitlines()[-1], got.stderr
    assert errors[0].startswith("error: cannot reach the Ray cluster at 127.0.0.1:1"), errors[0]
    assert got.stdout == ""
    assert read_scores(world["db"], "unreached") == {}


def test_cancel_stops_the_clusters_actors_and_the_job_resumes_after(world, cluster):
    step = reward_step(world["model"], device="cpu")
    cancel_seen = []

    def on_progress(p):
        if not cancel_seen:
            cancel_seen.append(p.done)
            assert step_actors(), "the job's actor is alive while it runs"
            assert runner.cancel_job(p.job)

    db = Database(world["db"])
    try:
        first = runner.run(db, step, "cancelled", started_by="test", batch_size=1, where="ray:auto",
                           on_progress=on_progress)
        assert first.status == "cancelled" and first.where == "ray:auto"
        assert 1 <= first.done < N and first.failed == 0
        assert not runner.running_here()
        kept = scores(db, "cancelled")
        job = record.get_job(db, first.job)
        assert job["status"] == "cancelled" and job["rows_done"] == first.done == len(kept)
        # the cluster's work stops: the actor pool is gone when run() returns, and nothing more is written
        assert step_actors() == []
        assert scores(db, "cancelled") == kept

        rest = runner.run(db, step, "cancelled", started_by="test", batch_size=8, where="ray:auto")
        assert (rest.job, rest.resumed, rest.status) == (first.job, True, "done")
        assert (rest.before, rest.done, rest.failed) == (first.done, N - first.done, 0)
        final = scores(db, "cancelled")
        here = scores(db, "inproc")
    finally:
        db.close()
    assert sorted(final) == list(range(N))
    assert all(final[r] == kept[r] for r in kept)  # the rows done before Cancel are not done again
    assert same_scores(final, here)


def test_a_killed_ray_worker_is_replaced_its_batch_run_again_and_nothing_written_twice(world, cluster):
    step = reward_step(world["model"], device="cpu")
    killed = []

    def on_progress(p):
        if not killed:
            [actor] = step_actors()
            os.kill(actor["Pid"], signal.SIGKILL)
            killed.append(actor)

    db = Database(world["db"])
    try:
        result = runner.run(db, step, "killed", started_by="test", batch_size=1, where="ray:auto",
                            on_progress=on_progress)
        final = scores(db, "killed")
        here = scores(db, "inproc")
        job = record.get_job(db, result.job)
        errors = record.job_errors(db, result.job)
    finally:
        db.close()
    assert killed, "a step actor was killed while the job ran"
    assert (result.status, result.done, result.failed) == ("done", N, 0)
    assert (job["status"], job["rows_done"], job["rows_failed"], errors) == ("done", N, 0, [])
    assert sorted(final) == list(range(N))  # each pair once (checked in scores)
    assert same_scores(final, here)
    gone = [a for a in step_actors(state=None) if a["ActorID"] == killed[0]["ActorID"]]
    assert gone and (gone[0]["NumRestarts"] >= 1 or gone[0]["State"] == "DEAD")
