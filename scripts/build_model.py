"""Build a randomly initialised model and a tokenizer trained on generated text, without the hub.

    python scripts/build_model.py --out_dir outputs/t5_tiny --d_model 128 --num_layers 4 --num_decoder_layers 6
    python scripts/build_model.py --model_type bart --out_dir outputs/bart_tiny --num_layers 2 --num_decoder_layers 4
    python scripts/build_model.py --model_type llama --out_dir outputs/llama_tiny --num_decoder_layers 4
    (--model_type qwen2, qwen3, mistral, phi3, gemma2 or gemma3_text: the same, with that family's structural
    settings and tokenizer style; t5v1_1 (T5 v1.1 / Flan-T5), mt5 and umt5 like t5, with their gated-GELU
    feed-forward and untied, unscaled head; mbart, marian and pegasus like bart)

The folder it writes is what --model_name_or_path accepts (config.json, model.safetensors, tokenizer).
Tokenizers: T5 / LongT5 / mT5 get a Unigram like T5's SentencePiece (pad 0, eos 1, unk 2); BART a byte-level BPE
like GPT-2's (<s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4); LLaMA a byte-fallback BPE like LLaMA's
(<unk> 0, <s> 1, </s> 2, <pad> 3; adds <s>, pads on the left; also Mistral, Phi-3 and Gemma, whose own
tokenizers are SentencePiece with byte fallback); Qwen2 / Qwen3 a byte-level BPE with Qwen's special tokens;
mBART a Unigram in mBART-50's layout (<s> 0, <pad> 1, </s> 2, <unk> 3, then the language codes and <mask>;
en_XX -> de_DE); Pegasus a Unigram in Pegasus's (<pad> 0, </s> 1, <mask_1>, <mask_2>, <unk_2> .. <unk_102>,
<unk> 105); Marian a SentencePiece model with opus-mt's vocab.json (</s> 0, <unk> 1, <pad> last).
For decoder-only models, --num_decoder_layers is the depth; --num_layers (the encoder) is unused.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import (BartConfig, BartTokenizer, Gemma2Config, Gemma3TextConfig, LlamaConfig,  # noqa: E402
                          LlamaTokenizer, LongT5Config, MarianConfig, MBartConfig, MistralConfig, MT5Config,
                          PegasusConfig, Phi3Config, Qwen2Config, Qwen3Config, T5Config, T5TokenizerFast,
                          UMT5Config)

from models import MODEL_CLASSES  # noqa: E402
from util import checks  # noqa: E402
from util.data_gen import corpus_text  # noqa: E402

SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's ids: pad 0, eos 1, unk 2
MODEL_TYPES = ("t5", "t5v1_1", "mt5", "umt5", "longt5", "bart", "mbart", "marian", "pegasus", "llama", "qwen2",
               "qwen3", "mistral", "phi3", "gemma2", "gemma3_text")
DECODER_ONLY = ("llama", "qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3_text")
# T5's encoder-decoder with T5 v1.1's structure: gated-GELU feed-forward, untied LM head without the d_model**-0.5
# scale (a T5Config with tie_word_embeddings=False says so; mT5 never scales)
T5_TYPES = {"t5": (T5Config, {}), "longt5": (LongT5Config, {}),
            "t5v1_1": (T5Config, dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False)),
            "mt5": (MT5Config, dict(feed_forward_proj="gated-gelu")),
            "umt5": (UMT5Config, dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False))}
UNTIED = ("t5v1_1", "mt5", "umt5")
# Accented Latin letters stay in the SentencePiece-style vocabularies (no byte fallback in these families), so text
# beyond the generated corpus's characters survives a round trip.
LATIN1 = [chr(c) for c in range(0xC0, 0x100) if chr(c) not in "×÷"]
MBART_LANGS = ("en_XX", "de_DE")  # the generated translation task: English -> German
PEGASUS_SPECIALS = ["<pad>", "</s>", "<mask_1>", "<mask_2>", *(f"<unk_{i}>" for i in range(2, 103)), "<unk>"]


def train_unigram(lines, vocab_size: int, specials=SPECIALS, alphabet=()) -> Tokenizer:
    """A SentencePiece-style Unigram over the corpus, the specials first, with process-independent ids."""
    tok = Tokenizer(models.Unigram())
    # T5's SentencePiece folds newlines and runs of spaces into one space; dialogue turns stay readable.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(lines, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                           unk_token="<unk>", initial_alphabet=list(alphabet)))
    return canonical_unigram(tok, specials)


def unigram_vocab(tok: Tokenizer) -> list:
    return [(p, s) for p, s in json.loads(tok.to_str())["model"]["vocab"]]


def train_tokenizer(lines, vocab_size: int) -> T5TokenizerFast:
    tok = train_unigram(lines, vocab_size)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, extra_ids=0, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def canonical_unigram(tok: Tokenizer, specials=SPECIALS, band: float = 0.01) -> Tokenizer:
    """The trained Unigram with ids and scores that do not depend on the process.

    The trainer lists pieces of equal score in hash-map order (Rust's HashMap is seeded per process), gives the
    characters it must add a score of min + 1e-4 * k in that same order, and sums scores in parallel (noise at
    1e-14). Two builds of one corpus therefore permuted ~50 ids, and training on them diverged (issue 19).
    Here: added characters (single characters within `band` of the lowest score) get min + 1e-4 * k in
    code-point order, scores are rounded to 1e-8, and pieces are ordered by (-score, piece) after the specials.
    """
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    head, rest = vocab[:len(specials)], vocab[len(specials):]
    floor = min(s for _, s in rest)
    added = sorted(p for p, s in rest if len(p) == 1 and s < floor + band)
    score = {p: round(s, 8) for p, s in rest}
    score.update({p: round(floor + 1e-4 * k, 8) for k, p in enumerate(reversed(added))})
    spec["model"]["vocab"] = head + sorted(([p, s] for p, s in score.items()), key=lambda ps: (-ps[1], ps[0]))
    spec["model"]["unk_id"] = specials.index("<unk>")
    return Tokenizer.from_str(json.dumps(spec))


def _bpe_vocab_and_merges(tok: Tokenizer):
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def train_bart_tokenizer(lines, vocab_size: int) -> BartTokenizer:
    """Byte-level BPE (GPT-2 / BART style): every byte is in the alphabet, so nothing is unknown."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    vocab, merges = _bpe_vocab_and_merges(tok)
    return BartTokenizer(vocab=vocab, merges=merges)


def train_llama_tokenizer(lines, vocab_size: int) -> LlamaTokenizer:
    """SentencePiece-style BPE with byte fallback (LLaMA style); adds <s>, pads on the left for generation."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=max(vocab_size - 256, 100),
                                                       special_tokens=["<unk>", "<s>", "</s>", "<pad>"]))
    vocab, merges = _bpe_vocab_and_merges(tok)
    for b in range(256):  # byte-fallback pieces, so characters never seen in training survive a round trip
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    return LlamaTokenizer(vocab=vocab, merges=merges, pad_token="<pad>", add_bos_token=True, add_eos_token=False,
                          padding_side="left")


def train_qwen2_tokenizer(lines, vocab_size: int):
    """Byte-level BPE with Qwen2's special tokens (no BOS; <|endoftext|> ends and pads)."""
    from transformers import Qwen2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(lines, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    vocab, merges = _bpe_vocab_and_merges(tok)
    return Qwen2Tokenizer(vocab=vocab, merges=merges, padding_side="left")


def train_mbart_tokenizer(lines, vocab_size: int):
    """mBART-50's tokenizer: a Unigram in SentencePiece's order (<unk>, <s>, </s>), which MBart50Tokenizer lays out
    as fairseq does (<s> 0, <pad> 1, </s> 2, <unk> 3, pieces, language codes, <mask>); inputs are
    [en_XX] text </s>, targets [de_DE] text </s>."""
    from transformers import MBart50Tokenizer

    vocab = unigram_vocab(train_unigram(lines, vocab_size, ["<unk>", "<s>", "</s>"], LATIN1))
    return MBart50Tokenizer(vocab=vocab, bos_token="<s>", src_lang=MBART_LANGS[0], tgt_lang=MBART_LANGS[1])


def train_pegasus_tokenizer(lines, vocab_size: int):
    """Pegasus's tokenizer: a Unigram with Pegasus's reserved ids first (<pad> 0, </s> 1, <mask_1>, <mask_2>,
    <unk_2> .. <unk_102>, <unk> 105)."""
    from transformers import PegasusTokenizer

    return PegasusTokenizer(vocab=unigram_vocab(train_unigram(lines, vocab_size, PEGASUS_SPECIALS, LATIN1)))


def train_marian_tokenizer(lines, vocab_size: int):
    """opus-mt's tokenizer: a SentencePiece model (source and target alike) and a vocab.json mapping its pieces to
    the model's ids (</s> 0, <unk> 1, pieces, <pad> last, which also starts the decoder)."""
    import io
    import tempfile

    import sentencepiece as spm
    from transformers import MarianTokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
                                   model_type="unigram", character_coverage=1.0, required_chars="".join(LATIN1),
                                   hard_vocab_limit=False, num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    vocab = {p: i for i, p in enumerate(["</s>", "<unk>", *pieces, "<pad>"])}
    with tempfile.TemporaryDirectory() as d:  # MarianTokenizer reads files; it keeps the model in memory
        spm_file, vocab_file = os.path.join(d, "spm.model"), os.path.join(d, "vocab.json")
        with open(spm_file, "wb") as f:
            f.write(model.getvalue())
        with open(vocab_file, "w") as f:
            json.dump(vocab, f, ensure_ascii=False)
        return MarianTokenizer(source_spm=spm_file, target_spm=spm_file, vocab=vocab_file, source_lang="en",
                               target_lang="de")


def make_config(model_type, tokenizer, d_model, d_ff, num_heads, d_kv, num_layers, num_decoder_layers,
                dropout=0.1, **exit_settings):
    if model_type in T5_TYPES:
        cls, extra = T5_TYPES[model_type]
        return cls(
            vocab_size=len(tokenizer), d_model=d_model, d_ff=d_ff, num_heads=num_heads, d_kv=d_kv,
            num_layers=num_layers, num_decoder_layers=num_decoder_layers, dropout_rate=dropout,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id, **{"feed_forward_proj": "relu", **extra},
            **exit_settings,
        )
    if model_type in BART_TYPES:
        # the family's structural settings (BART_TYPES); layer norm placement and positions come with HF's classes:
        # mBART and Pegasus pre-LN with final norms, Marian post-LN, Marian and Pegasus sinusoidal positions
        cls, extra = BART_TYPES[model_type]
        return cls(**{
            "vocab_size": len(tokenizer), "d_model": d_model, "encoder_layers": num_layers,
            "decoder_layers": num_decoder_layers, "encoder_attention_heads": num_heads,
            "decoder_attention_heads": num_heads, "encoder_ffn_dim": d_ff, "decoder_ffn_dim": d_ff,
            "max_position_embeddings": 1024, "dropout": dropout, "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.eos_token_id, "forced_eos_token_id": tokenizer.eos_token_id,
            **extra(tokenizer), **exit_settings})
    if model_type in DECODER_ONLY:
        # the family's structural settings: Qwen2 / Qwen3 tie their head at small sizes (q/k/v biases, q/k norms
        # are built in); Mistral slides a 4,096-token window in every layer, Phi-3-mini 2,047 tokens (its qkv and
        # gate/up projections are fused); Gemma 2 alternates 4,096-token sliding layers with global ones and
        # soft-caps attention (50) and logits (30), Gemma 3 1B has five 512-token sliding layers per global one;
        # Gemma scales attention by query_pre_attn_scalar**-0.5 (the head size here)
        gemma = dict(tie_word_embeddings=True, query_pre_attn_scalar=d_kv)
        cls, extra = {"llama": (LlamaConfig, dict(tie_word_embeddings=False)),
                      "qwen2": (Qwen2Config, dict(tie_word_embeddings=True)),
                      "qwen3": (Qwen3Config, dict(tie_word_embeddings=True)),
                      "mistral": (MistralConfig, dict(tie_word_embeddings=False, sliding_window=4096)),
                      "phi3": (Phi3Config, dict(tie_word_embeddings=False, sliding_window=2047)),
                      "gemma2": (Gemma2Config, dict(gemma, sliding_window=4096, attn_logit_softcapping=50.0,
                                                    final_logit_softcapping=30.0)),
                      "gemma3_text": (Gemma3TextConfig, dict(gemma, sliding_window=512))}[model_type]
        return cls(
            vocab_size=len(tokenizer), hidden_size=d_model, intermediate_size=d_ff,
            num_hidden_layers=num_decoder_layers, num_attention_heads=num_heads,
            num_key_value_heads=max(1, num_heads // 2), head_dim=d_kv,
            max_position_embeddings=2048, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, **extra, **exit_settings,
        )
    raise ValueError(f"model_type {model_type!r} is not one of {MODEL_TYPES}")


# Scaled embeddings, activations, position counts and decoder start as published (mbart-large-50, opus-mt,
# pegasus-large): BART and mBART start the decoder with </s>, Marian and Pegasus with <pad>. No forced BOS/EOS for
# BART (the builder's plain greedy decoding, as before); the other three keep their published forced EOS.
BART_TYPES = {
    "bart": (BartConfig, lambda tok: dict(forced_bos_token_id=None, forced_eos_token_id=None)),
    "mbart": (MBartConfig, lambda tok: dict(scale_embedding=True)),
    "marian": (MarianConfig, lambda tok: dict(scale_embedding=True, activation_function="swish",
                                              max_position_embeddings=512, decoder_start_token_id=tok.pad_token_id,
                                              share_encoder_decoder_embeddings=True)),
    "pegasus": (PegasusConfig, lambda tok: dict(scale_embedding=True, activation_function="relu",
                                                decoder_start_token_id=tok.pad_token_id)),
}
TOKENIZERS = {"bart": train_bart_tokenizer, "mbart": train_mbart_tokenizer, "marian": train_marian_tokenizer,
              "pegasus": train_pegasus_tokenizer, "qwen2": train_qwen2_tokenizer, "qwen3": train_qwen2_tokenizer}


# An instruct checkpoint's chat form (ChatML, as SmolLM2 and Qwen2 write it), for --chat_template
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build(out_dir, vocab_size=4000, d_model=128, d_ff=512, num_heads=4, d_kv=32, num_layers=4,
          num_decoder_layers=6, corpus_lines=20000, seed=0, model_type="t5", dropout=0.1, chat_template=False,
          **exit_settings):
    lines = corpus_text(seed, corpus_lines)
    try:
        tokenizer = TOKENIZERS.get(model_type, train_llama_tokenizer if model_type in DECODER_ONLY else
                                   train_tokenizer)(lines, vocab_size)
    except Exception as e:  # the tokenizers trainer raises a bare Exception
        if "not large enough" not in str(e):
            raise
        raise checks.InputError(f"--vocab_size {vocab_size} is too small for the characters of the corpus: "
                                f"{e}") from None
    if chat_template:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tokenizer.chat_template = CHATML
    config = make_config(model_type, tokenizer, d_model, d_ff, num_heads, d_kv, num_layers, num_decoder_layers,
                         dropout, **exit_settings)
    import torch

    torch.manual_seed(seed)
    model = MODEL_CLASSES[config.model_type](config)
    if model_type in UNTIED:  # transformers 5 ties every T5 head built from a config; checkpoints have their own
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))  # HF's init of a T5 head
    if model_type == "mbart":  # mBART-50 starts every target with its language code (a generation setting)
        model.generation_config.forced_bos_token_id = tokenizer.convert_tokens_to_ids(MBART_LANGS[1])
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model, tokenizer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--model_type", choices=MODEL_TYPES, default="t5")
    p.add_argument("--vocab_size", type=int, default=4000)
    p.add_argument("--d_model", type=int, default=128)
    p.add_argument("--d_ff", type=int, default=512)
    p.add_argument("--num_heads", type=int, default=4, help="attention heads (LLaMA: K/V heads are half of them)")
    p.add_argument("--d_kv", type=int, default=32, help="head dimension (T5 / LongT5 / LLaMA)")
    p.add_argument("--num_layers", type=int, default=4, help="encoder layers (unused for llama)")
    p.add_argument("--num_decoder_layers", type=int, default=6)
    p.add_argument("--corpus_lines", type=int, default=20000, help="generated lines the tokenizer is trained on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dropout", type=float, default=0.1,
                   help="T5 / BART-family dropout; 0 for the task demo, whose small models underfit (issue 18)")
    p.add_argument("--chat_template", action="store_true",
                   help="decoder-only: the tokenizer gets ChatML's chat template and its two special tokens, as an "
                        "instruct checkpoint has (for --use_chat_template)")
    a = p.parse_args(argv)
    if a.chat_template and a.model_type not in DECODER_ONLY:
        p.error(f"--chat_template is for decoder-only models, not {a.model_type}")
    for flag in ("vocab_size", "d_model", "d_ff", "num_heads", "d_kv", "num_layers", "num_decoder_layers",
                 "corpus_lines"):
        if getattr(a, flag) < 1:
            p.error(f"--{flag} must be >= 1, got {getattr(a, flag)}")
    if a.model_type not in T5_TYPES and a.d_model % a.num_heads:
        p.error(f"--d_model {a.d_model} must be a multiple of --num_heads {a.num_heads} for {a.model_type}")
    checks.writable_dir(a.out_dir, "--out_dir")
    model, tok = build(**vars(a))
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out_dir}: {a.model_type} {n / 1e6:.2f}M parameters, vocab {len(tok)}")


if __name__ == "__main__":
    checks.run_cli(main, "build_model.py")
