"""monitoring models (see the modules in this package)."""
