"""Helpers the tests (and the benchmarks) import: paths, the shared data, a free port, the real app in
this process, the CLI as a subprocess, and the tiny local chat model (a Qwen2 of random weights with a
byte-level BPE tokenizer) that the revision tests and the benchmark build."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import pytest

if TYPE_CHECKING:
    from components.store import Database

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

CURRENT_TEST = None
"""The test running now (set by an autouse fixture in conftest.py), for ``shared_file``'s check."""


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data: missing fails the test under CI, and skips it elsewhere. The test
    must be marked ``@pytest.mark.shared`` (so ``-m "not shared"`` leaves out exactly these)."""
    if CURRENT_TEST is not None and CURRENT_TEST.get_closest_marker("shared") is None:
        pytest.fail(f"{CURRENT_TEST.nodeid} reads ../shared/data: mark it @pytest.mark.shared")
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} is missing (the shared test data sits beside the checkout in CI)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class AppServer:
    """The real app, served in this process on a free port over a database the test can read."""

    def __init__(self, db: Database, data_dir: str | None = None):
        """Sign-in follows the database as in ``app.py serve``: on when it has users."""
        from components import ui

        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.demo = ui.build_app(db, data_dir=data_dir)
        self.demo.queue(default_concurrency_limit=16)
        self.demo.launch(server_name="127.0.0.1", server_port=self.port, prevent_thread_lock=True,
                         quiet=True, **ui.launch_kwargs(db))
        wait_http(self.url)

    def close(self) -> None:
        self.demo.close()


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python app.py ARGS`` and return the finished process (text output)."""
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)



CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def chat_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE trained on ``texts``, with a ChatML chat template.

    It uses Qwen2's own normalizer and pre-tokenizer, so that a server loading the model folder with
    AutoTokenizer (which picks Qwen2Tokenizer from the model type) tokenizes exactly alike.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML
    return fast


def make_tiny_chat_model(path: Path, root: Path) -> Path:
    """A Qwen2 causal LM (hidden 64, 2 layers, random weights) with a byte-level BPE tokenizer trained
    here in about a second on the demo data, and a ChatML chat template."""
    from transformers import Qwen2Config, Qwen2ForCausalLM
    import torch

    texts = []
    for f in sorted((root / "data" / "demo").glob("*.jsonl")):
        texts += f.read_text(encoding="utf-8").splitlines()
    texts.append((root / "data" / "principles.json").read_text(encoding="utf-8"))
    fast = chat_tokenizer(texts, vocab_size=1024)
    config = Qwen2Config(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=8192, initializer_range=0.3, tie_word_embeddings=False,
        eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    tmp = path.with_name(path.name + ".partial")
    Qwen2ForCausalLM(config).save_pretrained(tmp)
    fast.save_pretrained(tmp)
    tmp.rename(path)
    return path


# -- labels ---------------------------------------------------------------------------------------


def write_pairs(path: Path, n: int, extra: list[dict] | None = None) -> Path:
    """A TRL conversational file of ``n`` distinct pairs (plus ``extra`` rows), one per line."""
    import json

    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({
                "prompt": [{"role": "user", "content": f"Question number {i}: what is {i} plus {i}?"}],
                "chosen": [{"role": "assistant", "content": f"{i} plus {i} is {2 * i}. Answer {i} is right."}],
                "rejected": [{"role": "assistant", "content": f"It is {2 * i + 1}, I think. Answer {i} is wrong."}],
            }) + "\n")
        for row in extra or []:
            fh.write(json.dumps(row) + "\n")
    return path


# Cohen's kappa, the textbook 2x2 example: 50 items, both yes 20, A yes/B no 5, A no/B yes 10, both no 15.
# p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4.
KAPPA_TABLE = [("chosen", "chosen")] * 20 + [("chosen", "rejected")] * 5 + [("rejected", "chosen")] * 10 + \
    [("rejected", "rejected")] * 15


def fill_box(page, elem_id: str, text: str) -> None:
    """Type ``text`` into the Gradio textbox ``#elem_id`` as a person does: fill it, see it there, and
    leave the box (Gradio takes the value on change), so a click that follows sends it."""
    from playwright.sync_api import expect

    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(text)
    expect(box).to_have_value(text)
    box.press("Tab")


# -- the Compare tab in a browser ----------------------------------------------------------------

COMPARE_NAME_BOX = "#cmp-annotator textarea, #cmp-annotator input"


def sign_in(page, url: str, user: str, password: str, ready: str) -> None:
    """Open ``url`` and sign in through Gradio's login form; wait for the selector ``ready``."""
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector(ready, timeout=30_000)


def data_tab_ingest(page, source: str, name: str | None = None) -> None:
    """Load ``source`` (as ``name``, when given) from the Data tab: the box filled, the button pressed."""
    page.get_by_role("tab", name="Data").click()
    fill_box(page, "data-source", source)
    if name is not None:
        fill_box(page, "data-name", name)
    page.locator("#data-ingest").click()


def shown_row(page) -> int:
    text = page.locator("#cmp-title").inner_text()
    m = re.search(r"row (\d+)", text)
    assert m, text
    return int(m.group(1))


def name_annotator(page, name: str) -> None:
    from playwright.sync_api import expect

    page.locator(COMPARE_NAME_BOX).fill(name)
    page.keyboard.press("Escape")
    expect(page.locator("#cmp-progress")).not_to_contain_text("enter your name")


def open_compare(page, url: str, dataset: str, annotator: str, row: int | None = None) -> None:
    from playwright.sync_api import expect

    page.goto(url + f"?tab=compare&dataset={dataset}" + (f"&row={row}" if row is not None else ""))
    expect(page.locator("#cmp-title")).to_contain_text(f"{dataset} · row", timeout=20_000)
    page.locator(COMPARE_NAME_BOX).fill(annotator)
    page.keyboard.press("Escape")  # leave the box: the name is saved and keys label again
    expect(page.locator("#cmp-progress")).to_contain_text("You: ", timeout=10_000)
    expect(page.locator("#cmp-progress")).not_to_contain_text("enter your name")


def press_and_wait(page, key: str) -> None:
    """Press ``key`` and wait until another pair is on screen."""
    before = shown_row(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "before => { const m = document.querySelector('#cmp-title').innerText.match(/row (\\d+)/);"
        " return m && Number(m[1]) !== before; }", arg=before, timeout=10_000)
