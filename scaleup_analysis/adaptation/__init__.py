"""Step 4, adaptations: the FRAME / FRAME-IS coding scheme, summaries, effects and active ingredients.

One module per job (every public name is also ``sa.<name>`` and importable from this package):

* :mod:`.frame` - :func:`frame_scheme` (the coding scheme as data) and :func:`validate_adaptations`
  (an adaptations table checked against it);
* :mod:`.summaries` - :func:`summarize_adaptations` (counts and shares by FRAME field, region and
  phase) and :func:`plot_adaptation_timeline` (a site x period timeline);
* :mod:`.effects` - :func:`adaptation_effects` (outcomes on the cumulative numbers of
  fidelity-consistent and fidelity-inconsistent adaptations, and an event study around each site's
  first fidelity-inconsistent adaptation);
* :mod:`.dose_response` - :func:`fidelity_dose_response` (the innovation's effect on the fidelity
  index);
* :mod:`.components` - :func:`component_analysis` (which components of an intervention carry its
  effect: meta-regression of study effects on component indicators).

The site x period panel and the model fit that :mod:`.effects` and :mod:`.dose_response` share are in
:mod:`._panel`.
"""

from .components import ComponentAnalysis, component_analysis
from .dose_response import DoseResponse, fidelity_dose_response
from .effects import AdaptationEffects, adaptation_effects
from .frame import frame_scheme, validate_adaptations
from .summaries import AdaptationSummary, plot_adaptation_timeline, summarize_adaptations

__all__ = [
    "frame_scheme",
    "validate_adaptations",
    "summarize_adaptations",
    "AdaptationSummary",
    "plot_adaptation_timeline",
    "adaptation_effects",
    "AdaptationEffects",
    "fidelity_dose_response",
    "DoseResponse",
    "component_analysis",
    "ComponentAnalysis",
]
