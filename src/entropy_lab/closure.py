"""The project files a stage runs: the static import closure of its stage module.

Every `import entropy_lab...` and `from entropy_lab... import ...` in a module counts, at
module level or inside a function (the stages import heavy libraries lazily), and so does
every package `__init__.py` on the way, and the data a package reads beside its code (a
folder without `__init__.py` in it, such as the report's templates). `dvc.yaml` lists these files as the stage's code
dependencies (tests/test_stage_deps.py checks it), and the train stage hashes them into its
checkpoints' digest, so the two never disagree.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = "entropy_lab"
SRC = Path(__file__).resolve().parent.parent  # the directory that holds the package


def module_file(name: str) -> Path | None:
    """The file of a dotted module name of this project (a module or a package), or None."""
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def imports(path: Path) -> frozenset[str]:
    """The project modules one file imports, by dotted name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            found.add(node.module)
            # `from package import module` imports the module too
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return frozenset(n for n in found if module_file(n) is not None)


def data_dirs(package: Path) -> list[Path]:
    """A package's data folders: its subfolders that are not packages (nor caches)."""
    return sorted(
        d for d in package.iterdir()
        if d.is_dir() and d.name != "__pycache__" and not (d / "__init__.py").exists()
    )  # fmt: skip


def closure(module: str) -> list[Path]:
    """Every project file that importing `module` (and calling into it) may run or read, sorted."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # each package on the way runs its __init__.py
            path = module_file(".".join(parts[:i]))
            if path is not None and path not in seen:
                seen.add(path)
                todo.extend(imports(path))
    data = {
        f for d in {p.parent for p in seen} for folder in data_dirs(d)
        for f in folder.rglob("*") if f.is_file() and "__pycache__" not in f.parts
    }  # fmt: skip
    return sorted(seen | data)


def code_digest(module: str) -> str:
    """One hash of a stage's closure: relative path -> sha256 of each file."""
    from entropy_lab.provenance import canonical_json, sha256_bytes, sha256_file

    return sha256_bytes(
        canonical_json({p.relative_to(SRC).as_posix(): sha256_file(p) for p in closure(module)})
    )


def dvc_deps(module: str, repo: Path = SRC.parent) -> list[str]:
    """The closure as `dvc.yaml` lists it: a package directory where the closure holds every
    module in it and it has no subpackage, single files otherwise, and each data folder whole;
    paths from the repo."""
    files = closure(module)
    chosen = set(files)
    out = []
    for directory in sorted({p.parent for p in files if p.suffix == ".py"}):
        members = set(directory.glob("*.py"))
        data = data_dirs(directory)
        subpackages = [d for d in directory.iterdir() if (d / "__init__.py").exists()]
        if members <= chosen and not subpackages and directory != SRC / PACKAGE:
            out.append(directory.relative_to(repo).as_posix())
            continue
        out += [p.relative_to(repo).as_posix() for p in sorted(members & chosen)]
        out += [d.relative_to(repo).as_posix() for d in data]
    return out


if __name__ == "__main__":  # `python -m entropy_lab.closure train`: the deps to paste
    import sys

    for path in dvc_deps(f"{PACKAGE}.stages.{sys.argv[1].replace('-', '_')}"):
        print(f"    - {path}")
