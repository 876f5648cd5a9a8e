"""Classification metrics in numpy: accuracy, macro-F1, confusion matrix."""
from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, N) counts, rows = true class, columns = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over classes present in truth or prediction."""
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    total = int(cm.sum())
    return {"n": total, "accuracy": float(np.trace(cm) / total) if total else 0.0,
            "macro_f1": macro_f1(cm), "class_names": list(class_names), "confusion_matrix": cm.tolist()}
