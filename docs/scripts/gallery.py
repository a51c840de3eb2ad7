"""Copy the stored step notebooks into the documentation source and write their gallery page.

Called by ``docs/conf.py``. The notebooks (``scaleup_analysis/notebooks/NN_*.ipynb``, linked as
``notebooks/``) are rendered by myst-nb from their *stored* outputs (``nb_execution_mode = "off"``):
the site shows exactly what ``make notebooks`` computed and nbval checks. Each card shows the
notebook's title, its question (the "**Question.**" paragraph of its first cell) and, as thumbnail,
the first figure the notebook stored.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "scaleup_analysis" / "notebooks"


def _first_markdown(nb: dict) -> str:
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            return "".join(cell["source"])
    return ""


def _title_and_question(nb: dict, fallback: str) -> tuple[str, str]:
    text = _first_markdown(nb)
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("# ")), fallback)
    m = re.search(r"\*\*Question\.\*\*\s*(.+?)(?:\n\s*\n|$)", text, flags=re.S)
    question = " ".join(m.group(1).split()) if m else ""
    return title, question


def _first_png(nb: dict) -> bytes | None:
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return base64.b64decode("".join(png) if isinstance(png, list) else png)
    return None


def write_gallery(out_dir: Path) -> list[Path]:
    """Copy ``NN_*.ipynb`` into ``out_dir`` and write ``out_dir/index.md`` (the gallery)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    thumbs = out_dir / "thumbnails"
    thumbs.mkdir(exist_ok=True)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit(f"docs: no step notebooks in {NOTEBOOKS}")
    cards = []
    for path in paths:
        shutil.copyfile(path, out_dir / path.name)
        nb = json.loads(path.read_text(encoding="utf-8"))
        title, question = _title_and_question(nb, path.stem)
        png = _first_png(nb)
        img = ""
        if png is not None:
            (thumbs / f"{path.stem}.png").write_bytes(png)
            img = (f":img-top: thumbnails/{path.stem}.png\n:img-alt: first figure of {title}\n"
                   ":class-img-top: gallery-thumbnail\n")
        cards.append(
            f":::{{grid-item-card}} {title}\n:link: {path.stem}\n:link-type: doc\n{img}\n{question}\n:::\n"
        )
    page = [
        "# Step notebooks",
        "",
        "The five step notebooks that `make report` and `scaleup report` run on a study, shown here as "
        "stored in the package (`scaleup_analysis/notebooks/`, linked as `notebooks/` in the "
        "repository) on the embedded default study: a simulated province-wide scale-up over "
        "Quebec's 18 health regions. They are rendered from their stored outputs, not re-executed; "
        "`make test` checks with nbval that executing them reproduces every stored output.",
        "",
        "::::{grid} 1 2 2 3",
        ":gutter: 3",
        "",
        *cards,
        "::::",
        "",
        "```{toctree}",
        ":hidden:",
        "",
        *[p.stem for p in paths],
        "```",
        "",
    ]
    index = out_dir / "index.md"
    index.write_text("\n".join(page), encoding="utf-8")
    return [index, *(out_dir / p.name for p in paths)]


if __name__ == "__main__":
    for p in write_gallery(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "_generated" / "notebooks"):
        print(p)
