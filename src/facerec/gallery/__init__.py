"""The gallery: enrolled faces as an estimator (fit/add/remove), its file format, its calibration
(what a distance means for strangers), identification with evidence, 1:1 verification, and the
search index behind them."""

from facerec.gallery.estimator import Gallery

__all__ = ["Gallery"]
