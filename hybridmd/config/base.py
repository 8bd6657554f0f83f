"""What every input section shares: the strict base model, the error that lists every problem
with its key and a hint, the path checks, and reading and validating a YAML input.

File paths in an input are resolved relative to the directory of the YAML file. Every numeric
key states its range (an upper bound too: a huge value is a typo, never a run) and refuses
.inf, .nan and YAML booleans (``yes`` is not 1); a key given twice in the YAML file is refused
rather than the last one silently winning.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Tag,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.fields import FieldInfo

from hybridmd.data import interpolator_names
from hybridmd.errors import InputError, unusable_file

#: upper bounds of keys whose huge values are absurd (a typo, a runaway script): more would
#: hang, exhaust memory or crash a library long after the input was accepted
MAX_THREADS = 256  #: threads and processes of one fit or training
MAX_WORKERS = 256  #: monitor processes
MAX_REPLICAS = 10_000
MAX_QUEUE = 10_000  #: frames waiting for a worker
MAX_STEPS = 10**10  #: MD steps of a run
MAX_COUNT = 10**9  #: frames, segments, windows
MAX_EPOCHS = 10**6  #: epochs, batches, patience
MAX_BATCH = 100_000  #: windows or segments in one optimisation step
MAX_FIT_FRAMES = 100_000  #: frames one force-field fit uses
MAX_SEED = 2**31 - 1
MAX_TEMPERATURE_K = 1e6
MAX_TIME_FS = 1e12  #: durations and coupling times, fs
MAX_SECONDS = 1e7  #: wall-time intervals and time-outs (about four months)
MAX_LENGTH_A = 1e5  #: lengths and tolerances, Å
MAX_RATE = 1e3  #: frictions, 1/fs


class ConfigError(InputError):
    """An input that cannot be run; the message lists every problem with its key and a hint."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid input {source}:"]
        lines += [f"  - {where}: {what}" for where, what in problems]
        super().__init__("\n".join(lines))


def _admits_bool(annotation: Any) -> bool:
    """Whether a field of this annotation may hold true/false (a bool, Any, a section)."""
    if annotation is bool or annotation is Any:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if get_origin(annotation) is Literal:
        return any(isinstance(a, bool) for a in get_args(annotation))
    return any(_admits_bool(a) for a in get_args(annotation))


def is_numeric(annotation: Any) -> bool:
    """Whether a field of this annotation holds numbers (int or float, maybe in a list)."""
    if annotation in (int, float):
        return True
    return get_origin(annotation) is not Literal and any(is_numeric(a)
                                                         for a in get_args(annotation))


class YamlBoolean:
    """A YAML boolean (true, yes, on, ...) found where a number goes: no number validates it,
    so the error is reported at its own key (pydantic would read true as 1)."""

    def __init__(self, value: bool):
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _marked(value: Any) -> Any:
    """``value`` with every bool in it (in a list too) a ``YamlBoolean``."""
    if isinstance(value, bool):
        return YamlBoolean(value)
    if isinstance(value, list):
        return [_marked(v) for v in value]
    return value


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment,
    numbers are finite (no .inf or .nan) and never YAML booleans."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        """``timestep_fs: yes`` is an error at ``timestep_fs``, not a run at 1 fs."""
        if not isinstance(data, dict):
            return data
        numeric = {name for name, field in cls.model_fields.items()
                   if is_numeric(field.annotation) and not _admits_bool(field.annotation)}
        return {k: _marked(v) if k in numeric else v for k, v in data.items()}


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """``path`` with ``~`` expanded, relative to the input file's folder when not absolute."""
    base = (info.context or {}).get("base_dir")
    path = Path(path).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def existing_file(path: Path, info: ValidationInfo) -> Path:
    """The resolved path of a file the input reads; a ValueError when it is not one."""
    path = resolve_path(path, info)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file")
    if not path.exists():
        raise ValueError(
            f"file not found: {path} (relative paths are taken from the input file's folder)"
        )
    problem = unusable_file(path)
    if problem:
        raise ValueError(problem)
    return path


def known_or_file(spec: str, names: list[str], what: str, info: ValidationInfo,
                  classical: tuple[str, ...] = ()) -> str:
    """A shipped name, a classical method, or an existing file (resolved to its path)."""
    if spec in names or spec in classical:
        return spec
    path = resolve_path(Path(spec), info)
    problem = unusable_file(path)
    if problem:
        raise ValueError(problem)
    if not path.is_file():
        known = ", ".join([*classical, *names]) or "none"
        raise ValueError(f"no {what} file {path} and no shipped {what} named {spec!r} "
                         f"(known: {known})")
    return str(path)


def interpolator_spec(spec: str, info: ValidationInfo) -> str:
    """An interpolator: a shipped network's name, a checkpoint file or a classical spline."""
    return known_or_file(spec, interpolator_names(), "interpolator", info,
                         ("linear", "cubic", "quintic"))


M = TypeVar("M", bound=BaseModel)

_HINTS = {
    "missing": "this key is required: add it",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than_equal": "use a smaller value",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "finite_number": "write a finite number (not .inf or .nan)",
    "model_type": "this key holds a section of keys, not a single value",
    "dict_type": "this key holds a section of keys, not a single value",
}


#: errors of a value out of a key's bounds, and of any numeric value: their messages end
#: with the key's range
_BOUNDS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_RANGED = _BOUNDS | {"finite_number", "int_parsing", "int_from_float", "float_parsing",
                     "value_error"}


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation can hold (unwrapping Optional and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


def _tag(section: type[BaseModel]) -> Any:
    field = section.model_fields.get("type")
    args = getattr(field.annotation, "__args__", ()) if field else ()
    return args[0] if len(args) == 1 else None


def _tagged(annotation: Any) -> dict[str, list[type[BaseModel]]]:
    """The members of a union with a callable discriminator, by their ``Tag``."""
    found: dict[str, list[type[BaseModel]]] = {}
    for arg in get_args(annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if isinstance(meta, Tag):
                found[meta.tag] = _models_in(get_args(arg)[0])
    return found


def _walk(model: type[BaseModel], loc: tuple[Any, ...]
          ) -> tuple[str, list[type[BaseModel]]]:
    """Readable key path of an error location and the sections that hold its last key.

    Pydantic puts the discriminator value of a tagged union into the location
    (``calculator.sgdml.model``, ``dynamics.initial_momenta.file.file``); it is dropped from
    the path users see.
    """
    sections: list[type[BaseModel]] = [model]
    tags: dict[str, list[type[BaseModel]]] = {}
    shown: list[str] = []
    for i, part in enumerate(loc):
        if part in tags:  # the tag of a callable-discriminated union: not a key
            sections, tags = tags[part], {}
            continue
        shown.append(str(part))
        if i == len(loc) - 1:
            if i and any(_tag(s) == part for s in sections):
                shown.pop()  # a section's own check: reported at the section
            break
        if any(part in s.model_fields for s in sections):
            annotations = [s.model_fields[part].annotation for s in sections
                           if part in s.model_fields]
            tags = {k: v for a in annotations for k, v in _tagged(a).items()}
            sections = [m for a in annotations for m in _models_in(a)]
        elif any(_tag(s) == part for s in sections):
            sections = [s for s in sections if _tag(s) == part]
            shown.pop()
    return ".".join(shown) or "(top level)", sections


def _describe(model: type[BaseModel], err: dict[str, Any]) -> tuple[str, str]:
    where, sections = _walk(model, tuple(err["loc"]))
    allowed = sorted({k for s in sections for k in s.model_fields})
    kind = err["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(where.rsplit(".", 1)[-1], allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        return where, f"unknown key; {hint}"
    if kind == "union_tag_invalid":
        return where, f"unknown type {err['ctx']['tag']!r}; known: {err['ctx']['expected_tags']}"
    if kind == "union_tag_not_found":
        kinds = "ase | ipi" if where.startswith("engine") else "sgdml | dft | xtb | ase | socket"
        return where, f"missing `type:`; say which kind, e.g. type: {kinds}"
    if kind == "literal_error":
        return where, f"got {err['input']!r}; allowed: {err['ctx']['expected']}"
    name = str(err["loc"][-1]) if err["loc"] else ""
    span = _allowed_range(sections, name)
    if isinstance(err.get("input"), YamlBoolean):
        return where, (f"got {err['input']!r}, a YAML boolean (true/false, yes/no, on/off), "
                       "where a number goes; write the number" + (f"; {span}" if span else ""))
    msg = err["msg"].removeprefix("Value error, ")
    hint = _HINTS.get(kind)
    shown = kind == "missing" or isinstance(err.get("input"), dict) or kind == "value_error"
    got = "" if shown else f" (got {err['input']!r})"
    if kind not in _RANGED:
        span = None
    elif span and kind in _BOUNDS:  # the range says it all
        hint = None
    hints = [h for h in (hint, span) if h]
    return where, f"{msg}{got}" + "".join(f"; {h}" for h in hints)


def _allowed_range(sections: list[type[BaseModel]], name: str) -> str | None:
    """``allowed: at least 1, at most 256``: the bounds of a numeric key, or None."""
    fields = [s.model_fields[name] for s in sections if name in s.model_fields]
    return bounds_text(fields[0]) if fields else None


def bounds_text(field: FieldInfo) -> str | None:
    """The range a numeric field allows, in words (None when it states none)."""
    words = []
    for meta in field.metadata:
        for attr, text in (("gt", "above"), ("ge", "at least"), ("lt", "below"),
                           ("le", "at most")):
            bound = getattr(meta, attr, None)
            if bound is not None:
                words.append(f"{text} {bound}" if isinstance(bound, int) else
                             f"{text} {bound:g}")
    return f"allowed: {', '.join(words)}" if words else None


def parse_config(data: Any, model: type[M], source: str, base_dir: Path | None = None) -> M:
    """Validate a parsed YAML document against ``model``; raise ConfigError listing all problems.

    Files the input reads are found relative to ``base_dir`` (the input file's folder);
    outputs go relative to the working directory, by default to ``runs/<input name>``.
    """
    if not isinstance(data, dict):
        raise ConfigError(source, [("(top level)", "expected a mapping of sections (key: value)")])
    context = {"base_dir": base_dir, "input_name": Path(source).stem}
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(model, e) for e in exc.errors()]) from None


def read_input(path: str | Path) -> Any:
    """The parsed YAML document of an input file; ConfigError when it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(str(path), [("(file)", "this is a folder; give the YAML input file")])
    if not path.exists():
        raise ConfigError(str(path), [("(file)", "input file not found; check the path")])
    problem = unusable_file(path)
    if problem:
        raise ConfigError(str(path), [("(file)", problem.removeprefix(f"{path} ")
                                       + " (the YAML input file)")])
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = ("not a text file" if isinstance(exc, UnicodeDecodeError)
               else exc.strerror or str(exc))
        raise ConfigError(str(path), [("(file)", f"cannot read it ({why}); give the YAML "
                                                 "input file")]) from None
    try:
        duplicates = duplicate_keys(yaml.compose(text, Loader=yaml.SafeLoader))
        if duplicates:
            raise ConfigError(str(path), duplicates)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            str(path), [(where, f"malformed YAML: {problem}; check indentation and colons")]
        ) from None


def duplicate_keys(node: yaml.Node | None, where: tuple[str, ...] = (),
                   seen: set[int] | None = None) -> list[tuple[str, str]]:
    """Every key given twice in one section of a composed YAML document, as problems.

    YAML loaders keep the last of two equal keys without a word: a second ``timestep_fs``
    would change the time step, a second ``dynamics:`` drop the first one's keys. The keys a
    merge (``<<: *anchor``) brings in may be overridden; they are not counted.
    """
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:
        return []
    seen.add(id(node))
    found: list[tuple[str, str]] = []
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += duplicate_keys(item, (*where[:-1], f"{where[-1]}[{i}]") if where
                                    else (f"[{i}]",), seen)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key, yaml.ScalarNode):
                continue
            line = key.start_mark.line + 1
            if key.value in lines:
                found.append((".".join((*where, key.value)),
                              f"given twice (lines {lines[key.value]} and {line}); YAML would "
                              "silently keep only the last: remove one (or merge the two "
                              "sections)"))
            else:
                lines[key.value] = line
            found += duplicate_keys(value, (*where, key.value), seen)
    return found


def load_config(path: str | Path, model: type[M]) -> M:
    """Read and validate a YAML input file."""
    path = Path(path)
    data = read_input(path)
    return parse_config(data, model, str(path), base_dir=path.resolve().parent)

