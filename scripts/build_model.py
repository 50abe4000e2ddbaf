"""Build a randomly initialised T5 and a tokenizer trained on generated text, without the hub.

    python scripts/build_model.py --out_dir outputs/t5_tiny --d_model 128 --num_layers 4 --num_decoder_layers 6

The folder it writes is what --model_name_or_path accepts (config.json, model.safetensors, tokenizer).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import T5Config, T5TokenizerFast  # noqa: E402

from models import EffT5ForConditionalGeneration  # noqa: E402
from util.data_gen import corpus_text  # noqa: E402

SPECIALS = ["<pad>", "</s>", "<unk>"]  # T5's ids: pad 0, eos 1, unk 2


def train_tokenizer(lines, vocab_size: int) -> T5TokenizerFast:
    tok = Tokenizer(models.Unigram())
    # T5's SentencePiece folds newlines and runs of spaces into one space; dialogue turns stay readable.
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(r"\s+"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(lines, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                                           unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, extra_ids=0, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build(out_dir, vocab_size=4000, d_model=128, d_ff=512, num_heads=4, d_kv=32, num_layers=4,
          num_decoder_layers=6, corpus_lines=20000, seed=0, **exit_settings):
    tokenizer = train_tokenizer(corpus_text(seed, corpus_lines), vocab_size)
    config = T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_ff=d_ff, num_heads=num_heads, d_kv=d_kv,
        num_layers=num_layers, num_decoder_layers=num_decoder_layers, dropout_rate=0.1,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, feed_forward_proj="relu", tie_word_embeddings=True,
        **exit_settings,
    )
    import torch

    torch.manual_seed(seed)
    model = EffT5ForConditionalGeneration(config)
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return model, tokenizer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", required=True)
    p.add_argument("--vocab_size", type=int, default=4000)
    p.add_argument("--d_model", type=int, default=128)
    p.add_argument("--d_ff", type=int, default=512)
    p.add_argument("--num_heads", type=int, default=4)
    p.add_argument("--d_kv", type=int, default=32)
    p.add_argument("--num_layers", type=int, default=4, help="encoder layers")
    p.add_argument("--num_decoder_layers", type=int, default=6)
    p.add_argument("--corpus_lines", type=int, default=20000, help="generated lines the tokenizer is trained on")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    model, tok = build(**vars(a))
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.out_dir}: T5 {n / 1e6:.2f}M parameters, vocab {len(tok)}")


if __name__ == "__main__":
    main()
