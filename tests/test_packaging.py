"""setup.py (what `--setup_file` installs on Dataflow workers) packages every job module and
declares every distribution they import."""
import ast
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _build_wheel(tmp_path) -> Path:
    """The wheel of setup.py, built from a copy of the tracked sources (nothing written to the clone)."""
    src = tmp_path / "src"
    for name in ("setup.py", "pipelines", "transforms", "service"):
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(path, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True, text=True, timeout=300)
    return next(tmp_path.glob("beam_near_dup-*.whl"))


def _imports(source: str) -> set[str]:
    """Top-level names imported anywhere in a module (function-level imports too)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _closure(requirements: list[str]) -> set[str]:
    """Distribution names (normalised) reachable from `requirements` through installed metadata."""
    def norm(name):
        return re.sub(r"[-_.]+", "-", name).lower()

    seen, todo = set(), [re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0] for r in requirements]
    extras = {norm(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]): set(re.findall(r"\[([^\]]+)\]", r)[0].split(","))
              if "[" in r.split(";")[0] else set() for r in requirements}
    while todo:
        name = norm(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            marker = req.split(";", 1)[1] if ";" in req else ""
            wanted = extras.get(name, set())
            if "extra ==" in marker and not any(f'extra == "{e}"' in marker for e in wanted):
                continue
            todo.append(re.split(r"[\s\[<>=!~;(]", req, maxsplit=1)[0])
    return seen


def test_wheel_holds_every_job_module_and_declares_what_they_import(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        sources = {n: z.read(n).decode() for n in names if n.endswith(".py")}
    modules = {str(p.relative_to(REPO)) for pkg in ("pipelines", "transforms", "service") for p in (REPO / pkg).rglob("*.py")}
    assert modules <= set(sources), sorted(modules - set(sources))
    assert not any(n.startswith("tests/") for n in names)

    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    available = _closure(requires)
    providers = metadata.packages_distributions()
    stdlib = set(sys.stdlib_module_names) | {"__future__", "pipelines", "transforms", "service"}
    missing = {}
    for path, source in sources.items():
        for name in _imports(source) - stdlib:
            dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers.get(name, [])}
            if not dists & available:
                missing.setdefault(name, []).append(path)
    assert not missing, f"imported but not declared in setup.py install_requires: {missing}"


def test_the_closure_check_sees_an_undeclared_import():
    """The check above could fail: matplotlib is not reachable from apache-beam alone."""
    assert "matplotlib" not in _closure(["apache-beam[gcp]==2.77.0"])
    assert "matplotlib" in _closure(["matplotlib"])
