"""Constants shared across the package (kept in one place; this module imports nothing)."""

#: Seed of the embedded default study and of every command when none is given.
DEFAULT_SEED = 20261123
