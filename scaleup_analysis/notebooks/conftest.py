"""pytest collection for the step notebooks: only the .ipynb files (nbval); the paired jupytext .py
files are the same notebooks in review-friendly form and must not be imported as modules."""

collect_ignore_glob = ["*.py"]
