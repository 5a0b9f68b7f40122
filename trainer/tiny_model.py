"""Build a tiny causal LM and its tokenizer locally, so tests and examples need no model hub.

The model is a random-init Llama (hidden 128, 2 layers, 2 heads of head_dim 64 — vLLM's CPU
attention needs head_dim >= 64) with untied embeddings (vLLM's weight reload leaves a tied
output layer stale). The tokenizer is a byte-level BPE trained on the given texts, with a
chat template, saved as a `PreTrainedTokenizerFast`. The directory loads by path in
transformers and vLLM.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]

# Each message: role marker, content, end marker; generation starts after the assistant marker.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512):  # -> PreTrainedTokenizerFast
    """A byte-level BPE tokenizer trained on `texts`, with rftkit's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|end|>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    vocab_size: int = 512,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 2,
    max_positions: int = 1024,
    seed: int = 0,
    output_init_from_input: bool = True,
) -> Path:
    """Write a random-init tiny Llama and a tokenizer trained on `texts` to `out_dir`; return it.

    With `output_init_from_input` the (untied) output layer starts as a copy of the input
    embeddings, so "copy a token from the prompt" is easy to learn for every token alike.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    head_dim = 64
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        head_dim=head_dim,
        max_position_embeddings=max_positions,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if output_init_from_input:
        with torch.no_grad():
            model.lm_head.weight.copy_(model.model.embed_tokens.weight)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def warm_up(
    model_dir: str | Path,
    pairs: list[tuple[list[dict[str, str]], list[str]]],
    *,
    steps: int = 300,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> float:
    """Supervised warm-up of the model in `model_dir` on (chat prompt, replies) pairs, saved in place.

    Each time a prompt is drawn, one of its replies is drawn uniformly (so a list of equally
    good replies teaches a distribution, not one memorised answer). The loss covers the reply
    and its end marker only. Returns the mean loss of the last 20 steps.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .chat import chat_prompt_ids

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    encoded = []
    end = [tokenizer.eos_token_id]
    for messages, replies in pairs:
        prompt_ids = chat_prompt_ids(tokenizer, messages)
        encoded.append(
            (prompt_ids, [tokenizer(r, add_special_tokens=False)["input_ids"] + end for r in replies])
        )
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    ramp = max(1, steps // 10)  # linear warm-up over 10% of the steps, then cosine decay to 10%
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda i: min(1.0, (i + 1) / ramp) * (0.55 + 0.45 * math.cos(math.pi * min(1.0, i / max(1, steps)))),
    )
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        picks = torch.randint(len(encoded), (batch_size,), generator=generator).tolist()
        choices = torch.randint(1 << 30, (batch_size,), generator=generator).tolist()
        rows = [
            (encoded[i][0], encoded[i][1][c % len(encoded[i][1])])
            for i, c in zip(picks, choices, strict=True)
        ]
        width = max(len(p) + len(r) for p, r in rows)
        ids = torch.full((batch_size, width), tokenizer.pad_token_id)
        labels = torch.full((batch_size, width), -100)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        for row, (p, r) in enumerate(rows):
            seq = p + r
            ids[row, : len(seq)] = torch.tensor(seq)
            labels[row, len(p) : len(seq)] = torch.tensor(r)
            mask[row, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    model.save_pretrained(model_dir, safe_serialization=True)
    tail = losses[-20:]
    return sum(tail) / len(tail)
