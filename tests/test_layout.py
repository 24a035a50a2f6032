"""The README's "Project layout" table names every package and top-level module; every package says what it owns."""

from __future__ import annotations

import ast
from pathlib import Path

import fedunlearn

PACKAGE = Path(fedunlearn.__file__).resolve().parent
README = PACKAGE.parent / "README.md"


def _layout_table() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Project layout")
    return text[start : text.index("\n## ", start + 1)]


def test_the_layout_table_names_every_package_and_top_level_module() -> None:
    table = _layout_table()
    packages = sorted(
        p.parent.relative_to(PACKAGE.parent).as_posix() + "/"
        for p in PACKAGE.rglob("__init__.py")
        if p.parent != PACKAGE
    )
    modules = sorted(f"fedunlearn/{p.name}" for p in PACKAGE.glob("*.py"))
    missing = [f"`{name}`" for name in packages + modules if f"`{name}`" not in table]
    assert not missing, f"README 'Project layout' lacks {', '.join(missing)}"


def test_every_package_opens_with_what_it_owns() -> None:
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc.split()) >= 6, (
            f"{init} needs an opening docstring saying what it owns"
        )


def test_the_shared_run_groups_name_test_files_that_exist() -> None:
    """A renamed file would silently leave its group, and its session's runs would be made twice."""
    from tests.conftest import LONGEST_FIRST, REPO, SHARED_RUN_GROUPS

    missing = [path for path in [*SHARED_RUN_GROUPS, *LONGEST_FIRST] if not (REPO / path).is_file()]
    assert missing == []
    assert all(list(SHARED_RUN_GROUPS.values()).count(g) >= 2 for g in SHARED_RUN_GROUPS.values())
