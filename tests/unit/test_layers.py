"""The coordinator's imports are layered, read from the source (ast), so a shortcut cannot creep back.

    protocol, lifecycle            the words everyone shares
    catalog (+ blob store)         rows and their tables, blobs on disk
    scheduler (+ its metrics)      decisions on the active part of the catalog
    grid (+ submission, uploads, directory, errors, health, feed, fresh, samples, reads,
                                   finals)
                                   the one door into the state, and its rules
    API, web assets, oracle        callers of the grid
    coordinator, doctor            assemble the process, check a site

A layer imports only from the layers below it (imports inside functions count too). The API and
the oracle go through the grid: from below it they take plain records (catalog rows, the catalog's
"unavailable" error) and the oracle its own chain-task tables, never the scheduler. The programs
stay apart: the volunteer's worker imports nothing of the coordinator, the oracle, the chain or the
client (it speaks the protocol only), and the coordinator (below its assembly) nothing of the worker
or the client. And no module of xwpy imports itself back through others at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS = [  # lowest first
    ("base", ("xwpy.protocol", "xwpy.lifecycle")),
    ("catalog", ("xwpy.server.catalog", "xwpy.server.blobstore", "xwpy.server.blobstore_s3")),
    # (metrics: the scheduler's own certification-latency histogram)
    ("scheduler", ("xwpy.server.scheduler", "xwpy.server.metrics")),
    # (health: the operators' probes of the stores below, for the grid's callers; uploads: the
    # resumable upload sessions the grid keeps beside the blob store; feed, fresh, samples, reads,
    # finals: what the grid keeps for the dashboards, the repeated reads and the clients' futures)
    ("grid", ("xwpy.server.grid", "xwpy.server.submission", "xwpy.server.directory", "xwpy.server.errors",
              "xwpy.server.health", "xwpy.server.uploads", "xwpy.server.feed", "xwpy.server.fresh",
              "xwpy.server.samples", "xwpy.server.reads", "xwpy.server.finals")),
    ("callers", ("xwpy.server.api", "xwpy.server.web", "xwpy.oracle")),
    ("process", ("xwpy.server.coordinator", "xwpy.server.main", "xwpy.server.doctor")),
]
# Every module of the coordinator is in a layer (a new one must be placed, not escape the check).
COORDINATOR = ("xwpy.server",)
# The programs that must not reach into one another, and what each may not import.
APART = [
    (("xwpy.worker",), ("xwpy.server", "xwpy.oracle", "xwpy.chain", "xwpy.client", "xwpy.apps")),
    (tuple(p for name, ps in LAYERS if name != "process" for p in ps), ("xwpy.worker", "xwpy.client")),
]
# What the base may use besides itself: pure helpers with no xwpy imports of their own.
BASE_MAY_USE = ("xwpy.platforms",)
# What the grid's callers may take from below the grid.
CALLERS_MAY_USE = ("xwpy.server.catalog.rows", "xwpy.server.catalog.connector", "xwpy.server.catalog.chain",
                   "xwpy.server.catalog.payouts")  # the oracle's own tables: chain tasks, payout epochs


def _in(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer_of(module: str) -> int | None:
    for i, (_, prefixes) in enumerate(LAYERS):
        if _in(module, prefixes):
            return i
    return None


def modules() -> dict[str, Path]:
    out = {}
    for path in (ROOT / "xwpy").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(path: Path, known, at_import_time: bool) -> set[str]:
    """The xwpy modules a file imports (``from package import module`` names the module);
    ``at_import_time``: only those run when it is imported (not inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    if at_import_time:
        nodes = []
        stack = list(tree.body)
        while stack:
            n = stack.pop()
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            nodes.append(n)
            stack.extend(ast.iter_child_nodes(n))
    else:
        nodes = list(ast.walk(tree))
    out = set()
    for n in nodes:
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out.update(f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in known else n.module for a in n.names)
    return {m for m in out if m in known}


MODULES = modules()
GRAPH = {m: imports(p, MODULES, at_import_time=False) for m, p in MODULES.items()}


def test_the_layers_are_found():
    """Every layer names modules that exist (a rename must update this test, not escape it)."""
    for name, prefixes in LAYERS:
        for p in prefixes:
            assert any(_in(m, (p,)) for m in MODULES), f"layer {name}: no module {p}"
    assert len(MODULES) > 100


def test_every_module_of_the_coordinator_has_a_layer():
    assert [m for m in MODULES if _in(m, COORDINATOR) and m != "xwpy.server" and layer_of(m) is None] == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if any(_in(m, mine) for mine, _ in APART)))
def test_the_programs_stay_apart(module):
    wrong = sorted(t for mine, banned in APART if _in(module, mine) for t in GRAPH[module] if _in(t, banned))
    assert not wrong, f"{module} imports {', '.join(wrong)}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer_of(m) is not None))
def test_a_layer_imports_only_from_below(module):
    mine = layer_of(module)
    wrong = []
    for target in sorted(GRAPH[module]):
        theirs = layer_of(target)
        if theirs is not None and theirs > mine:
            wrong.append(f"{target} ({LAYERS[theirs][0]})")
        elif LAYERS[mine][0] == "base" and theirs is None and not _in(target, BASE_MAY_USE):
            wrong.append(f"{target} (not base)")
        elif LAYERS[mine][0] == "callers" and theirs is not None and theirs < layer_of("xwpy.server.grid") \
                and theirs > 0 and not _in(target, CALLERS_MAY_USE):
            wrong.append(f"{target} ({LAYERS[theirs][0]}: below the grid)")
    assert not wrong, f"{module} ({LAYERS[mine][0]}) imports {', '.join(wrong)}"


# What the grid holds below it: its callers ask the grid (or, the oracle, its own chain-task tables).
BELOW_THE_GRID = ("catalog", "dispatcher", "engine", "blobs", "uploads")


@pytest.mark.parametrize("module", sorted(m for m in MODULES if LAYERS[layer_of(m) or 0][0] == "callers"))
def test_the_callers_reach_nothing_below_the_grid_through_it(module):
    """``grid.catalog.jobs...`` would pass the import check: no caller names the grid's stores."""
    tree = ast.parse(MODULES[module].read_text())
    wrong = sorted({f"line {n.lineno}: .{n.attr}" for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                    and n.attr in BELOW_THE_GRID and isinstance(n.value, ast.Name) and n.value.id == "grid"})
    assert not wrong, f"{module} reaches below the grid: {', '.join(wrong)}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_no_import_cycles_at_import_time():
    graph = {m: imports(p, MODULES, at_import_time=True) for m, p in MODULES.items()}
    # A package importing its own modules is not a cycle of layers (xwpy.server.api builds its routes).
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    assert _cycles(graph) == []


def test_no_import_cycles_in_the_coordinator_and_the_chain():
    """Not even through imports inside functions (chain/embedded -> rpc -> ethrpc -> embedded was one)."""
    mine = ("xwpy.server", "xwpy.oracle", "xwpy.chain", "xwpy.protocol", "xwpy.lifecycle")
    graph = {m: {t for t in ts if _in(t, mine) and not t.startswith(m + ".")}
             for m, ts in GRAPH.items() if _in(m, mine)}
    assert _cycles(graph) == []


def test_the_checks_catch_what_they_are_for():
    """The rules themselves: a cycle is found, and an upward import is an upward import."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert layer_of("xwpy.server.catalog.jobs") < layer_of("xwpy.server.scheduler.engine") \
        < layer_of("xwpy.server.grid") < layer_of("xwpy.server.api.jobs") < layer_of("xwpy.server.coordinator")
    assert layer_of("xwpy.oracle.grid") == layer_of("xwpy.server.api.router")
    assert layer_of("xwpy.config") is None
    assert layer_of("xwpy.server.uploads") == layer_of("xwpy.server.grid")
