"""dvc.lock holds the code a stage ran: each stage's code dependencies in dvc.yaml are exactly
its stage module's static import closure (entropy_lab.closure), so a change to any file a
stage runs makes `dvc status` list the stage, and no other change does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from entropy_lab.closure import closure, dvc_deps
from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def code_deps(stage: str) -> list[str]:
    entry = STAGES[stage]
    entry = entry.get("do", entry)
    return [d for d in entry["deps"] if d.startswith("src/")]


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(REPO).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_file_a_stage_runs_is_a_dependency(stage):
    module = f"entropy_lab.stages.{stage.replace('-', '_')}"
    deps = code_deps(stage)
    missing = [p.relative_to(REPO).as_posix() for p in closure(module) if not covered(p, deps)]
    assert not missing, f"{stage} runs files dvc.yaml does not list: {missing}"
    assert deps == dvc_deps(module), "paste `python -m entropy_lab.closure " + stage + "`"


def test_closures_stay_small():
    """Reading params imports no task family, so the model build does not depend on parsers;
    the report's wording does not retrain anything."""
    parser = REPO / "src/entropy_lab/tasks/basic.py"
    wording = REPO / "src/entropy_lab/report/markdown.py"
    depends = {s for s in STAGES if covered(parser, code_deps(s))}
    assert depends == {"tasks", "evaluate", "evaluate-untaught", "report"}, depends
    assert {s for s in STAGES if covered(wording, code_deps(s))} == {"report"}
    for stage in ("harvest", "build", "models"):
        assert not any("tasks/basic" in d or d.endswith("/tasks") for d in code_deps(stage))


def test_a_stage_module_names_its_imports_statically(tmp_path, monkeypatch):
    """Both import forms count, at module level or inside a function, with their packages."""
    import entropy_lab.closure as c

    pkg = tmp_path / "entropy_lab"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/b.py", "c.py", "unused.py"):
        (pkg / name).write_text("")
    (pkg / "a.py").write_text(
        "from entropy_lab.sub import b\n\ndef f():\n    import entropy_lab.c\n"
    )
    monkeypatch.setattr(c, "SRC", tmp_path)
    c.imports.cache_clear()
    try:
        names = {p.relative_to(pkg).as_posix() for p in c.closure("entropy_lab.a")}
    finally:
        c.imports.cache_clear()
    assert names == {"__init__.py", "a.py", "sub/__init__.py", "sub/b.py", "c.py"}


def test_no_import_cycle_in_the_package():
    """No module of src/ reaches itself through imports, at module level or inside a function
    (a cycle makes import order matter and hides which strand depends on which)."""
    from entropy_lab.closure import SRC, imports

    files = sorted((SRC / "entropy_lab").rglob("*.py"))
    name = {
        f: ".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for f in files
    }
    graph = {name[f]: {m for m in imports(f) if m != name[f]} for f in files}
    state: dict[str, int] = {}  # 1: on the DFS stack, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join([*path, node, nxt])
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert len(graph) > 50
