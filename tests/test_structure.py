"""The checks that hold the code's shape (docs: /work/shared/conventions.md §2, §9, §10), read from the
source with `ast`, nothing imported or run, so they take well under a second:

- every module of `bot`, `sip` and `models` stays within 600 lines (§2: past it, a file is two concepts);
- `sip` and `models` never import `bot` (the dependency points one way: the bot uses them);
- no import cycle between modules, counting every `import`/`from` at module or function level that is
  not under `if TYPE_CHECKING:` (a function-level import is still a dependency; it only hides the
  cycle until the function runs);
- no cross-object private access (§9): `expr._name` is flagged in a module that does not itself
  define `_name` (as a function, method, class, assigned name, or an attribute of `self`/`cls`),
  since then it reaches into another module's object. `getattr`/`setattr`/`hasattr` with a literal
  private name count too. Dunder names are public protocol. The few private names that are a
  third-party or standard-library API are listed in `THIRD_PARTY_PRIVATE`, each with why.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "sip", "models")
MAX_LINES = 600

# Private names that belong to a library's public surface (not to one of our objects).
THIRD_PARTY_PRIVATE = {
    "_replace": "collections.namedtuple API (typing.NamedTuple)",
    "_asdict": "collections.namedtuple API",
    "_fields": "collections.namedtuple API",
    "_make": "collections.namedtuple API",
    "_field_defaults": "collections.namedtuple API",
    "_getframe": "sys._getframe",
    "_exit": "os._exit",
}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "bot.engine.session"
    path: Path
    is_package: bool  # an __init__.py
    tree: ast.Module
    lines: int


def _modules() -> dict[str, Module]:
    out: dict[str, Module] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            text = path.read_text(encoding="utf-8")
            out[".".join(parts)] = Module(".".join(parts), path, is_package, ast.parse(text, str(path)),
                                          len(text.splitlines()))
    return out


MODULES = _modules()


def _where(m: Module, node: ast.AST) -> str:
    return f"{m.path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, type_checking: bool) -> list[ast.Import | ast.ImportFrom]:
    """The module's import statements at any depth; those under `if TYPE_CHECKING:` only when asked."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)
    visit(tree)
    return found


def _base(m: Module, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = m.name.split(".") if m.is_package else m.name.split(".")[:-1]
    package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(m: Module, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement loads, as the most specific module of ours it names (for
    `from pkg import name`: `pkg.name` when that is a module, else `pkg`)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = _base(m, node)
    out = []
    for a in node.names:
        sub = f"{base}.{a.name}"
        out.append(sub if sub in MODULES else base)
    return out


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def test_no_module_over_the_line_budget():
    big = [f"{m.path.relative_to(ROOT)}: {m.lines} lines" for m in MODULES.values() if m.lines > MAX_LINES]
    assert not big, f"modules over {MAX_LINES} lines (split them by concept):\n" + "\n".join(big)


def test_sip_and_models_never_import_bot():
    bad = []
    for m in MODULES.values():
        if m.name.split(".")[0] == "bot":
            continue
        for node in _imports(m.tree, type_checking=True):
            for target in _targets(m, node):
                if target.split(".")[0] == "bot":
                    bad.append(f"{_where(m, node)} imports {target}")
    assert not bad, "sip and models must not depend on bot:\n" + "\n".join(bad)


def _graph() -> dict[str, dict[str, str]]:
    """module -> {imported module of ours -> where the first such import is}."""
    graph: dict[str, dict[str, str]] = {name: {} for name in MODULES}
    for m in MODULES.values():
        for node in _imports(m.tree, type_checking=False):
            for target in _targets(m, node):
                if _ours(target) and target != m.name and target in MODULES:
                    graph[m.name].setdefault(target, _where(m, node))
    return graph


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:  # recursion depth is bounded by the module count (a few hundred)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    cycles = []
    for comp in sccs:  # the shortest way back to the component's first module
        members, start = set(comp), comp[0]
        prev: dict[str, str] = {}
        frontier, seen, found = [start], {start}, None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        found = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        path = [found] if found is not None else []
        while path and path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append(list(reversed(path)) + [start])
    return cycles


def test_no_import_cycles():
    graph = _graph()
    report = []
    for cycle in _cycles(graph):
        steps = [f"  {a} -> {b} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
        report.append("\n".join(steps))
    assert not report, "import cycles (a function-level import counts too):\n" + "\n\n".join(report)


def _defined(tree: ast.Module) -> set[str]:
    """Names a module defines itself: functions, methods and classes, names assigned at module or
    class level, and attributes it assigns on `self`/`cls`."""
    names: set[str] = set()

    def body(stmts: list[ast.stmt]) -> None:
        for st in stmts:
            targets: list[ast.expr] = []
            if isinstance(st, ast.Assign):
                targets = st.targets
            elif isinstance(st, (ast.AnnAssign, ast.AugAssign)):
                targets = [st.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
            if isinstance(st, ast.ClassDef):
                body(st.body)
            elif isinstance(st, (ast.If, ast.Try)):
                body(st.body + st.orelse + [s for h in getattr(st, "handlers", []) for s in h.body])

    body(tree.body)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_uses(m: Module) -> list[str]:
    """`file:line: expr` for each private name of another module's objects that `m` touches."""
    own = _defined(m.tree)
    bad: list[tuple[int, str]] = []
    for node in ast.walk(m.tree):
        name = None
        if isinstance(node, ast.Attribute) and _private(node.attr):
            name = node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str) \
                and _private(node.args[1].value):
            name = node.args[1].value
        if name is not None and name not in own and name not in THIRD_PARTY_PRIVATE:
            bad.append((getattr(node, "lineno", 0), f"{_where(m, node)}: {ast.unparse(node)}"))
    return [line for _, line in sorted(bad)]


def test_no_cross_object_private_access():
    bad = [line for m in MODULES.values() for line in _private_uses(m)]
    assert not bad, "private names of another module's objects (use a public method or property):\n" \
        + "\n".join(bad)


# -- the checks check something ---------------------------------------------------------------------
def _snippet(code: str) -> Module:
    return Module("bot.example", ROOT / "bot" / "example.py", False, ast.parse(code), code.count("\n"))


def test_the_private_rule_flags_only_what_another_module_owns():
    code = """
class Box:
    _LIMIT = 3
    def __init__(self, other):
        self._items = []
        self.other = other
    def _grow(self):
        return len(self._items) < Box._LIMIT
    def peek(self, twin: "Box"):
        twin._grow()                  # ours: defined in this module
        self.__class__.__name__       # dunders are protocol
        point._replace(x=1)           # a namedtuple's API
        self.other._queue.clear()     # another module's object
        getattr(self.other, "_state") # the same, spelt with getattr
        self._inherited()             # a base class's private, defined elsewhere
"""
    flagged = [line.split(": ", 1)[1] for line in _private_uses(_snippet(code))]
    assert sorted(flagged) == sorted(["self.other._queue", "getattr(self.other, '_state')", "self._inherited"])


def test_the_cycle_finder_reports_the_cycle():
    graph = {"a": {"b": "a.py:1"}, "b": {"c": "b.py:1"}, "c": {"a": "c.py:1", "d": "c.py:2"}, "d": {}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": ""}, "b": {}}) == []


def test_imports_under_type_checking_are_left_out_of_the_graph():
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sip.call\n"
                     "def f():\n    import sip.media\n")
    names = [a.name for node in _imports(tree, type_checking=False) for a in node.names]
    assert names == ["TYPE_CHECKING", "sip.media"]
