"""Active Sample Selection (class-balanced default; the paper's eqs. 8-9), pure numpy/scikit-learn."""

from activessf.selection.config import SelectionConfig
from activessf.selection.distances import centre_distances, own_centre_distance
from activessf.selection.prototypes import class_prototypes, fit_prototypes, prepare
from activessf.selection.report import selection_contact_sheet, selection_report
from activessf.selection.select import SelectionResult, assign_nearest, budget_order, select
from activessf.selection.thresholds import ClusterStats, cluster_thresholds, density_threshold, quota_weights

__all__ = [
    "ClusterStats",
    "SelectionConfig",
    "SelectionResult",
    "assign_nearest",
    "budget_order",
    "centre_distances",
    "class_prototypes",
    "cluster_thresholds",
    "density_threshold",
    "fit_prototypes",
    "own_centre_distance",
    "prepare",
    "quota_weights",
    "select",
    "selection_contact_sheet",
    "selection_report",
]
