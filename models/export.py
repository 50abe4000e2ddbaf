"""Checkpoints that load anywhere: the code an early-exit model runs, saved beside its weights.

HF's custom-code convention: `config.json` maps an Auto class to `<file>.<class>` (`auto_map`), the file and the
files it imports relatively lie in the checkpoint folder, and `AutoModelFor*.from_pretrained(dir,
trust_remote_code=True)` imports them from there. HF finds those files by their `from .x import` lines, so the
runtime (modeling, adapters, engine, methods, the settings checker) is copied flat into the folder with this
repository's package imports (`from models.engine import`, `from util.bmm import`, `from additional_args
import`) rewritten as relative ones. Files already relative (a model that was itself loaded this way) are copied
as they are. Nothing else travels: entry points, trainers, data generators and scripts stay here.
"""

import ast
import importlib.util
import os
import re

PACKAGES = ("models", "util", "additional_args")
_ABSOLUTE = re.compile(r"^(\s*)from (?:(?:models|util)\.(\w+)|(additional_args)) import", re.M)


def _source_file(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of {module} to save beside the weights")
    return spec.origin


def _flat_name(path: str) -> str:
    """models/engine.py -> engine; additional_args/__init__.py -> additional_args."""
    base = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) if base == "__init__.py" else base[:-3]


def _imports(path: str) -> list[str]:
    """The files `path` imports from this repository's packages, or relatively (every import, in functions too)."""
    out = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # a flat copy: its neighbours
            out.append(os.path.join(os.path.dirname(path), f"{node.module}.py"))
        elif node.module and node.module.split(".")[0] in PACKAGES:
            if node.module in ("models", "util"):
                raise ValueError(f"{path}: 'from {node.module} import ...' cannot be saved as remote code; import "
                                 f"from the module itself")
            out.append(_source_file(node.module))
    return out


def runtime_files(module: str) -> dict[str, str]:
    """{flat file name: source path} of `module` and everything it imports from this repository."""
    todo, seen = [_source_file(module)], {}
    while todo:
        path = todo.pop()
        name = f"{_flat_name(path)}.py"
        if name in seen:
            if seen[name] != path:
                raise ValueError(f"{path} and {seen[name]} would both be saved as {name}")
            continue
        seen[name] = path
        todo += _imports(path)
    return seen


def save_code(model_cls: type, save_directory: str) -> list[str]:
    """Write the files `model_cls` needs into `save_directory`; returns their names."""
    files = runtime_files(model_cls.__module__)
    for name, path in files.items():
        text = _ABSOLUTE.sub(lambda m: f"{m.group(1)}from .{m.group(2) or m.group(3)} import",
                             open(path, encoding="utf-8").read())
        with open(os.path.join(save_directory, name), "w", encoding="utf-8") as f:
            f.write(text)
    return sorted(files)


def auto_map(model_cls: type, is_encoder_decoder: bool) -> dict:
    ref = f"{model_cls.__module__.rsplit('.', 1)[-1]}.{model_cls.__name__}"
    if is_encoder_decoder:
        return {"AutoModelForSeq2SeqLM": ref}
    # `transformers serve` (5.x) loads a checkpoint with AutoModelForDecision, else with the transformers class named
    # by config.architectures[0]; only the Auto class reads auto_map, so a causal LM is mapped there too.
    return {"AutoModelForCausalLM": ref, "AutoModelForDecision": ref}
