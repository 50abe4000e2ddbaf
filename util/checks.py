"""Checks of user input where it is loaded, shared by the three entry points, the benchmark, build_model and gpt_eval.

Every failure is an `InputError` (a ValueError) whose message names the file, the line or example, and the
problem, instead of the traceback of the library that tripped over it. The happy path stays cheap: a data
file is parsed line by line only after `datasets` failed to read it, to say where and why; a failure that the
files do not explain (the disk, the cache, the library) is not the user's and keeps its own exception.

`run_cli` is the boundary of every script: an InputError (or a missing file) ends with one line
`<script>: error: <message>` and exit status 2, as argparse does for bad flags; anything else is a bug and keeps
its traceback.
"""

import csv
import json
import logging
import math
import os
import tempfile
from collections import Counter

from util.errors import InputError

logger = logging.getLogger(__name__)




def require_file(path: str, flag: str) -> str:
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
        raise FileNotFoundError(f"{flag} {path} {what}")
    with open(path, "rb") as f:  # stops at the first non-blank line
        if not any(line.strip() for line in f):
            raise InputError(f"{flag} {path} is empty")
    return path


NL = b"\n"
NOT_UTF8 = "is not UTF-8; re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8"


def decode_utf8(data: bytes, path: str, flag: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{flag} {path}: line {data[:e.start].count(NL) + 1} {NOT_UTF8}") from None


def check_utf8(path: str, flag: str, chunk: int = 1 << 24) -> None:
    """Some readers (pyarrow's JSON) load invalid UTF-8 and fail later, far from the file; decoding is cheap."""
    import codecs

    decoder, lines = codecs.getincrementaldecoder("utf-8")(), 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as e:  # e.start counts from this chunk (after at most 3 carried bytes)
                raise InputError(f"{flag} {path}: line {lines + data[:e.start].count(NL) + 1} {NOT_UTF8}") from None
            lines += data.count(NL)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputError(f"{flag} {path}: line {lines + 1} {NOT_UTF8}") from None


def read_text(path: str, flag: str) -> str:
    require_file(path, flag)
    with open(path, "rb") as f:
        return decode_utf8(f.read(), path, flag)


def _json_line_problem(lines) -> str | None:
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            return f"line {n} is not valid JSON ({e.msg}, column {e.colno})"
        if not isinstance(obj, dict):
            return f"line {n} is a JSON {type(obj).__name__}, not an object with one field per column"
    return None


def _csv_problem(text: str) -> str | None:
    reader = csv.reader(text.splitlines(keepends=True))
    header = next(reader, None)
    try:
        for row in reader:
            if row and len(row) != len(header):
                return (f"line {reader.line_num} has {len(row)} fields where the header has {len(header)} "
                        f"({header}); quote fields that contain commas")
    except csv.Error as e:
        return f"line {reader.line_num}: {e}"
    return None


def first_problem(path: str, flag: str) -> str | None:
    """What makes a json / jsonl / csv data file unreadable, with its line, or None if nothing is found."""
    text = read_text(path, flag)
    if path.endswith(".csv"):
        return _csv_problem(text)
    lines = text.splitlines()
    first = next(line for line in lines if line.strip())
    if _json_line_problem([first]) is None:  # one object per line
        return _json_line_problem(lines)
    try:
        doc = json.loads(text)
    except ValueError as e:
        return f"line {e.lineno} is not valid JSON ({e.msg}, column {e.colno})"
    if not (isinstance(doc, list) and all(isinstance(r, dict) for r in doc)):
        return "a JSON document must be a list of objects, one per example (or use JSON lines)"
    return None


def _columns(path: str) -> list[str]:
    """The column names of a json / jsonl / csv data file that first_problem found nothing wrong with."""
    text = read_text(path, "")
    if path.endswith(".csv"):
        return next(csv.reader(text.splitlines(keepends=True)), [])
    lines = [line for line in text.splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines] if _json_line_problem(lines[:1]) is None else json.loads(text)
    return list(dict.fromkeys(k for row in rows for k in row))


def files_problem(files: dict) -> str | None:
    """What in the content of {split: path} makes `datasets` fail to read them, or None when the files look fine
    (the reader failed for another reason: the disk, the cache, the library)."""
    for split, f in files.items():
        problem = first_problem(f, f"--{split}_file")
        if problem:
            return f"--{split}_file {f}: {problem}"
    cols = {split: _columns(f) for split, f in files.items()}
    (first, c0), *rest = cols.items()
    for split, c in rest:
        if set(c) != set(c0):
            return (f"--{split}_file {files[split]} has the columns {sorted(c)} and --{first}_file {files[first]} "
                    f"has {sorted(c0)}: all splits must have the same columns")
    return None


def load_data_files(files: dict, cache_dir=None):
    """{split: path} of json / jsonl / csv files -> DatasetDict, or an InputError naming the file and line.

    When `datasets` fails, the files are parsed again line by line: a problem found there is the user's
    (InputError, with the reader's exception as its cause); otherwise the reader's exception is raised unchanged."""
    import datasets

    for split, f in files.items():
        require_file(f, f"--{split}_file")
        check_utf8(f, f"--{split}_file")
    exts = {f.rsplit(".", 1)[-1].replace("jsonl", "json") for f in files.values()}
    if len(exts) > 1:
        raise InputError(f"Data files must share one format, got {sorted(exts)}")
    try:
        raw = datasets.load_dataset(exts.pop(), data_files=files, cache_dir=cache_dir)
    except Exception as e:
        problem = files_problem(files)
        if problem:
            raise InputError(problem) from e
        raise  # not the content of the files: the reader's own error, with its traceback
    for split, ds in raw.items():
        if len(ds) == 0:
            raise InputError(f"--{split}_file {files[split]} holds no examples")
    return raw


def read_json_document(path: str, flag: str):
    """A whole-file JSON document (e.g. official SQuAD), or None when the file is JSON lines."""
    text = read_text(path, flag)
    try:
        return json.loads(text)
    except ValueError as e:
        if e.msg == "Extra data" and _json_line_problem(text.splitlines()[:1]) is None:
            return None
        raise InputError(f"{flag} {path}: line {e.lineno} is not valid JSON ({e.msg}, column {e.colno})") from None


def read_jsonl(path: str, flag: str) -> list[dict]:
    text = read_text(path, flag)
    problem = _json_line_problem(text.splitlines())
    if problem:
        raise InputError(f"{flag} {path}: {problem}")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def text_problem(values: dict) -> str:
    """'' when every {label: value} is non-empty text, else the first problem; a value of the wrong type raises."""
    for label, value in values.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"a missing (None/NaN) {label}"
        if not isinstance(value, str):
            raise InputError(f"{label} is {type(value).__name__} ({str(value)[:40]}), not text")
        if not value.strip():
            return f"an empty {label}"
    return ""


def usable_rows(ds, split: str, problem, what: str = "source or target"):
    """The examples without a problem; the others are dropped with a warning that counts them by reason.

    problem(example) -> '' or why the example cannot be used (e.g. text_problem of its fields); it may raise
    InputError for data that is wrong rather than missing. Computed as a column (no side effects in the mapped
    function), so a cached rerun warns the same."""
    def problems(batch, indices):
        out = []
        for j, i in enumerate(indices):
            try:
                out.append(problem({c: batch[c][j] for c in batch}))
            except InputError as e:
                raise InputError(f"{split}: example {i + 1}: {e}") from None
        return {"_problem": out}

    col = ds.map(problems, batched=True, with_indices=True, remove_columns=ds.column_names,
                 desc=f"checking {split}")["_problem"]
    bad = Counter(p for p in col if p)
    if not bad:
        return ds
    breakdown = ", ".join(f"{n} with {p} (first: example {col.index(p) + 1})" for p, n in bad.items())
    if sum(bad.values()) == len(ds):
        empty = all(p.startswith(("an empty", "a missing")) for p in bad)
        raise InputError(f"{split}: " + (f"every example has an empty {what}" if empty else "no usable example")
                         + f": {breakdown}")
    logger.warning(f"{split}: dropped {sum(bad.values())} of {len(ds)} examples: {breakdown}")
    return ds.select([i for i, p in enumerate(col) if not p])


def writable_dir(path: str, flag: str) -> str:
    """Create the folder if needed and prove it can be written, before hours of work go into it."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise InputError(f"{flag} {path} cannot be written: {e.strerror or e}") from None
    return path


def looks_local(path: str) -> bool:
    """A path the hub could never resolve: absolute, relative with ./ or ~, or with more than one '/'."""
    return path.startswith(("/", ".", "~")) or path.count("/") > 1


def require_model_path(path: str, flag: str = "--model_name_or_path") -> str:
    if looks_local(path) and not os.path.exists(os.path.expanduser(path)):
        raise InputError(f"{flag} {path}: no such folder (and not a hub id)")
    if os.path.isdir(path) and not any(os.path.isfile(os.path.join(path, f)) for f in
                                       ("config.json", "adapter_config.json")) and not \
            any(f.endswith(".gguf") for f in os.listdir(path)):
        raise InputError(f"{flag} {path} holds no config.json (nor adapter_config.json): not a saved model folder")
    return path


def run_cli(main, prog: str):
    """Run a script's main(); bad input ends with one line naming the problem and exit status 2, as argparse does
    for bad flags (other errors keep their traceback: they are bugs to report)."""
    import sys

    try:
        main()
    except (InputError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
