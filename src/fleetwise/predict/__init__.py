"""Predictions for one replica: a static batch from the perf model, a user count or a rate from the simulator."""

from fleetwise.predict.predict import PredictRequest, predict
from fleetwise.predict.prediction import Prediction

__all__ = ["PredictRequest", "Prediction", "predict"]
