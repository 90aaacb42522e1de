"""Memory fit: which instance, TP degree and dtype hold a model, and how many sequences its KV cache admits."""

from fleetwise.fit.memory import FitResult, fit_model, fit_one

__all__ = ["FitResult", "fit_model", "fit_one"]
