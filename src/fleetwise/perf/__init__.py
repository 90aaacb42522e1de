"""Performance model: step times from first principles, calibrated efficiencies, deployment shapes."""

from fleetwise.perf.efficiency import CalibrationTable, Efficiency, bundled_calibration, load_calibration
from fleetwise.perf.shape import DeploymentShape, resolve_shape

__all__ = ["CalibrationTable", "DeploymentShape", "Efficiency", "bundled_calibration", "load_calibration",
           "resolve_shape"]
