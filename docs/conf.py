"""Sphinx configuration of the scaleup_analysis documentation site (``make docs``).

Pages written at build time into ``docs/_generated/`` (not committed):
- ``api/``: the API reference, one page per row of the README's module map (``scripts/api_pages.py``);
- ``notebooks/``: the stored step notebooks and their gallery (``scripts/gallery.py``);
- ``validation.md``: the validation tables, computed by ``scripts/validation.py`` (run by ``make docs``
  before Sphinx, since it runs the reference tests).
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
sys.path.insert(0, str(DOCS / "scripts"))
sys.path.insert(0, str(ROOT))

from api_pages import write_api_pages  # noqa: E402
from gallery import write_gallery  # noqa: E402

import scaleup_analysis  # noqa: E402

write_api_pages(GENERATED / "api")
write_gallery(GENERATED / "notebooks")
if not (GENERATED / "validation.md").exists():
    raise SystemExit(
        "docs/_generated/validation.md is missing: build the site with `make docs` (it runs "
        "`python docs/scripts/validation.py --out docs/_generated/validation.md` first)."
    )

# -- project -----------------------------------------------------------------------------------------
project = "scaleup_analysis"
author = "scaleup_analysis contributors"
copyright = "scaleup_analysis contributors"
release = scaleup_analysis.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",  # Markdown pages (myst-parser) and the stored notebooks
    "sphinx_design",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "scripts", "**.ipynb_checkpoints", "README.md"]
templates_path: list[str] = []

# -- API reference -----------------------------------------------------------------------------------
autosummary_generate = False  # the tables link to the entries on the same page (api_pages.py)
autodoc_typehints = "none"  # types are in the numpydoc Parameters / Returns sections
autodoc_member_order = "bysource"
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # methods are documented by autodoc's :members:
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- Markdown and notebooks --------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # render the stored outputs; make test checks them with nbval
nb_output_stderr = "show"

# -- HTML --------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"scaleup_analysis {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "header_links_before_dropdown": 4,
    "show_toc_level": 2,
    "secondary_sidebar_items": {"**": ["page-toc"], "_generated/validation": []},
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path = ["_static"]
html_css_files = ["gallery.css"]
html_show_sourcelink = False
html_sidebars = {"_generated/validation": []}  # wide tables: no left column on that page
