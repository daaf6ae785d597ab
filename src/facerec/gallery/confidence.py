"""How sure an answer is, in words a person reads, from a measured rate rather than a raw distance.

A distance of 0.74 means nothing to a user. What it means is how often a stranger (someone not
enrolled) would come that close to someone in this gallery: the pipeline's reference calibration
(:mod:`facerec.gallery.reference`, measured on LFW View 1's development people) gives exactly
that for a gallery with these photo counts. The words follow the rate:

* ``very likely``: a stranger comes this close at most 1 time in 1,000;
* ``likely``: within the gallery's threshold, but more often than that;
* ``uncertain``: a name given although strangers come this close more than 1 time in 50: only
  where no measured threshold made the decision (a closed-set answer, ``--closed-set``, or a
  threshold set by hand). A name a measured threshold let through is at least ``likely``: that
  threshold was measured on this gallery's size (or its own faces), while the reference's rates for
  people with many photos are extrapolated upwards (an over-statement), so they may not overrule it;
* ``unknown``: beyond the threshold, with the nearest person named as a look-alike, not an answer.

Where no reference exists (a model never calibrated, another metric) the answer says it has no
measured rate instead of guessing one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facerec.gallery.calibration import plain_rate

#: A named face this rarely matched by a stranger is "very likely" the person.
VERY_LIKELY_RATE = 1e-3
#: A named face more often matched by a stranger than this is a guess, said so.
UNCERTAIN_RATE = 0.02


@dataclass(frozen=True)
class Confidence:
    words: str  # "very likely", "likely", "uncertain", "unknown"
    stranger_rate: float | None  # how often a stranger comes this close to someone here; None: not measured

    def explain(self) -> str:
        """The rate behind the words, e.g. "a stranger comes this close about 1 in 4,000 times"."""
        if self.words == "unknown":
            return ""  # nobody was named: there is no answer to be sure of
        if self.stranger_rate is None:
            return "no measured rate for this model"
        return f"a stranger comes this close about {plain_rate(max(self.stranger_rate, 1e-6))} times"


class ConfidenceScale:
    """The words for a gallery's answers; made once per gallery (it reads the reference table and
    the photo counts), then :meth:`of` costs one interpolation."""

    def __init__(self, gallery, calibration=None):
        """``calibration``: the open-set rule the answers were decided by (None: a closed set)."""
        self._thresholds = self._rates = None
        self._measured = calibration is not None and calibration.source in ("calibrated", "reference")
        pipeline = getattr(gallery, "pipeline", None)
        if pipeline is None or getattr(gallery, "metric", "euclidean") != "euclidean":
            return
        from facerec.gallery.reference import reference_for

        ref = reference_for(pipeline)
        counts = gallery.photo_counts()
        if ref is None or not len(counts):
            return
        self._thresholds, self._rates = ref.thresholds, ref.fpir(counts)

    def rate_at(self, distance: float) -> float | None:
        if self._rates is None or not np.isfinite(distance):
            return None
        return float(np.interp(distance, self._thresholds, self._rates))

    def of(self, prediction) -> Confidence:
        """The words for one :class:`~facerec.gallery.identify.Prediction`."""
        rate = self.rate_at(prediction.distance)
        if prediction.unknown:
            return Confidence("unknown", rate)
        if rate is not None and rate <= VERY_LIKELY_RATE:
            return Confidence("very likely", rate)
        if rate is not None and rate > UNCERTAIN_RATE and not self._measured:
            return Confidence("uncertain", rate)
        return Confidence("likely", rate)
