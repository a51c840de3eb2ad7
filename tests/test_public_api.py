"""Every public name is importable as ``sa.<name>`` and listed in its module's ``__all__``."""

from __future__ import annotations

import importlib

import pytest

import scaleup_analysis as sa


@pytest.mark.parametrize("module", sorted(sa._EXPORTS))
def test_exports_match_module_all(module):
    mod = importlib.import_module(f"scaleup_analysis.{module}")
    exported = set(sa._EXPORTS[module])
    assert exported <= set(mod.__all__), f"{module}: exported but not in __all__: {exported - set(mod.__all__)}"
    for name in exported:
        assert getattr(sa, name) is getattr(mod, name)


def test_names_in_dir_and_all():
    for name in sa._NAME_TO_MODULE:
        assert name in sa.__all__
        assert name in dir(sa)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sa.nope  # noqa: B018
