"""Sphinx configuration for the sentiment-metric documentation.

Build (offline, what CI runs)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

Run the code examples of the pages (the docstrings' run under pytest --doctest-modules)::

    sphinx-build -W --keep-going -b doctest docs docs/_build/doctest

Intersphinx never downloads anything unless ``SM_DOCS_INTERSPHINX=1`` is set: by default it
reads small local inventories written by ``docs/_ext/inventories.py`` (the pytorch-metric-learning
one is always local: PML's MkDocs site publishes none).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

from inventories import NUMPY_URL, PML_URL, PYTHON_URL, TORCH_URL, write_inventories  # noqa: E402

import sentiment_metric  # noqa: E402

# -- project -----------------------------------------------------------------------------
project = "sentiment-metric"
author = "sentiment-metric developers"
copyright = "2026, sentiment-metric developers"
release = sentiment_metric.__version__
version = ".".join(release.split(".")[:2])

# -- extensions --------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sm_docs",  # docs/_ext/sm_docs.py: figures, changelog, benchmarks, API stubs
]

exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]
nitpicky = False  # torch / PML type names in signatures need not all resolve

# autodoc / autosummary: the API stubs are written by sm_docs from docs/api/*.rst
autosummary_generate = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_inherit_docstrings = False
add_module_names = False
python_use_unqualified_type_names = True

# napoleon: Google style only
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape", "Shapes"]

# doctest builder (`-b doctest`): the `testcode` / `doctest` blocks of the pages. The `>>>`
# examples of the docstrings are run by pytest (`--doctest-modules`, with their module's
# globals), not here: the builder would run them without those globals.
doctest_test_doctest_blocks = ""
doctest_global_setup = """
import torch
import sentiment_metric as sm
torch.manual_seed(0)
"""

# intersphinx: offline by default (see the module docstring)
_inv = write_inventories(DOCS / "_generated" / "inventories")
_online = os.environ.get("SM_DOCS_INTERSPHINX", "") == "1"
intersphinx_mapping = {
    "python": (PYTHON_URL, None if _online else str(_inv["python"])),
    "torch": (TORCH_URL, None if _online else str(_inv["torch"])),
    "numpy": (NUMPY_URL, None if _online else str(_inv["numpy"])),
    "pml": (PML_URL, str(_inv["pml"])),
}
intersphinx_timeout = 10

# -- HTML ------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"sentiment-metric {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
