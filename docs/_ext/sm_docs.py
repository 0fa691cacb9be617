"""Build-time steps of the sentiment-metric docs (a local Sphinx extension).

On ``builder-inited`` it writes, under ``docs/_generated/`` and ``docs/api/generated/`` (both
git-ignored):

* the figures of :mod:`figures` (Mikels' wheel, the label-relation matrices);
* ``changelog.rst.inc`` converted from ``CHANGELOG.md`` by :mod:`md2rst`;
* ``benchmarks.rst.inc`` from whatever ``benchmarks/results/*.md`` exist (none is fine);
* one API stub page per name listed in an ``autosummary`` block of ``docs/api/*.rst`` that
  imports (``autosummary_generate`` is off: this replaces it, so that a name that has not
  landed yet is left out instead of failing the ``-W`` build).

It also overrides ``autosummary`` to drop (with an info message) names that do not import,
and adds ``.. sm-submodules:: package``, an autosummary of a package's public submodules.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.ext.autosummary import Autosummary, ImportExceptionGroup
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

_CURRENTMODULE = re.compile(r"^\.\.\s+(?:py:)?currentmodule::\s*(\S+)\s*$")
_AUTOSUMMARY = re.compile(r"^(\s*)\.\.\s+autosummary::\s*$")
_SUBMODULES = re.compile(r"^\s*\.\.\s+sm-submodules::\s*(\S+)\s*$")


# -- importing ---------------------------------------------------------------------------
def resolve(fullname: str) -> Any:
    """Import ``a.b.c`` as a module or as an attribute of the longest importable prefix."""
    parts = fullname.split(".")
    for cut in range(len(parts), 0, -1):
        modname = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(modname)
        except ModuleNotFoundError as err:
            # a missing *submodule* is "not landed yet"; a missing dependency is a real error
            if err.name and not modname.startswith(err.name):
                raise RuntimeError(f"importing {modname} failed: {err}") from err
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(fullname)


def public_submodules(package: str) -> list[str]:
    """Public submodules of ``package`` (no ``_private`` ones, no ``__main__``), sorted."""
    pkg = importlib.import_module(package)
    paths = getattr(pkg, "__path__", None)
    if paths is None:
        return []
    names = []
    for info in pkgutil.iter_modules(paths):
        if info.name.startswith("_"):
            continue
        names.append(f"{package}.{info.name}")
    return sorted(names)


# -- stubs -------------------------------------------------------------------------------
def _attribute_doc(public_mod: str, name: str, obj: Any) -> list[str]:
    """The ``#:`` / string docstring of a module-level data name, looked up where it is defined."""
    from sphinx.pycode import ModuleAnalyzer

    candidates = [public_mod]
    root = public_mod.split(".")[0]
    candidates += sorted(
        m
        for m, mod in list(__import__("sys").modules.items())
        if m.startswith(root + ".") and getattr(mod, name, None) is obj
    )
    for modname in candidates:
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:
            continue
        if ("", name) in docs:
            return list(docs[("", name)])
    return []


def _stub(fullname: str, obj: Any) -> str:
    modname, _, short = fullname.rpartition(".")
    title = short if not inspect.ismodule(obj) else fullname
    head = f"{title}\n{'=' * len(title)}\n\n"
    if inspect.ismodule(obj):
        return head + f".. automodule:: {fullname}\n   :members:\n   :show-inheritance:\n"
    head += f".. currentmodule:: {modname}\n\n"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return head + f".. autoexception:: {short}\n   :show-inheritance:\n"
    if inspect.isclass(obj):
        return head + f".. autoclass:: {short}\n   :members:\n   :show-inheritance:\n"
    if inspect.isroutine(obj):
        return head + f".. autofunction:: {short}\n"
    doc = _attribute_doc(modname, short, obj)
    tname = type(obj).__name__
    tmod = type(obj).__module__
    typ = tname if tmod == "builtins" else f"{tmod}.{tname}"
    body = "\n".join(("   " + ln) if ln.strip() else "" for ln in doc)
    # typing constructs (a Literal alias...) have no useful type: show their value only
    type_line = "" if tmod == "typing" else f"   :type: {typ}\n"
    text = head + f".. data:: {short}\n{type_line}\n{body}\n"
    value = repr(obj)
    if len(value) < 2000:
        text += "\n   Value:\n\n   .. code-block:: python\n\n      " + value + "\n"
    return text


def _autosummary_names(rst: str) -> list[str]:
    """Full names listed in the autosummary / sm-submodules blocks of one .rst source."""
    lines = rst.splitlines()
    current = ""
    names: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _CURRENTMODULE.match(line)
        if m:
            current = "" if m.group(1) == "None" else m.group(1)
        sub = _SUBMODULES.match(line)
        if sub:
            try:
                names += public_submodules(sub.group(1))
            except ImportError:
                pass
        blk = _AUTOSUMMARY.match(line)
        if blk:
            indent = len(blk.group(1))
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                entry = lines[i].strip()
                if entry and not entry.startswith(":") and not entry.startswith(".."):
                    entry = entry.lstrip("~")
                    names.append(f"{current}.{entry}" if current else entry)
                i += 1
            continue
        i += 1
    return names


def write_api_stubs(srcdir: Path) -> None:
    out = srcdir / "api" / "generated"
    out.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, str] = {}
    for page in sorted((srcdir / "api").glob("*.rst")):
        for fullname in _autosummary_names(page.read_text(encoding="utf-8")):
            try:
                obj = resolve(fullname)
            except (ImportError, AttributeError):
                logger.info("[sm_docs] %s does not import (yet): no API page for it", fullname)
                continue
            except Exception as err:
                logger.warning("[sm_docs] %s: %s", fullname, err)
                continue
            wanted[fullname] = _stub(fullname, obj)
    for fullname, text in wanted.items():
        path = out / f"{fullname}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for stale in out.glob("*.rst"):
        if stale.stem not in wanted:
            stale.unlink()


# -- markdown includes ---------------------------------------------------------------------
def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_changelog(srcdir: Path, gen: Path) -> None:
    from md2rst import md_to_rst

    md = srcdir.parent / "CHANGELOG.md"
    if md.is_file():
        text = md_to_rst(md.read_text(encoding="utf-8"), base_level=0)
    else:
        text = "Changelog\n=========\n\n``CHANGELOG.md`` was not found next to ``docs/``.\n"
    _write_if_changed(gen / "changelog.rst.inc", text)


def _script_summary(script: Path) -> str:
    """The first paragraph of a benchmark script's docstring (reST-safe), or ``""``."""
    import ast

    from md2rst import md_to_rst

    try:
        doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    except (OSError, SyntaxError):
        return ""
    if not doc:
        return ""
    paragraphs = doc.strip().split("\n\n")
    question = next((p for p in paragraphs if p.startswith("Question:")), "")
    text = " ".join(paragraphs[0].split())
    if question:
        text += "\n\n" + " ".join(question.split())
    # docstrings are reST already; markdown conversion only escapes what would break
    return md_to_rst(text.replace("``", "`"))


def _collect_order(collect: Path) -> list[str]:
    """``ORDER`` of ``benchmarks/collect.py`` (the README's order of the benchmarks), if any."""
    import ast

    try:
        tree = ast.parse(collect.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "ORDER" for t in stmt.targets)
            and isinstance(stmt.value, (ast.List, ast.Tuple))
        ):
            return [e.value for e in stmt.value.elts if isinstance(e, ast.Constant)]
    return []


STUDIES = ("efficacy",)
"""Result files with a page of their own (``docs/efficacy.rst``), not on the benchmarks page."""


def write_efficacy(srcdir: Path, gen: Path) -> None:
    """``efficacy.rst.inc``: the tables of ``benchmarks/results/efficacy-cpu.md``."""
    from md2rst import md_to_rst

    md = srcdir.parent / "benchmarks" / "results" / "efficacy-cpu.md"
    if md.is_file():
        text = md_to_rst(md.read_text(encoding="utf-8"), base_level=1)
        text += "\n*Source:* ``benchmarks/results/efficacy-cpu.md`` (every run: ``.json``)\n"
    else:
        text = (
            ".. note::\n\n   ``benchmarks/results/efficacy-cpu.md`` was not found when these "
            "docs were built: run ``python benchmarks/efficacy.py``.\n"
        )
    _write_if_changed(gen / "efficacy.rst.inc", text)


def write_benchmarks(srcdir: Path, gen: Path) -> None:
    """``benchmarks.rst.inc``: one section per benchmark, one subsection per device."""
    from md2rst import md_to_rst

    bench = srcdir.parent / "benchmarks"
    results = bench / "results"
    files = sorted(results.glob("*.md")) if results.is_dir() else []
    groups: dict[str, list[Path]] = {}
    for f in files:  # <name>-<device>[-<variant>].md, the name without dashes
        if f.stem.split("-")[0] not in STUDIES:  # studies have a page of their own
            groups.setdefault(f.stem.split("-")[0], []).append(f)
    order = _collect_order(bench / "collect.py")
    names = sorted(groups, key=lambda n: (order.index(n) if n in order else len(order), n))
    parts: list[str] = []
    for name in names:
        group = groups[name]
        title = f"``{name}``"
        parts.append(f"{title}\n{'-' * len(title)}\n")
        summary = _script_summary(bench / f"{name}.py")
        if summary:
            parts.append(summary)
        parts.append(f"Script: ``benchmarks/{name}.py``.\n")
        for f in group:
            md = f.read_text(encoding="utf-8")
            if not re.search(r"^#{1,6}\s", md, flags=re.M):
                md = f"### {f.stem}\n\n" + md
            parts.append(md_to_rst(md, base_level=2))
            parts.append(f"*Source:* ``benchmarks/results/{f.name}``\n")
    if not parts:
        parts.append(
            ".. note::\n\n   No results were recorded in ``benchmarks/results/`` when these docs "
            "were built. Run the scripts (see above) and rebuild.\n"
        )
    _write_if_changed(gen / "benchmarks.rst.inc", "\n".join(parts))


def write_cli(gen: Path) -> None:
    """``cli.rst.inc``: the ``--help`` of ``sentiment-metric`` and of each of its commands."""
    import argparse
    import os

    try:
        from sentiment_metric.recipes.cli import build_parser
    except ImportError:
        _write_if_changed(
            gen / "cli.rst.inc",
            ".. note::\n\n   The command is not part of this build of the library (yet).\n",
        )
        return
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "96"
    try:
        parser = build_parser()
        parts = ["``sentiment-metric``\n" + "-" * 20 + "\n", _literal(parser.format_help())]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    title = f"``sentiment-metric {name}``"
                    parts += [f"{title}\n{'-' * len(title)}\n", _literal(sub.format_help())]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    _write_if_changed(gen / "cli.rst.inc", "\n".join(parts))


def _literal(text: str) -> str:
    body = "\n".join(("   " + ln) if ln.strip() else "" for ln in text.rstrip().splitlines())
    return f".. code-block:: text\n\n{body}\n"


def write_ablation_rows(gen: Path) -> None:
    """``ablation_rows.rst.inc``: the rows of ``sentiment-metric ablation``, from the code."""
    try:
        from sentiment_metric.recipes.ablation import ABLATION_ROWS
    except ImportError:
        text = ".. note::\n\n   The ablation recipe is not part of this build (yet).\n"
    else:
        lines = [".. list-table::", "   :header-rows: 1", "", "   * - row", "     - settings"]
        for name, overrides in ABLATION_ROWS:
            opts = ", ".join(f"``{k}={v!r}``" for k, v in overrides.items())
            lines += [f"   * - {name}", f"     - {opts}"]
        text = "\n".join(lines) + "\n"
    _write_if_changed(gen / "ablation_rows.rst.inc", text)


def write_demo_figures(srcdir: Path, gen: Path) -> None:
    """``demo_figures.rst.inc``: the demo's pictures, if someone put them in ``_static/demo/``.

    The demo writes ``embedding.png`` and ``retrieval.png``; they are not committed by default
    (large images). Copy them (small versions) to ``docs/_static/demo/`` to show them.
    """
    captions = {
        "embedding.png": "``embedding.png`` from ``sentiment-metric demo``: PCA of the test "
        "embeddings of the three models (pooled features), one hue per place on the wheel; "
        "the legend marks each emotion's polarity.",
        "retrieval.png": "``retrieval.png`` from ``sentiment-metric demo``: four queries and "
        "their top five (the sentiment-constraint model).",
    }
    parts = []
    for name, caption in captions.items():
        if (srcdir / "_static" / "demo" / name).is_file():
            parts.append(
                f".. figure:: /_static/demo/{name}\n   :align: center\n   :width: 90%\n\n"
                f"   {caption}\n"
            )
    _write_if_changed(gen / "demo_figures.rst.inc", "\n".join(parts) or "..\n")


def write_figures(srcdir: Path, gen: Path) -> None:
    import figures

    import sentiment_metric.wheel as wheel_mod

    sources = [Path(figures.__file__), Path(str(wheel_mod.__file__))]
    newest = max(p.stat().st_mtime for p in sources)
    targets = [gen / "mikels_wheel.png", gen / "label_relations.png"]
    if all(t.exists() and t.stat().st_mtime >= newest for t in targets):
        return
    figures.draw_all(gen)


def on_builder_inited(app: Sphinx) -> None:
    srcdir = Path(app.srcdir)
    gen = srcdir / "_generated"
    write_figures(srcdir, gen)
    write_changelog(srcdir, gen)
    write_benchmarks(srcdir, gen)
    write_efficacy(srcdir, gen)
    write_cli(gen)
    write_demo_figures(srcdir, gen)
    write_ablation_rows(gen)
    write_api_stubs(srcdir)


# -- directives ----------------------------------------------------------------------------
class FilteringAutosummary(Autosummary):
    """``autosummary`` that leaves out (with an info message) names that do not import yet."""

    def get_items(self, names: list[str]) -> list[tuple[str, str | None, str, str]]:
        from sphinx.ext.autosummary import get_import_prefixes_from_env

        prefixes = get_import_prefixes_from_env(self.env)
        keep = []
        for name in names:
            bare = name.lstrip("~")
            try:
                self.import_by_name(bare, prefixes=prefixes)
            except (ImportExceptionGroup, ImportError):
                logger.info("[sm_docs] %s does not import (yet): left out of the table", bare)
                continue
            keep.append(name)
        return super().get_items(keep)


class SubmodulesDirective(SphinxDirective):
    """``.. sm-submodules:: package``: the package docstring and a table of its submodules.

    ``:no-index:`` for a subpackage whose own generated page (from its parent's table) already
    describes it, so that its docstring is shown here without a second object description.
    """

    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"no-index": directives.flag}

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        try:
            mod: ModuleType = importlib.import_module(package)
        except ModuleNotFoundError:
            para = nodes.paragraph(
                text=f"{package} is not part of this build of the library (yet)."
            )
            return [para]
        subs = public_submodules(package)
        text = f".. automodule:: {mod.__name__}\n"
        text += "   :no-index:\n\n" if "no-index" in self.options else "\n"
        if subs:
            text += ".. autosummary::\n   :toctree: generated/\n   :nosignatures:\n\n"
            # automodule made ``package`` the current module: list the submodules relative to it
            text += "".join(f"   {s.rpartition('.')[2]}\n" for s in subs)
        return list(self.parse_text_to_nodes(text))


# short spellings used in annotations and docstrings -> the documented target
_ALIASES = {
    "Tensor": "torch.Tensor",
    "nn.Module": "torch.nn.Module",
    "np.ndarray": "numpy.ndarray",
}


def _missing_reference(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``SentimentMetricError``-style short names of the public API, and a few aliases.

    A docstring in ``sentiment_metric.recipes.cli`` that names ``SentimentMetricError`` (or an
    annotation ``Tensor``) does not resolve by Sphinx's rules; point it at the public object.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    domain = env.get_domain("py")
    short = target.rpartition(".")[2]
    candidates = [_ALIASES.get(target, "")]
    import sentiment_metric as sm

    if short in getattr(sm, "__all__", ()):
        candidates.append(f"sentiment_metric.{short}")
    if short in getattr(sm.functional, "__all__", ()):
        candidates.append(f"sentiment_metric.functional.{short}")
    if target.startswith("sentiment_metric."):
        # a re-exported name (``sentiment_metric.recipes.FI``): its defining module's page
        try:
            obj = resolve(target)
        except Exception:
            obj = None
        mod, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        if isinstance(mod, str) and isinstance(qual, str):
            candidates.append(f"{mod}.{qual}")
    for cand in filter(None, candidates):
        if cand in domain.objects:
            return domain.resolve_xref(
                env, node.get("refdoc"), app.builder, node.get("reftype"), cand, node, contnode
            )
        if cand.split(".")[0] in ("torch", "numpy"):
            from sphinx.ext import intersphinx

            new = node.deepcopy()
            new["reftarget"] = cand
            return intersphinx.missing_reference(app, env, new, contnode)
    return None


def _api_pages_outdated(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    """Re-read the API list pages on every build: which names import may have changed."""
    return [
        d for d in env.found_docs if d.startswith("api/") and not d.startswith("api/generated/")
    ]


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autosummary")
    app.add_directive("autosummary", FilteringAutosummary, override=True)
    app.add_directive("sm-submodules", SubmodulesDirective)
    app.connect("builder-inited", on_builder_inited)
    app.connect("env-get-outdated", _api_pages_outdated)
    app.connect("missing-reference", _missing_reference)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
