"""The layout holds: no import cycles in src/, and only lartpcnet.tasks knows which task runs."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "lartpcnet"
TASK_NAMES = {"segmentation", "tagging", "instance"}
MODEL_NAMES = {"uresnet", "uresnet_dense", "cosmictagger", "cosmictagger_dense", "smaskrcnn", "smaskrcnn_dense"}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _without_type_checking(tree: ast.Module) -> ast.Module:
    """The tree without ``if TYPE_CHECKING:`` blocks (type-only imports run nothing)."""
    tree.body = [n for n in tree.body if not (isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")]
    return tree


def _imports(path: Path) -> set[str]:
    """Modules of lartpcnet that ``path`` imports at module level or inside functions."""
    tree = _without_type_checking(ast.parse(path.read_text()))
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lartpcnet")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], base]).strip(".")
            if base.startswith("lartpcnet"):
                found.add(base)
                found |= {f"{base}.{a.name}" for a in node.names}
    return found


def _module_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in tree.body:  # top level only: a lazy import inside a function cannot make a cycle at import time
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lartpcnet"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lartpcnet")}
    return found


def _graph(imports) -> dict[str, set[str]]:
    modules = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in imports(path):
            while target and target not in modules:  # "lartpcnet.sparse.SparseTensor" -> lartpcnet.sparse
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles_between_modules():
    # a package's __init__ re-exporting its modules is not a cycle of the code's design
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in
             _graph(_module_level_imports).items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_import_cycles_counting_lazy_imports():
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in _graph(_imports).items()}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_only_tasks_and_the_registry_name_tasks_or_models():
    """Outside lartpcnet.tasks (and the registry, which maps names to objects), no code compares
    a task's or model's name or tests which task class it holds."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("tasks/") or rel == "models/registry.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                names = ast.unparse(node)
                subjects = " ".join(ast.unparse(c) for c in [node.left, *node.comparators]
                                    if not isinstance(c, ast.Constant))
                about_models = any(word in subjects for word in ("task", "model", "name"))
                if about_models and any(c in TASK_NAMES | MODEL_NAMES for c in constants if isinstance(c, str)):
                    offenders.append(f"{rel}:{node.lineno}: {names}")
                if ".task" in names and ("==" in names or " is " in names):
                    offenders.append(f"{rel}:{node.lineno}: {names}")
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "isinstance":
                text = ast.unparse(node)
                if "Task" in text:
                    offenders.append(f"{rel}:{node.lineno}: {text}")
    assert not offenders, offenders


def test_the_package_asks_for_ranges_and_the_lock_pins_exact_versions():
    """pip install into an environment with its own torch keeps it: pyproject declares ranges that
    the lock's exact pins satisfy (make installs the lock)."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())["project"]
    declared = {r.name.lower(): r for r in map(Requirement, project["dependencies"])}
    lock = {}
    for line in (SRC.parents[1] / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[name.strip().lower().replace("_", "-")] = version.strip()
    for name, req in declared.items():
        assert not any(s.operator == "==" for s in req.specifier), f"pyproject pins {req}; declare a range"
        assert name in lock, f"{name} is not pinned in requirements.lock"
        assert req.specifier.contains(lock[name]), f"the lock's {name}=={lock[name]} is outside {req.specifier}"
