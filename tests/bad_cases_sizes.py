"""Bad inputs of the sizes area: resampling runs (bootstrap draws, permutations) too large to hold in
memory or to finish, refused before the work with the estimate (issue 16). The time estimates come
from timing the first draws of the run itself, so these cases take a fraction of a second each."""

from __future__ import annotations

import numpy as np
import pandas as pd
from bad_input_support import Bad, ratings, sim, tbl

import scaleup_analysis as sa


def _panel():
    rng = np.random.default_rng(3)
    n, T = 24, 6
    return pd.DataFrame({"unit": np.repeat(np.arange(n), T), "time": np.tile(np.arange(1, T + 1), n),
                         "cohort": np.repeat(np.repeat([0, 3, 4, 5], n // 4), T), "y": rng.normal(size=n * T)})


def _site_effects():
    o = tbl("outcomes")
    return sa.site_effects(o[o["indicator_id"] == "HO_Y"], tbl("sites"), "HO_Y")


def _landenberger():
    return sa.effect_sizes(sa.load_dataset("landenberger2005"), "OR", ai="n.cbt.non", bi="n.cbt.rec",
                           ci="n.ctrl.non", di="n.ctrl.rec")


CASES: list[Bad] = [
    Bad("sizes_did_n_boot_memory", "staggered_did", "n_boot = 10**9 bootstrap draws (memory)",
        lambda: sa.staggered_did(_panel(), "y", "unit", "time", "cohort", n_boot=10**9),
        ("staggered_did: n_boot=1,000,000,000 draws would hold about", "GB in memory (limit about 2 GB)",
         "n_boot=999")),
    Bad("sizes_voltage_n_boot_memory", "voltage_drop", "n_boot = 10**9 resamples (memory)",
        lambda: sa.voltage_drop(data=_site_effects(), levels=["pilot", "scale-up"], n_boot=10**9),
        ("voltage_drop(): n_boot=1,000,000,000 draws would hold about 16 GB in memory",)),
    Bad("sizes_voltage_n_boot_time", "voltage_drop", "n_boot = 10**7 resamples (time)",
        lambda: sa.voltage_drop(data=_site_effects(), levels=["pilot", "scale-up"], n_boot=10**7),
        ("voltage_drop(): n_boot=10,000,000 draws would take about", "timed on the first", "limit about 10 minutes",
         "2,000 resamples")),
    Bad("sizes_component_n_perm_time", "component_analysis", "n_perm = 10**9 permutations (time)",
        lambda: sa.component_analysis(_landenberger(), components=["cbt.angerctrl", "cbt.intpprbsolv"], n_perm=10**9),
        ("n_perm=1,000,000,000 draws would take about", "timed on the first", "1,000 permutations")),
    Bad("sizes_alpha_n_boot_memory", "krippendorff_alpha", "n_boot = 10**9 bootstrap draws (memory)",
        lambda: sa.krippendorff_alpha(ratings(), "t", "r", "y", n_boot=10**9),
        ("krippendorff_alpha: n_boot=1,000,000,000 draws would hold about", "in memory (limit about 2 GB)")),
    Bad("sizes_assessment_n_boot_memory", "score_assessment", "n_boot = 10**9 bootstrap draws of rater agreement",
        lambda: sa.score_assessment(sim()["assessments"], "ISAT", n_boot=10**9),
        ("krippendorff_alpha: n_boot=1,000,000,000 draws would hold about", "in memory")),
]
