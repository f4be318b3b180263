"""Reading files that come from someone else: config files shared between labs and dataset files.

Configs travel between labs and dataset roots are whatever a colleague unpacked, so nothing read here may run code
or exhaust the machine, and each refusal is one line. YAML is read by a safe loader that also refuses duplicate keys
(PyYAML keeps the last one silently), YTE templates (Snakemake evaluates their ``?`` expressions as Python), deep
nesting (PyYAML's composer recurses) and alias bombs (a few lines that expand to billions of nodes); the file size is
bounded before parsing. Pickles are read by an unpickler that builds only the types a dataset batch holds.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Mapping

import yaml

from .errors import ConfigError

# The paper grid's config is about 40 KB; a config file a thousand times larger is not a config.
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 32
# Nodes once every alias is expanded: the paper grid has about 4,000.
MAX_CONFIG_NODES = 200_000
# Snakemake hands a config file with this key to YTE, which evaluates the file's ``?`` expressions as Python.
YTE_KEY = "__use_yte__"


class _Refused(Exception):
    """Raised inside the loader; read_yaml_mapping turns it into a ConfigError naming the file and line."""

    def __init__(self, node, allowed: str, found: str):
        self.mark, self.allowed, self.found = getattr(node, "start_mark", None), allowed, found


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader with a depth limit, an expanded-size limit and duplicate keys refused."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # node id -> nodes it stands for once its aliases are expanded

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_CONFIG_DEPTH:
                raise _Refused(self.peek_event(), f"at most {MAX_CONFIG_DEPTH} levels of nesting", "deeper here")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self):
        node = super().compose_document()
        if self._size(node) > MAX_CONFIG_NODES:
            raise _Refused(node, f"at most {MAX_CONFIG_NODES:,} values once its aliases (*name) are expanded",
                           "more in this one")
        return node

    def _size(self, node: yaml.Node) -> int:
        # Memoised per node: an alias is the node it names, so a bomb of n levels costs n steps to measure.
        key = id(node)
        if key not in self._sizes:
            self._sizes[key] = 1  # a recursive alias counts once instead of recursing forever
            if isinstance(node, yaml.SequenceNode):
                self._sizes[key] = 1 + sum(self._size(n) for n in node.value)
            elif isinstance(node, yaml.MappingNode):
                self._sizes[key] = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        return self._sizes[key]

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges a block on purpose
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class says so in its own words
                continue
            if duplicate:
                raise _Refused(key_node, "each key once per mapping", f"{str(key)[:60]!r} again here; YAML would "
                               "silently keep the last: merge the two")
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: str | Path, holds: str) -> dict[str, Any]:
    """A YAML config file as a mapping (empty file: empty mapping); every problem is one ConfigError naming the
    file, and its line where there is one."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("config", str(path), "a path to an existing YAML file")
    size = p.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise ConfigError("config", str(path), f"a config file of at most {MAX_CONFIG_BYTES >> 20} MiB (it has "
                          f"{size / 2 ** 20:.1f} MiB)")
    try:
        data = yaml.load(p.read_bytes(), Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as e:
        where = f", line {e.mark.line + 1}" if e.mark is not None else ""
        raise ConfigError("config", str(path), f"a YAML file with {e.allowed} ({e.found}{where})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError("config", str(path), f"valid YAML ({where}{' '.join(str(problem).split())})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("config", str(path), f"a YAML mapping of {holds}")
    if YTE_KEY in data:
        raise ConfigError("config", str(path), f"a plain YAML file: {YTE_KEY} makes Snakemake evaluate the file's "
                          "expressions as Python code; write the values out")
    return data


# --- pickles ---------------------------------------------------------------------------------------------------

# What numpy writes when it pickles an array (protocol 2 as in the original CIFAR files; 3-5 from Python 3), under
# numpy 1's module names and numpy 2's.
NUMPY_ARRAY_GLOBALS = frozenset({
    *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")),
    *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 at protocol 2
})


class RefusedPickle(pickle.UnpicklingError):
    """The pickle names a global outside the allowed ones; nothing of it was built."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: frozenset[tuple[str, str]], **kwargs):
        super().__init__(file, **kwargs)
        self._allowed = allowed

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise RefusedPickle(f"it refers to {module}.{name}, which a data file has no reason to hold")
        return super().find_class(module, name)


def read_config_files(paths: Iterable[str | Path], holds: str) -> dict[str, Any]:
    """Read YAML config files and merge them in order, nested mappings key by key, as Snakemake merges its
    ``--configfile`` files (``snakemake.utils.update_config``): the CLI stages and the workflow see one config."""
    merged: dict[str, Any] = {}
    for path in paths:
        merge_config(merged, read_yaml_mapping(path, holds))
    return merged


def merge_config(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` layered on ``into`` in place: mappings merge recursively, anything else replaces."""
    for key, value in new.items():
        if isinstance(value, Mapping):
            base = into.get(key)
            into[key] = merge_config(base if isinstance(base, dict) else {}, value)
        else:
            into[key] = value
    return into


def load_pickle(file: BinaryIO, allowed: Iterable[tuple[str, str]] = NUMPY_ARRAY_GLOBALS, **kwargs) -> Any:
    """``pickle.load`` that builds only dicts, lists, tuples, strings, bytes, numbers and the ``allowed`` globals
    (default: numpy arrays); any other global (os.system, a class with a __reduce__) raises RefusedPickle before it
    is looked up, so nothing in the file runs."""
    return _RestrictedUnpickler(file, frozenset(allowed), **kwargs).load()
