"""The chat tokenizer of the locally made Qwen2 models (tests' tiny one, the benchmark's 0.5B one)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

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
