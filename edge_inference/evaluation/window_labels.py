"""The one rule that gives a streamed IMU window its ground-truth label.

The behavior node classifies every window of a continuous stream (100 samples,
stride 25), so windows straddle activity changes and postural transitions. Training
(``train-fsq``, its ``--eval``) and scoring (``eval``'s behavior metrics) both label
such windows with :func:`window_label`, here and nowhere else:

    A window's label is the annotation covering at least half of its samples:
    a model class -> that class; a postural transition (or any other annotated
    activity the model does not output) -> TRANSITION; unannotated samples ->
    UNLABELLED. When no annotation covers half the window -> MIXED. A tie at
    exactly half goes to the annotation that holds at the newer end of the window.

Only windows with a class label (>= 0) are scored for accuracy. The others are
counted, never silently dropped: TRANSITION windows are reported with what the model
predicted for them, UNLABELLED and MIXED windows as counts.
"""
from __future__ import annotations

import numpy as np

#: Per-sample and per-window codes (class labels are >= 0).
UNLABELLED = -1  # no annotation (HAPT: stretches between segments)
TRANSITION = -2  # a postural transition / an annotated activity outside the model's classes
MIXED = -3  # per window only: no annotation covers half of it
MIN_FRACTION = 0.5
EXCLUDED_NAMES = {UNLABELLED: "unlabelled", TRANSITION: "transition", MIXED: "mixed"}


def window_label(sample_labels, min_fraction: float = MIN_FRACTION) -> int:
    """Label of one window from its per-sample labels, oldest first (rule in the module docstring)."""
    labels = np.asarray(sample_labels, dtype=np.int64).reshape(-1)
    if labels.size == 0:
        return MIXED
    values, first_from_newest, counts = np.unique(labels[::-1], return_index=True, return_counts=True)
    best = counts.max()
    if best < min_fraction * labels.size:
        return MIXED
    tied = np.flatnonzero(counts == best)
    return int(values[tied[np.argmin(first_from_newest[tied])]])  # tie: the one seen nearest the newest end


def window_labels(sample_labels: np.ndarray, ends: np.ndarray, window_length: int,
                  min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """:func:`window_label` of each window ``sample_labels[end - window_length + 1 : end + 1]``."""
    sample_labels = np.asarray(sample_labels, dtype=np.int64)
    return np.asarray([window_label(sample_labels[e - window_length + 1:e + 1], min_fraction) for e in ends],
                      dtype=np.int64)


def excluded_counts(y_true, y_pred, class_names) -> dict:
    """Windows not scored for accuracy, by reason, and what the model said on transitions."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    out = {name: int((y_true == code).sum()) for code, name in EXCLUDED_NAMES.items()}
    transition = y_true == TRANSITION
    out["transition_predicted_as"] = {name: int((y_pred[transition] == i).sum())
                                      for i, name in enumerate(class_names)}
    return out
