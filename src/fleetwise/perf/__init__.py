"""Performance model: step times from first principles, calibrated efficiencies, request-level predictions."""

from fleetwise.perf.efficiency import CalibrationTable, Efficiency, bundled_calibration, load_calibration
from fleetwise.perf.predict import PredictRequest, predict

__all__ = ["CalibrationTable", "Efficiency", "PredictRequest", "bundled_calibration", "load_calibration", "predict"]
