"""scaleup_analysis: evaluate the scale-up of health and social-service innovations.

Conventionally imported as ``import scaleup_analysis as sa``. Every public function lives in a
submodule with a self-explaining name (``sa.data``, ``sa.effect_sizes``, ``sa.heterogeneity``,
``sa.agreement``, ``sa.rollout``, ``sa.monitoring``, ...) and is re-exported here. Submodules are
imported lazily on first use (PEP 562), so ``import scaleup_analysis`` stays fast for the CLI.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import PackageNotFoundError, version as _version

from .errors import (
    ConvergenceWarning,
    RawDataChangedError,
    RowsOmittedWarning,
    ScaleupDataError,
    ScaleupWarning,
)

# Eager import: the submodule ``effect_sizes`` shares its name with its function. Importing it here,
# before anything else can, binds ``sa.effect_sizes`` to the function for good (a later
# ``import scaleup_analysis.effect_sizes`` finds the module in sys.modules and leaves the attribute).
from .effect_sizes import effect_sizes
from .summarize import summarize  # same situation: module and function share the name

# library logging: silent unless the application configures it (the report runner logs to run.log)
logging.getLogger("scaleup_analysis").addHandler(logging.NullHandler())

try:
    __version__ = _version("scaleup_analysis")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

# submodule -> public names it exports (each must also be in that submodule's __all__;
# tests/test_public_api.py checks it).
_EXPORTS: dict[str, tuple[str, ...]] = {
    "data.schemas": ("SCHEMAS", "validate_table", "validate_tables"),
    "data.io": ("load_table", "load_tables", "LoadedTables", "write_table_atomic"),
    "data.manifest": ("write_manifest", "check_manifest"),
    "data.datasets": ("load_dataset", "list_datasets"),
    "data.simulate": ("simulate_scaleup", "SimulatedScaleup", "ScaleupTruth", "write_encounters_parquet"),
    "study": ("load_study", "default_study", "Study", "StudySettings"),
    "scaffold": ("init_study",),
    "steps": ("StepReport", "Section", "SectionOutput", "NotApplicable"),
    "reporting": ("run_report", "ReportResult"),
    "feedback": ("write_feedback", "FeedbackResult"),
    "notebook": ("setup_display",),
    "i18n": ("set_language", "get_language"),
    "effect_sizes": ("effect_sizes",),
    "fidelity": (
        "session_adherence",
        "fidelity_index",
        "fidelity_by",
        "classify_fidelity",
        "fidelity_drift",
        "FidelityDrift",
        "plot_fidelity",
    ),
    "heterogeneity.meta": (
        "meta_analysis",
        "meta_regression",
        "MetaAnalysisResult",
        "MetaRegressionResult",
        "PermutationTestResult",
    ),
    "prom": ("scale_reliability", "ScaleReliability", "scale_omega", "ScaleOmega"),
    "prom_sites": ("score_scale", "prem_by_site", "PremBySite"),
    "heterogeneity.multilevel": ("multilevel_meta_analysis", "MultilevelMetaResult"),
    "heterogeneity.mixed": ("mixed_model", "MixedModelResult"),
    "agreement": (
        "icc",
        "icc_mixed",
        "cohen_kappa",
        "fleiss_kappa",
        "krippendorff_alpha",
        "ICCResult",
        "ICCMixedResult",
        "KappaResult",
        "FleissKappaResult",
        "KrippendorffResult",
    ),
    "rollout.stepped_wedge": (
        "stepped_wedge_design",
        "rollout_design",
        "stepped_wedge_power",
        "stepped_wedge_power_sim",
        "stepped_wedge_analysis",
        "SteppedWedgeDesign",
        "SteppedWedgePower",
        "SteppedWedgePowerSim",
        "SteppedWedgeAnalysis",
    ),
    "rollout.did": (
        "staggered_did",
        "twfe_did",
        "bacon_decomposition",
        "StaggeredDiDResult",
        "AggregatedDiDResult",
        "TWFEResult",
        "BaconDecomposition",
    ),
    "rollout.its": ("interrupted_time_series", "ITSResult"),
    "monitoring.spc": ("runs_analysis", "control_chart", "RunsAnalysis", "ControlChart"),
    "monitoring.cusum": ("risk_adjusted_cusum", "RiskAdjustedCusum"),
    "monitoring.funnel": ("institutional_funnel", "InstitutionalFunnel", "indicator_funnel"),
    "monitoring.casemix": ("indirect_standardization", "IndirectStandardization", "reliability_adjusted_values",
                           "ReliabilityAdjusted"),
    "adaptation.frame": ("frame_scheme", "validate_adaptations"),
    "adaptation.summaries": ("summarize_adaptations", "AdaptationSummary", "plot_adaptation_timeline"),
    "adaptation.effects": ("adaptation_effects", "AdaptationEffects"),
    "adaptation.dose_response": ("fidelity_dose_response", "DoseResponse"),
    "adaptation.components": ("component_analysis", "ComponentAnalysis"),
    "monitoring.equity": ("inequality", "Inequality", "equity_effects", "EquityEffects"),
    "scalability": ("load_instrument", "list_instruments", "score_assessment", "Instrument", "AssessmentScores"),
    "monitoring.reaim": ("reaim", "ReaimResult"),
    "monitoring.voltage": ("site_effects", "voltage_drop", "VoltageDropResult"),
    "summarize": ("summarize", "mixed_model_from_summary", "site_effects_from_summary"),
    "privacy": ("suppress_small_cells", "check_no_identifiers"),
    "sustainment.data": ("deadoption_times",),
    "sustainment.survival": (
        "kaplan_meier",
        "cumulative_incidence",
        "concordance",
        "KaplanMeierResult",
        "CumulativeIncidenceResult",
        "ConcordanceResult",
    ),
    "sustainment.cox": ("cox_model", "CoxResult"),
    "sustainment.after_support": ("support_withdrawal_effects", "SupportWithdrawalResult"),
    "monitoring.quintuple": (
        "quintuple_aim_panel",
        "change_from_baseline",
        "deleterious_effects",
        "plot_dashboard",
        "QuintupleAimPanel",
        "ChangeFromBaseline",
        "DeleteriousEffects",
    ),
}

_NAME_TO_MODULE = {name: mod for mod, names in _EXPORTS.items() for name in names}

__all__ = [
    "__version__",
    "ScaleupDataError",
    "RawDataChangedError",
    "ScaleupWarning",
    "ConvergenceWarning",
    "RowsOmittedWarning",
    *sorted(_NAME_TO_MODULE),
]


def __getattr__(name: str):
    module = _NAME_TO_MODULE.get(name)
    if module is None:
        raise AttributeError(f"module 'scaleup_analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # cache: later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
