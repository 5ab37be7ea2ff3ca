"""The package has no import cycle (tools/import_cycles.py, read from the source alone); its layers are checked
by import-linter's contracts in pyproject.toml (``lint-imports`` in .ci/run)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "tools" / "import_cycles.py")
assert _spec is not None and _spec.loader is not None
import_cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_cycles)


def test_the_package_has_no_import_cycle() -> None:
    graph = import_cycles.import_graph(ROOT)
    assert "avb_zoo.cli" in graph and "avb_zoo.export.exporter" in graph and "avb_zoo.hub.resolve" in graph
    assert import_cycles.cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle_through_function_level_imports(tmp_path: Path) -> None:
    package = tmp_path / "avb_zoo"
    (package / "sub").mkdir(parents=True)
    (tmp_path / "cli.py").write_text("import avb_zoo.a\n")
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from avb_zoo.sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import avb_zoo.cli\n")
    graph = import_cycles.import_graph(tmp_path)
    assert import_cycles.cycles(graph) == [["avb_zoo.a", "avb_zoo.sub.b"]]
    assert graph["avb_zoo.c"] == set()  # an import only for type checkers is no edge
