"""Security: nothing is unpickled or evaluated on load, and a scenario cannot steer reads or writes elsewhere.

1. A static scan of the ``fedunlearn`` sources (``ast``) for every way to unpickle or evaluate
   data: ``pickle``-family imports, ``torch.load`` without ``weights_only=True``, ``np.load`` with
   ``allow_pickle`` not ``False``, unsafe PyYAML loaders, ``read_pickle``, ``eval``/``exec``. The
   scanner is tested on planted offenders so it cannot pass vacuously; data that *would* run code
   when unpickled or YAML-constructed is refused with one line and never runs.
2. Scenario fields that become filesystem paths:

   - ``name``: the default run directory ``runs/<name>-<timestamp>`` of ``fedunlearn run``
     (``fedunlearn/cli.py`` ``_cmd_run``) and of ``flwr run`` (``fedunlearn/federated/server_app.py``
     ``main``), and the bench's run folders (``fedunlearn/bench/runner.py``, names it builds itself);
   - ``sites.names``: ``RUN_DIR/sites/<site name>/`` (``fedunlearn/federated/client_app.py``);
   - sweep grid values: ``SWEEP/runs/<slug>/``, ``SWEEP/scenarios/<slug>.yaml``, ``SWEEP/logs/<slug>.log``
     (``fedunlearn/sweeps.py`` ``slugify``);
   - ``data.root``: the data directory by definition, so any folder is allowed. The scenario can name
     its data directory; fedunlearn only reads the fixed file names of the dataset there
     (``dermamnist.npz``, ``pathmnist_64.npz``, ...) and only writes the extraction cache
     ``<data.root>/.fedunlearn-cache/`` (``fedunlearn/data/loading.py`` ``_extract_member``; checked by
     ``test_loading_writes_only_the_cache_inside_the_data_root``). ``fedunlearn data fetch`` also writes
     the ``.npz`` into the root, but takes its root from ``--data-root``, not from a scenario.

   Every other string field is a closed choice (``Literal``) or a checked pattern (``device``), except
   ``ray.address`` (a Ray cluster to join: a network address, not a path).
"""

from __future__ import annotations

import ast
import io
import pathlib
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import fedunlearn
from fedunlearn.cli import main

PACKAGE = Path(fedunlearn.__file__).resolve().parent

# --------------------------------------------------------------------------- 1. static scan
#: Modules whose whole purpose is (un)pickling or running serialized code.
UNPICKLING_MODULES = frozenset(
    {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
)
#: PyYAML names that construct arbitrary Python objects (only SafeLoader and subclasses are allowed).
UNSAFE_YAML_NAMES = frozenset(
    {
        "Loader",
        "FullLoader",
        "UnsafeLoader",
        "CLoader",
        "CFullLoader",
        "CUnsafeLoader",
        "unsafe_load",
        "unsafe_load_all",
        "full_load",
        "full_load_all",
    }
)
SAFE_YAML_LOADERS = frozenset(
    {"yaml.SafeLoader", "yaml.CSafeLoader", "yaml.BaseLoader", "yaml.CBaseLoader"}
)


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


class _Scanner(ast.NodeVisitor):
    """Collect unpickling / evaluating constructs of one module; names are resolved through its imports."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.alias: dict[str, str] = {}  # local name -> dotted module path
        self.safe_loaders: set[str] = set(SAFE_YAML_LOADERS)
        self.findings: list[Finding] = []

    def flag(self, node: ast.AST, what: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), what))

    def dotted(self, node: ast.AST) -> str | None:
        """``np.load`` -> ``numpy.load`` (through the import aliases); None for anything not a name chain."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.alias.get(node.id, node.id))
        return ".".join(reversed(parts))

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name.split(".")[0] in UNPICKLING_MODULES:
                self.flag(node, f"imports {a.name}")
            self.alias[(a.asname or a.name).split(".")[0]] = (
                a.name if a.asname else a.name.split(".")[0]
            )
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if module.split(".")[0] in UNPICKLING_MODULES:
            self.flag(node, f"imports from {module}")
        for a in node.names:
            full = f"{module}.{a.name}"
            self.alias[a.asname or a.name] = full
            if module.split(".")[0] == "yaml" and a.name in UNSAFE_YAML_NAMES:
                self.flag(node, f"imports {full}")
            if full in ("torch.load", "torch.serialization.load", "pandas.read_pickle"):
                self.flag(node, f"imports {full}")
        self.generic_visit(node)

    # yaml loaders defined in this module
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(self.dotted(b) in self.safe_loaders for b in node.bases):
            self.safe_loaders.add(node.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = self.dotted(node)
        if name and name.startswith("yaml.") and name.split(".", 1)[1] in UNSAFE_YAML_NAMES:
            self.flag(node, f"uses {name}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func) or ""
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        if name in ("torch.load", "torch.serialization.load"):
            value = kw.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                self.flag(node, f"{name}(...) without weights_only=True")
        elif name in ("numpy.load", "np.load"):
            value = kw.get("allow_pickle")
            if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                self.flag(node, f"{name}(...) with allow_pickle={ast.unparse(value)}")
        elif name in ("yaml.load", "yaml.load_all"):
            loader = kw.get("Loader", node.args[1] if len(node.args) > 1 else None)
            loader_name = self.dotted(loader) if loader is not None else None
            if loader_name not in self.safe_loaders:
                shown = ast.unparse(loader) if loader is not None else "none"
                self.flag(node, f"{name}(...) with Loader={shown}, not a SafeLoader")
        elif name.endswith("read_pickle"):
            self.flag(node, f"calls {name}")
        elif name in ("eval", "exec", "builtins.eval", "builtins.exec"):
            self.flag(node, f"calls {name}()")
        self.generic_visit(node)


def scan_source(source: str, path: str = "<planted>") -> list[Finding]:
    """Every unpickling or evaluating construct in ``source``."""
    tree = ast.parse(source, filename=path)
    scanner = _Scanner(path)
    for _ in range(
        3
    ):  # learn the module's aliases and SafeLoader subclasses first, wherever they are defined
        scanner.visit(tree)
        scanner.findings = []
    scanner.visit(tree)
    return scanner.findings


def package_sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_load_path_unpickles_or_evaluates() -> None:
    sources = package_sources()
    names = {p.relative_to(PACKAGE).as_posix() for p in sources}
    assert {
        "data/loading.py",
        "federated/scenario/loading.py",
        "sweeps.py",
        "cli.py",
    } <= names  # the scan sees the package
    findings = [
        f
        for p in sources
        for f in scan_source(p.read_text(encoding="utf-8"), str(p.relative_to(PACKAGE.parent)))
    ]
    assert not findings, "unsafe deserialization or eval in fedunlearn:\n" + "\n".join(
        map(str, findings)
    )


PLANTED = {
    "import pickle": "import pickle\npickle.loads(b'')\n",
    "import cPickle as p": "import cPickle as p\n",
    "from pickle import loads": "from pickle import loads\n",
    "import dill": "import dill\n",
    "import cloudpickle": "import cloudpickle\n",
    "torch.load bare": "import torch\ntorch.load('m.pt')\n",
    "torch.load weights_only=False": "import torch\ntorch.load('m.pt', weights_only=False)\n",
    "torch.load weights_only=flag": "import torch\nflag = True\ntorch.load('m.pt', weights_only=flag)\n",
    "from torch import load": "from torch import load\nload('m.pt')\n",
    "np.load allow_pickle=True": "import numpy as np\nnp.load('a.npz', allow_pickle=True)\n",
    "numpy.load allow_pickle=True": "import numpy\nnumpy.load('a.npz', allow_pickle=True)\n",
    "aliased numpy": "import numpy as xp\nxp.load('a.npz', mmap_mode='r', allow_pickle=True)\n",
    "yaml.load no Loader": "import yaml\nyaml.load(text)\n",
    "yaml.load Loader=yaml.Loader": "import yaml\nyaml.load(text, Loader=yaml.Loader)\n",
    "yaml.load FullLoader positional": "import yaml\nyaml.load(text, yaml.FullLoader)\n",
    "yaml.unsafe_load": "import yaml\nyaml.unsafe_load(text)\n",
    "yaml.full_load": "import yaml\nyaml.full_load(text)\n",
    "subclass of yaml.Loader": "import yaml\nclass L(yaml.Loader):\n    pass\nyaml.load(text, Loader=L)\n",
    "from yaml import UnsafeLoader": "from yaml import UnsafeLoader\n",
    "pd.read_pickle": "import pandas as pd\npd.read_pickle('t.pkl')\n",
    "eval": "eval('1 + 1')\n",
    "exec": "exec('x = 1')\n",
    "builtins.eval": "import builtins\nbuiltins.eval('1')\n",
}

SAFE = {
    "yaml.safe_load": "import yaml\nyaml.safe_load(text)\n",
    "SafeLoader subclass": textwrap.dedent("""\
        import yaml
        class _Unique(yaml.SafeLoader):
            pass
        class _Deeper(_Unique):
            pass
        yaml.load(text, Loader=_Deeper)
        """),
    "np.load default": "import numpy as np\nnp.load('a.npz')\nnp.load('a.npy', mmap_mode='r', allow_pickle=False)\n",
    "torch.load weights_only": "import torch\ntorch.load('m.pt', weights_only=True, map_location='cpu')\n",
    "model.eval()": "model.eval()\nself.exec_plan()\n",
    "safetensors": "from safetensors.torch import load_file\nload_file('m.safetensors')\n",
}


@pytest.mark.parametrize("source", PLANTED.values(), ids=PLANTED.keys())
def test_scanner_catches_a_planted_offender(source: str) -> None:
    findings = scan_source(source, "planted.py")
    assert findings, f"the scanner missed:\n{source}"
    assert all(str(f).startswith("planted.py:") and f.line >= 1 for f in findings)


@pytest.mark.parametrize("source", SAFE.values(), ids=SAFE.keys())
def test_scanner_accepts_safe_loading(source: str) -> None:
    assert scan_source(source, "safe.py") == []


def test_scanner_reports_file_and_line(tmp_path: Path) -> None:
    planted = tmp_path / "fedunlearn_like" / "io.py"
    planted.parent.mkdir()
    planted.write_text(
        "import json\n\n\ndef read(p):\n    import torch\n    return torch.load(p)\n"
    )
    (finding,) = scan_source(planted.read_text(), str(planted))
    assert str(finding) == f"{planted}:6: torch.load(...) without weights_only=True"


# --------------------------------------------------------------------------- 1b. hostile payloads stay inert
class _Trap:
    """Unpickling this touches ``marker``: proof that something was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _archive_with_trap(marker: Path, key: str) -> bytes:
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (8, 28, 28, 3), dtype=np.uint8),
        "train_labels": (np.arange(8) % 7).astype(np.uint8)[:, None],
    }
    trap = np.empty(8, dtype=object)
    trap[:] = [_Trap(marker)] * 8
    arrays[key] = trap
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_the_trap_archive_would_run_code_if_unpickled(tmp_path: Path) -> None:
    """Self-test of the next test: unpickling the planted archive does run its payload."""
    marker = tmp_path / "ran"
    with np.load(io.BytesIO(_archive_with_trap(marker, "train_labels")), allow_pickle=True) as z:
        z["train_labels"]
    assert marker.exists()


@pytest.mark.parametrize("key", ["train_labels", "train_images"])
def test_npz_with_pickled_objects_is_refused_and_never_unpickled(
    key: str, tmp_path: Path, capsys
) -> None:
    from fedunlearn.data import clear_cache

    marker = tmp_path / "ran"
    root = tmp_path / "root"
    root.mkdir()
    (root / "dermamnist.npz").write_bytes(_archive_with_trap(marker, key))
    clear_cache()
    code = main(["centralized", "--data-root", str(root), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "is damaged or not a MedMNIST .npz" in err and "delete it and fetch it again" in err
    assert not marker.exists(), "a pickled object in the archive was unpickled"
    assert not (tmp_path / "out").exists()


def test_scenario_yaml_with_python_tags_is_refused_and_never_constructed(
    tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.yaml"
    evil.write_text(
        f"name: x\nseed: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path "
        f"[{str(marker)!r}]]\n"
    )
    code = main(["validate", str(evil)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(evil) in err, err
    assert not marker.exists()


@pytest.mark.parametrize("where", ["--set", "--grid"])
def test_override_and_grid_values_with_python_tags_are_never_constructed(
    where: str, tmp_path: Path, capsys
) -> None:
    """The value is parsed by yaml.safe_load: refused, whatever the message (see tests/test_bad_input.py)."""
    marker = tmp_path / "ran"
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ndata: {dataset: synthetic}\n")
    value = f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path [{str(marker)!r}]]"
    if where == "--set":
        argv = ["validate", str(scenario), "--set", f"seed={value}"]
    else:
        argv = [
            "sweep",
            str(scenario),
            "--grid",
            f"seed={value}",
            "--out",
            str(tmp_path / "sweep"),
            "--quiet",
        ]
    try:
        code = main(argv)
    except Exception:
        code = 1
    capsys.readouterr()
    assert code != 0
    assert not marker.exists()
    assert not (tmp_path / "sweep").exists()


# --------------------------------------------------------------------------- 2. scenario names and paths
HOSTILE_NAMES = [
    "../../etc/x",
    "/abs/path",
    "a/b",
    "..",
    ".",
    "a\x00b",
    "a\nb",
    "x\n",
    "",
    "a\\b",
    "x" * 300,
]


def _validation_error(raw: dict) -> str | None:
    from fedunlearn.federated.scenario import ScenarioError, scenario_from_mapping

    try:
        scenario_from_mapping(raw, "s.yaml")
    except ScenarioError as err:
        return str(err)
    return None


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=[repr(n)[:20] for n in HOSTILE_NAMES])
def test_hostile_scenario_name_is_rejected(name: str) -> None:
    err = _validation_error({"name": name})
    assert err is not None, f"name {name!r} accepted"
    assert err.startswith("s.yaml: name: bad value ") and "\n" not in err


@pytest.mark.parametrize(
    "name",
    [
        "quickstart",
        "paper-dermamnist-20",
        "bench-erasure-salun-cra",
        "n0",
        "x=y",
        "site-leaves-tiny",
        "v1.2_final",
    ],
)
def test_ordinary_scenario_names_stay_valid(name: str) -> None:
    """What the name check must keep accepting (shipped configs, tests, bench)."""
    assert _validation_error({"name": name}) is None


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/abs-escape", "a/b"])
def test_default_run_dir_stays_in_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, no_ray
) -> None:
    """``fedunlearn run`` without --out: the run folder is one new folder directly in ./runs, or an error."""
    import fedunlearn.federated.simulation as simulation

    chosen: list[Path] = []
    monkeypatch.setattr(
        simulation, "run_scenario", lambda scenario, out, **kw: chosen.append(Path(out)) or out
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    scenario = cwd / "s.yaml"
    scenario.write_text("name: s\ndata: {dataset: synthetic}\n")
    code = main(["run", str(scenario), "--set", f"name={name}", "--quiet"])
    err = capsys.readouterr().err.strip()
    if code == 2:
        assert len(err.splitlines()) == 1 and "name" in err
        assert not chosen
        return
    (out,) = chosen
    resolved = (cwd / out).resolve()
    assert resolved.parent == (cwd / "runs").resolve(), (
        f"run folder {resolved} is not directly in {cwd / 'runs'}"
    )


HOSTILE_SITE_NAMES = [
    "..",
    ".",
    "a/../../b",
    "/abs",
    "a/b",
    "a\\b",
    "a\x00",
    "",
    " a",
    "-rf",
    ".hidden",
]


@pytest.mark.parametrize("site", HOSTILE_SITE_NAMES, ids=[repr(s) for s in HOSTILE_SITE_NAMES])
def test_hostile_site_name_is_rejected(site: str) -> None:
    err = _validation_error({"sites": {"count": 2, "names": ["ok", site]}})
    assert err == (
        f"s.yaml: sites.names[1]: bad value {site!r}; allowed: a name of letters, digits, '.', '_', '-', "
        "starting with a letter or digit, at most 100 characters (it names a folder)"
    )


@pytest.mark.parametrize("site", ["a\n", "x" * 300], ids=["trailing-newline", "300-chars"])
def test_site_name_with_trailing_newline_or_too_long_is_rejected(site: str) -> None:
    err = _validation_error({"sites": {"count": 2, "names": ["ok", site]}})
    assert (
        err is not None and err.startswith("s.yaml: sites.names[1]: bad value ") and "\n" not in err
    )


# --------------------------------------------------------------------------- sweep slugs
HOSTILE_VALUES = [
    "../../etc/passwd",
    "/abs/path",
    "..",
    ".",
    "a/b",
    "a\\b",
    "a\x00b",
    "a\nb",
    "~root",
    "$HOME",
    "*",
    "C:\\x",
    ["..", "/"],
    {"a": "../b"},
    "",
    "-",
    "=",
]


def _inside(folder: Path, path: Path) -> bool:
    return path.resolve().parent == folder.resolve()


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=[repr(v)[:20] for v in HOSTILE_VALUES])
@pytest.mark.parametrize("key", ["name", "data.root", "sites.names"])
def test_sweep_slug_of_hostile_value_stays_one_folder(key: str, value, tmp_path: Path) -> None:
    from fedunlearn.sweeps import slugify

    for assignments in ([(key, value)], [("seed", 0), (key, value)]):
        slug = slugify(assignments)
        assert slug not in ("", ".", "..")
        assert not set(slug) & {"/", "\\", "\x00", "\n", "\r"}, slug
        for folder, path in (
            (tmp_path / "runs", tmp_path / "runs" / slug),
            (tmp_path / "scenarios", tmp_path / "scenarios" / f"{slug}.yaml"),
            (tmp_path / "logs", tmp_path / "logs" / f"{slug}.log"),
        ):
            assert _inside(folder, path), (slug, path)


def test_sweep_plan_paths_stay_in_the_sweep_folder(tmp_path: Path) -> None:
    """``data.root`` takes any folder, so hostile values survive validation: their points still live in DIR."""
    from fedunlearn.sweeps import plan_sweep

    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ndata: {dataset: synthetic}\n")
    out = tmp_path / "sweep"
    plan = plan_sweep(scenario, ["data.root=../../etc,/abs/x,a/b,..,'x/../../y'", "seed=0,1"], out)
    assert len(plan.points) == 10
    assert not out.exists()  # planning writes nothing
    for point in plan.points:
        assert _inside(out / "runs", plan.run_dir(point))
        assert _inside(out / "scenarios", plan.scenario_file(point))
        assert _inside(out / "logs", plan.log_file(point))


def test_sweep_slug_of_a_long_value_fits_a_folder_name() -> None:
    from fedunlearn.sweeps import slugify

    assert len(slugify([("data.root", "x" * 300)]).encode()) + len(".yaml") <= 255


# --------------------------------------------------------------------------- data.root
def _tree(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.mark.parametrize("size", [28, 64])
def test_loading_writes_only_the_cache_inside_the_data_root(
    size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import warnings

    from fedunlearn.data import UnofficialDataWarning, clear_cache, load_dataset

    home, cwd, root = tmp_path / "home", tmp_path / "cwd", tmp_path / "root"
    for d in (home, cwd, root):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FEDUNLEARN_DATA_ROOT", raising=False)
    monkeypatch.chdir(cwd)
    rng = np.random.default_rng(0)
    name = "dermamnist.npz" if size == 28 else f"dermamnist_{size}.npz"
    np.savez(
        root / name,
        train_images=rng.integers(0, 256, (6, size, size, 3), dtype=np.uint8),
        train_labels=(np.arange(6) % 7).astype(np.uint8)[:, None],
    )
    before = _tree(tmp_path)
    clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnofficialDataWarning)
        ds = load_dataset("dermamnist", size, root)
    assert len(ds.train) == 6
    new = _tree(tmp_path) - before
    assert new, "expected the extraction cache"
    cache = Path("root") / ".fedunlearn-cache"
    assert all(p == cache or cache in p.parents for p in new), sorted(map(str, new))
    clear_cache()


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(
        "FEDUNLEARN_DEBUG", raising=False
    )  # the CLI would re-raise instead of printing one line
    yield
