"""The documentation stays complete and its examples run (without building Sphinx).

- every public name of ``sentiment_metric.__all__`` and ``sentiment_metric.functional.__all__``
  has a docstring and is listed on an API page (``docs/api/*.rst``), and every name listed there
  exists;
- every public class and function has an ``Example:`` with a doctest (``>>>``);
- the ``testcode`` / ``testoutput`` / ``doctest`` blocks of the pages run and print what the
  page says (the same thing ``sphinx-build -b doctest docs ...`` checks);
- the Markdown that the docs include (``CHANGELOG.md``, ``benchmarks/results/*.md``) converts
  to reST that docutils parses without a warning.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import io
import itertools
import re
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import sentiment_metric as sm

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "sentiment_metric"

_CURRENTMODULE = re.compile(r"^\.\.\s+(?:py:)?currentmodule::\s*(\S+)\s*$")
_AUTOMODULE = re.compile(r"^\.\.\s+(?:automodule|sm-submodules)::\s*(\S+)\s*$")
_AUTOSUMMARY = re.compile(r"^(\s*)\.\.\s+autosummary::\s*$")


# -- what the API pages list --------------------------------------------------------------
def _api_entries() -> dict[str, str]:
    """Full name -> the API page listing it (autosummary entries and automodule targets)."""
    found: dict[str, str] = {}
    for page in sorted((DOCS / "api").glob("*.rst")):
        lines = page.read_text(encoding="utf-8").splitlines()
        current = ""
        i = 0
        while i < len(lines):
            line = lines[i]
            if m := _CURRENTMODULE.match(line):
                current = "" if m.group(1) == "None" else m.group(1)
            if m := _AUTOMODULE.match(line):
                found.setdefault(m.group(1), page.name)
                current = m.group(1)
            if m := _AUTOSUMMARY.match(line):
                indent = len(m.group(1))
                i += 1
                while i < len(lines) and (
                    not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
                ):
                    entry = lines[i].strip().lstrip("~")
                    if entry and not entry.startswith((":", "..")):
                        found.setdefault(f"{current}.{entry}" if current else entry, page.name)
                    i += 1
                continue
            i += 1
    return found


def _public(module: Any) -> list[str]:
    return [n for n in module.__all__ if not (n.startswith("__") and n.endswith("__"))]


PUBLIC = [f"sentiment_metric.{n}" for n in _public(sm)] + [
    f"sentiment_metric.functional.{n}" for n in _public(sm.functional)
]


def _resolve(fullname: str) -> Any:
    modname, _, attr = fullname.rpartition(".")
    try:
        return importlib.import_module(fullname)
    except ModuleNotFoundError:
        return getattr(importlib.import_module(modname), attr)


# -- docstrings ----------------------------------------------------------------------------
def _attribute_docstring(name: str, obj: Any) -> str | None:
    """The string literal right after ``name = ...`` in the module of the package defining it."""
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = tree.body
        for stmt, nxt in itertools.pairwise(body):
            targets: list[ast.expr] = []
            if isinstance(stmt, ast.Assign):
                targets = list(stmt.targets)
            elif isinstance(stmt, ast.AnnAssign):
                targets = [stmt.target]
            if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
                continue
            if (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                return nxt.value.value
    return None


def _own_docstring(fullname: str) -> str | None:
    obj = _resolve(fullname)
    if inspect.ismodule(obj) or inspect.isroutine(obj):
        return obj.__doc__
    if inspect.isclass(obj):
        return obj.__dict__.get("__doc__")
    return _attribute_docstring(fullname.rpartition(".")[2], obj)


@pytest.mark.parametrize("fullname", PUBLIC)
def test_public_name_has_docstring(fullname: str) -> None:
    doc = _own_docstring(fullname)
    assert doc and doc.strip(), f"{fullname} has no docstring of its own"


@pytest.mark.parametrize(
    "fullname",
    [
        n
        for n in PUBLIC
        if inspect.isroutine(_resolve(n))
        or (inspect.isclass(_resolve(n)) and not issubclass(_resolve(n), tuple))
    ],
)
def test_public_class_or_function_has_example(fullname: str) -> None:
    doc = _own_docstring(fullname) or ""
    assert re.search(r"^\s*Examples?:\s*$", doc, flags=re.M), f"{fullname}: no 'Example:' section"
    assert ">>>" in doc, f"{fullname}: its example has no doctest (>>>)"


# -- API pages -----------------------------------------------------------------------------
def test_every_public_name_is_on_an_api_page() -> None:
    listed = _api_entries()
    missing = [n for n in PUBLIC if n not in listed]
    assert not missing, f"public names missing from docs/api/*.rst: {missing}"


def test_every_api_entry_exists() -> None:
    stale = []
    for fullname, page in _api_entries().items():
        try:
            _resolve(fullname)
        except (ImportError, AttributeError):
            stale.append(f"{fullname} ({page})")
    assert not stale, f"docs/api lists names that do not import: {stale}"


# -- the examples on the pages -------------------------------------------------------------
_DIRECTIVE = re.compile(r"^\.\.\s+(testsetup|testcode|testoutput|doctest)::.*$")
_GLOBAL_SETUP = "import torch\nimport sentiment_metric as sm\ntorch.manual_seed(0)\n"


def _blocks(text: str) -> list[tuple[str, str]]:
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m:
            i += 1
            continue
        i += 1
        while i < len(lines) and lines[i].strip().startswith(":"):  # options
            i += 1
        body = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
            body.append(lines[i])
            i += 1
        out.append((m.group(1), textwrap.dedent("\n".join(body)).strip("\n") + "\n"))
    return out


PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.rst")
    if "_build" not in p.parts
    and "generated" not in p.parts
    and _blocks(p.read_text(encoding="utf-8"))
)


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str) -> None:
    blocks = _blocks((DOCS / page).read_text(encoding="utf-8"))
    glob: dict[str, Any] = {"__name__": f"docs_{page}"}
    exec(compile(_GLOBAL_SETUP, "<setup>", "exec"), glob)
    printed = ""
    for kind, code in blocks:
        if kind in ("testsetup", "testcode"):
            buf = io.StringIO()
            with redirect_stdout(buf):
                exec(compile(code, f"{page}:{kind}", "exec"), glob)
            printed = buf.getvalue()
        elif kind == "testoutput":
            checker = doctest.OutputChecker()
            flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            ok = checker.check_output(code, printed, flags)
            assert ok, f"{page}: printed\n{printed}\nexpected\n{code}"
        else:  # doctest
            test = doctest.DocTestParser().get_doctest(code, glob, page, page, 0)
            runner = doctest.DocTestRunner(
                optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
            )
            report = io.StringIO()
            runner.run(test, out=report.write, clear_globs=False)
            assert runner.failures == 0, report.getvalue()


# -- the Markdown included at build time ---------------------------------------------------
def _md2rst() -> Any:
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        return importlib.import_module("md2rst")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


@pytest.mark.parametrize(
    "md",
    [
        "CHANGELOG.md",
        *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks").glob("results/*.md")),
    ],
)
def test_included_markdown_converts_cleanly(md: str) -> None:
    docutils_core = pytest.importorskip("docutils.core")
    rst = _md2rst().md_to_rst((ROOT / md).read_text(encoding="utf-8"))
    warnings = io.StringIO()
    docutils_core.publish_doctree(
        rst, settings_overrides={"report_level": 2, "halt_level": 5, "warning_stream": warnings}
    )
    assert not warnings.getvalue(), f"{md} converts to reST with problems:\n{warnings.getvalue()}"


def test_md2rst_escapes_and_tables() -> None:
    md = "# T\n\n| a | b |\n|---|---|\n| `x_y` | __init__ *it* |\n\n- item `code`s\n"
    rst = _md2rst().md_to_rst(md)
    assert ".. list-table::" in rst
    assert "``x_y``" in rst and "\\_\\_init\\_\\_" in rst
    assert "``code``\\ s" in rst


def test_conf_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without SM_DOCS_INTERSPHINX=1 every intersphinx inventory is a local file."""
    import runpy

    monkeypatch.delenv("SM_DOCS_INTERSPHINX", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    conf = runpy.run_path(str(DOCS / "conf.py"))
    mapping = conf["intersphinx_mapping"]
    assert {"python", "torch", "pml"} <= set(mapping)
    for name, (url, inventory) in mapping.items():
        assert url.startswith("https://"), name
        assert inventory is not None and Path(inventory).is_file(), f"{name} would be downloaded"
        assert Path(inventory).read_bytes().startswith(b"# Sphinx inventory version 2"), name
