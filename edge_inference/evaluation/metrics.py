"""Scores for offline evaluation: plain numpy, no ROS, no torch.

Every function takes arrays and returns JSON-ready dicts of Python floats/ints,
so metrics.json is a pure function of the replayed data (byte-identical reruns).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edge_inference.evaluation.window_labels import excluded_counts

STATE_TIMEOUT_NS = 1_000_000_000  # a state older than this (a pause: the bridge timed out) counts as neutral
SIGN_DEADBAND = 0.05  # |steering| below this counts as "straight" (normalized units)


def _f(x: float) -> float | None:
    """JSON-safe float: NaN/Inf become None, values rounded to 7 significant digits."""
    x = float(x)
    return float(f"{x:.7g}") if np.isfinite(x) else None


def regression_metrics(pred: np.ndarray, target: np.ndarray, names: Sequence[str]) -> dict:
    """Per-dimension MAE, RMSE, normalized error, bias.

    pred, target: (N, A). Normalized error = MAE / std(target): 1.0 means no better
    than the spread of the teleop signal itself.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, len(names))
    target = np.asarray(target, dtype=np.float64).reshape(-1, len(names))
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ")
    out = {}
    for i, name in enumerate(names):
        err = pred[:, i] - target[:, i]
        n = err.size
        mae = np.abs(err).mean() if n else np.nan
        std = target[:, i].std() if n else np.nan
        out[name] = {
            "n": int(n),
            "mae": _f(mae),
            "rmse": _f(np.sqrt((err ** 2).mean()) if n else np.nan),
            "bias": _f(err.mean() if n else np.nan),
            "target_std": _f(std),
            "normalized_mae": _f(mae / std if n and std > 0 else np.nan),
        }
    return out


def constant_baseline(target: np.ndarray, names: Sequence[str], constant: np.ndarray | None = None) -> dict:
    """MAE/RMSE of always predicting one value per dimension (default: the mean of `target`)."""
    target = np.asarray(target, dtype=np.float64).reshape(-1, len(names))
    value = target.mean(axis=0) if constant is None else np.asarray(constant, dtype=np.float64)
    out = regression_metrics(np.broadcast_to(value, target.shape), target, names)
    for i, name in enumerate(names):
        out[name]["constant"] = _f(value[i])
    return out


def sign_agreement(pred: np.ndarray, target: np.ndarray, deadband: float = SIGN_DEADBAND) -> float | None:
    """Fraction of samples whose sign (left / straight / right) matches.

    Values within ±deadband count as 0 ("straight"), so a tiny wobble around zero
    is not scored as turning the wrong way.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    target = np.asarray(target, dtype=np.float64).reshape(-1)
    if pred.size == 0:
        return None

    def sign(x: np.ndarray) -> np.ndarray:
        return np.where(np.abs(x) <= deadband, 0, np.sign(x))

    return _f((sign(pred) == sign(target)).mean())


def horizon_errors(errors: np.ndarray, names: Sequence[str]) -> dict:
    """MAE per chunk index k (error along the horizon).

    errors: (N_chunks, H, A) absolute errors with NaN where no teleop sample
    matched action k's time. Returns {name: [mae_k for k in 0..H-1]} and counts.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 3 or errors.shape[2] != len(names):
        raise ValueError(f"expected (N, H, {len(names)}) errors, got {errors.shape}")
    valid = np.isfinite(errors)
    counts = valid.sum(axis=0)  # (H, A)
    sums = np.where(valid, errors, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mae = sums / counts
    out = {name: [_f(v) for v in mae[:, i]] for i, name in enumerate(names)}
    out["count"] = [int(c) for c in counts[:, 0]]
    return out


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) counts; rows = true class, columns = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    bad = (y_true < 0) | (y_true >= n_classes) | (y_pred < 0) | (y_pred >= n_classes)
    if bad.any():
        raise ValueError(f"class ids outside [0, {n_classes}) in labels or predictions")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, macro-F1 over classes that occur (in labels or predictions), confusion matrix."""
    n = len(class_names)
    cm = confusion_matrix(y_true, y_pred, n)
    total = int(cm.sum())
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    present = (support + predicted) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "n": total,
        "accuracy": _f(tp.sum() / total) if total else None,
        "macro_f1": _f(f1[present].mean()) if present.any() else None,
        "per_class": {
            name: {"support": int(support[i]), "precision": _f(precision[i]),
                   "recall": _f(recall[i]), "f1": _f(f1[i])}
            for i, name in enumerate(class_names) if present[i]
        },
        "class_names": list(class_names),
        "confusion_matrix": cm.tolist(),
    }


def code_usage(codes: np.ndarray, codebook_size: int | None = None) -> dict:
    """How much of the FSQ codebook the data uses.

    Perplexity = exp(entropy of the code histogram): the effective number of
    equally used codes (1 = collapse, codebook_size = uniform use).
    """
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    codes = codes[codes >= 0]  # -1 means "no code" (model without FSQ)
    if codes.size == 0:
        return {"n": 0, "unique_codes": 0, "perplexity": None, "usage": None, "top_codes": []}
    values, counts = np.unique(codes, return_counts=True)
    p = counts / counts.sum()
    perplexity = float(np.exp(-(p * np.log(p)).sum()))
    order = np.lexsort((values, -counts))[:10]  # most used first, ties by code id
    return {
        "n": int(codes.size),
        "unique_codes": int(values.size),
        "codebook_size": int(codebook_size) if codebook_size else None,
        "usage": _f(values.size / codebook_size) if codebook_size else None,
        "perplexity": _f(perplexity),
        "top_codes": [[int(values[i]), int(counts[i])] for i in order],
    }


def latency_summary(ms: Sequence[float]) -> dict:
    """Distribution of one stage's latency in ms."""
    x = np.asarray(ms, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return {"n": 0}
    return {
        "n": int(x.size), "mean_ms": _f(x.mean()), "median_ms": _f(np.median(x)),
        "p95_ms": _f(np.percentile(x, 95)), "p99_ms": _f(np.percentile(x, 99)),
        "max_ms": _f(x.max()),
    }


def match_times(query_ns: np.ndarray, ref_ns: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index of the nearest ref time for each query time, -1 when farther than tolerance.

    ref_ns must be ascending.
    """
    query_ns = np.asarray(query_ns, dtype=np.int64)
    ref_ns = np.asarray(ref_ns, dtype=np.int64)
    if ref_ns.size == 0:
        return np.full(query_ns.shape, -1, dtype=np.int64)
    right = np.clip(np.searchsorted(ref_ns, query_ns), 0, ref_ns.size - 1)
    left = np.clip(right - 1, 0, ref_ns.size - 1)
    nearest = np.where(np.abs(ref_ns[left] - query_ns) <= np.abs(ref_ns[right] - query_ns), left, right)
    return np.where(np.abs(ref_ns[nearest] - query_ns) <= tolerance_ns, nearest, -1)


def chunk_horizon_errors(chunk_t0_ns: Sequence[int], chunk_actions: Sequence[np.ndarray], dt_s: float,
                         target_ns: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N_chunks, H, A) |action_k - teleop at t0 + k*dt|, NaN where no teleop within dt/2."""
    if not chunk_actions:
        return np.zeros((0, 0, targets.shape[1] if targets.ndim == 2 else 0))
    horizon = max(a.shape[0] for a in chunk_actions)
    dim = targets.shape[1]
    dt_ns = int(round(dt_s * 1e9))
    out = np.full((len(chunk_actions), horizon, dim), np.nan)
    for i, (t0, actions) in enumerate(zip(chunk_t0_ns, chunk_actions)):
        times = t0 + dt_ns * np.arange(actions.shape[0], dtype=np.int64)
        idx = match_times(times, target_ns, dt_ns // 2)
        ok = idx >= 0
        out[i, : actions.shape[0]][ok] = np.abs(actions[ok, :dim] - targets[idx[ok]])
    return out


def score_replay(result) -> dict:
    """metrics.json body (minus run metadata) from a ReplayResult.

    With `result.score_from_ns` set (a held-out tail), only teleop ticks and chunks from
    then on are scored; the ticks before it still serve as the state input's history.
    """
    out: dict = {}
    names = list(result.action_names) or ["steering", "throttle"]
    tick_ns = np.asarray(result.tick_ns, dtype=np.int64)
    start = getattr(result, "score_from_ns", None)
    window = tick_ns >= start if start is not None else np.ones(tick_ns.size, dtype=bool)
    if result.tick_pred:
        pred = np.stack(result.tick_pred)[:, : len(names)]  # (N, A), NaN = neutral
        target = np.stack(result.tick_target)[:, : len(names)]
        chunk_ns = np.asarray(result.tick_chunk_ns, dtype=np.int64)
        acting = np.isfinite(pred).all(axis=1) & window
        steer = names.index("steering") if "steering" in names else 0
        held = _hold_state_per_chunk(tick_ns, chunk_ns, target)
        out["policy"] = {
            "teleop_samples": int(window.sum()),
            "scored_samples": int(acting.sum()),
            "neutral_samples": {k: int(v) for k, v in sorted(result.neutral_reasons.items())},
            "chunks": int(sum(1 for t0 in result.chunk_t0_ns if start is None or t0 >= start)),
            "dt_s": _f(result.dt),
            "state_source": result.state_source,
            "per_dimension": regression_metrics(pred[acting], target[acting], names),
            "baseline_constant_mean": constant_baseline(target[acting], names),
            "baseline_hold_previous": _hold_previous(target, acting, names),
            "baseline_hold_state_per_chunk": regression_metrics(held[acting], target[acting], names)
            if held is not None and acting.any() else {},
            "steering_sign_agreement": sign_agreement(pred[acting, steer], target[acting, steer]),
            "baseline_sign_agreement_constant_mean": sign_agreement(
                np.full(int(acting.sum()), target[acting, steer].mean() if acting.any() else 0.0),
                target[acting, steer]),
        }
        if start is not None:
            out["policy"]["scored_from_ns"] = int(start)
        base = out["policy"]["baseline_constant_mean"].get(names[steer], {}).get("mae")
        mae = out["policy"]["per_dimension"][names[steer]]["mae"]
        out["policy"]["steering_mae_vs_constant_mean"] = _f(mae / base) if mae is not None and base else None
        baselines = {"constant mean": np.broadcast_to(target[acting, steer].mean() if acting.any() else 0.0,
                                                      (int(acting.sum()),))}
        if held is not None:
            baselines["hold state per chunk"] = held[acting, steer]
        out["policy"]["versus_strongest_baseline"] = versus_strongest_baseline(
            pred[acting, steer], target[acting, steer], baselines)
        if "throttle" in names:
            out["policy"]["throttle_after_pauses"] = throttle_after_pauses(
                tick_ns, chunk_ns, pred[:, names.index("throttle")], target[:, names.index("throttle")], acting)
        scored_chunks = [i for i, t0 in enumerate(result.chunk_t0_ns) if start is None or t0 >= start]
        t0s = [result.chunk_t0_ns[i] for i in scored_chunks]
        errors = chunk_horizon_errors(t0s, [result.chunk_actions[i] for i in scored_chunks], result.dt, tick_ns, target)
        out["policy"]["horizon_mae"] = horizon_errors(errors, names) if errors.size else {}
        # The camera-blind line along the same chunks: where in the chunk does the policy win or lose?
        held_chunks = [np.broadcast_to(_state_before(tick_ns, t0, target), result.chunk_actions[i][:, : len(names)].shape)
                       for i, t0 in zip(scored_chunks, t0s)]
        errors = chunk_horizon_errors(t0s, held_chunks, result.dt, tick_ns, target)
        out["policy"]["horizon_mae_hold_state"] = horizon_errors(errors, names) if errors.size else {}
        out["policy"]["largest_steering_errors"] = largest_errors(
            tick_ns[window], pred[window, steer], target[window, steer])
    if result.tick_target and window.any():
        out["drive"] = drive_summary(tick_ns[window], np.stack(result.tick_target)[window])
    if result.y_pred:
        y_true = np.asarray(result.y_true)
        y_pred = np.asarray(result.y_pred)
        labelled = y_true >= 0  # window_labels.window_label: a class covers >= half the window
        behavior = {"windows": int(len(y_pred)), "labelled_windows": int(labelled.sum()),
                    "label_rule": "window_labels.window_label (annotation covering >= 50% of the window)",
                    "not_scored": excluded_counts(y_true, y_pred, result.class_names)}
        if labelled.any():
            behavior.update(classification_metrics(y_true[labelled], y_pred[labelled], result.class_names))
        behavior["fsq_codes"] = code_usage(np.asarray(result.codes), result.codebook_size)
        out["behavior"] = behavior
    out["latency_recorded_on_robot"] = {k: latency_summary(v)
                                        for k, v in sorted(result.recorded_latency_ms.items())}
    out["replay_counts"] = {k: int(v) for k, v in sorted(result.counts.items())}
    out["replay_activity"] = {k: int(v) for k, v in sorted(result.activity.items())}
    out["replay_warnings"] = list(result.warnings)
    return out


def _hold_state_per_chunk(tick_ns: np.ndarray, chunk_ns: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """A vision-free policy under the same scheduling: repeat the state input for the whole chunk.

    (N, A): for each tick, the teleop command just before the frame its chunk came
    from (what the state input said then; zeros before any command and after a pause,
    as in the replay). Only meaningful where the policy acted (chunk_ns > 0).
    """
    if chunk_ns.size != tick_ns.size or not tick_ns.size:
        return None
    before = np.searchsorted(tick_ns, chunk_ns, side="left") - 1  # last command strictly before the frame
    fresh = (before >= 0) & (chunk_ns - tick_ns[np.maximum(before, 0)] <= STATE_TIMEOUT_NS)  # else neutral
    return np.where(fresh[:, None], target[np.maximum(before, 0)], 0.0)


def _state_before(tick_ns: np.ndarray, t0: int, target: np.ndarray) -> np.ndarray:
    """(A,) the teleop command just before frame time t0, zeros before any or after a pause (the state input)."""
    before = int(np.searchsorted(tick_ns, t0, side="left")) - 1
    if before < 0 or t0 - tick_ns[before] > STATE_TIMEOUT_NS:
        return np.zeros(target.shape[1])
    return target[before]


BOOTSTRAP_BLOCK = 40  # ticks per resampled block (~2 s at 20 Hz: longer than a chunk, errors are autocorrelated)
BOOTSTRAP_SAMPLES = 1000


def paired_difference(err_a: np.ndarray, err_b: np.ndarray, block: int = BOOTSTRAP_BLOCK,
                      samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """mean(err_a - err_b) over the same ticks, with a 95% moving-block bootstrap interval.

    Why blocks: consecutive ticks share a chunk and a curve, so their errors are not
    independent; resampling ~2 s blocks keeps that dependence and gives an honest interval.
    Seeded: the same inputs give the same interval.
    """
    d = np.asarray(err_a, dtype=np.float64) - np.asarray(err_b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return {"n": 0, "mean_diff": None, "ci95": [None, None]}
    block = max(1, min(block, d.size))
    starts = np.random.default_rng(seed).integers(0, d.size - block + 1, size=(samples, -(-d.size // block)))
    means = d[(starts[..., None] + np.arange(block)).reshape(samples, -1)[:, : d.size]].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"n": int(d.size), "mean_diff": _f(d.mean()), "ci95": [_f(lo), _f(hi)], "block_ticks": int(block)}


MIN_EFFECT = 0.02  # a difference below 2% of the reference MAE is negligible, however certain


def verdict(diff: dict, reference_mae: float | None = None) -> str:
    """'lower' / 'higher' when the 95% interval of a paired difference excludes 0, else 'within noise';
    'negligible' when it excludes 0 but the mean is below MIN_EFFECT x reference_mae.

    Why both: with thousands of ticks a tiny, useless difference is still "significant".
    """
    lo, hi = diff.get("ci95", [None, None])
    if lo is None or hi is None:
        return "not measured"
    if lo <= 0 <= hi:
        return "within noise"
    if reference_mae is not None and abs(diff["mean_diff"]) < MIN_EFFECT * reference_mae:
        return "negligible"
    return "lower" if hi < 0 else "higher"


def versus_strongest_baseline(pred: np.ndarray, target: np.ndarray, baselines: dict[str, np.ndarray]) -> dict:
    """Steering against the camera-blind baseline with the lowest MAE on the same ticks.

    The headline of the report: a policy has to beat the strongest baseline, not the
    constant mean (which any state-following policy beats on this kind of teleop).
    """
    err = np.abs(np.asarray(pred, dtype=np.float64) - target)
    if err.size == 0 or not baselines:
        return {}
    maes = {name: float(np.abs(np.asarray(b, dtype=np.float64) - target).mean()) for name, b in baselines.items()}
    best = min(maes, key=lambda k: (maes[k], k))
    diff = paired_difference(err, np.abs(np.asarray(baselines[best], dtype=np.float64) - target))
    outcome = {"lower": "beats", "higher": "loses to", "within noise": "ties with",
               "negligible": "ties with"}[verdict(diff, maes[best])]
    return {"policy_mae": _f(err.mean()), "baselines_mae": {k: _f(v) for k, v in sorted(maes.items())},
            "strongest": best, "strongest_mae": _f(maes[best]), "policy_minus_strongest": diff,
            "outcome": outcome}


def throttle_after_pauses(tick_ns: np.ndarray, chunk_ns: np.ndarray, pred: np.ndarray, target: np.ndarray,
                          scored: np.ndarray, deadband: float = SIGN_DEADBAND) -> dict:
    """Throttle of the first chunk executed after the drive's start and each pause vs the teleop's.

    Why: the state input is reset to neutral after a pause, and a policy that learned
    "state 0 -> brake" reverses there while the teleop drives on. Per such chunk, the
    sign of its mean executed throttle is compared with the teleop's over the same ticks
    (|x| <= deadband counts as 0): `disagree` = different signs, `reversed` = opposite signs.
    """
    tick_ns = np.asarray(tick_ns, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(tick_ns) > STATE_TIMEOUT_NS) + 1
    bounds = np.r_[0, breaks, tick_ns.size]
    executed, teleop = [], []
    for s, e in zip(bounds[:-1], bounds[1:]):
        idx = np.flatnonzero(scored[s:e]) + s
        if idx.size == 0:
            continue
        first = idx[chunk_ns[idx] == chunk_ns[idx[0]]]  # the ticks executing the segment's first chunk
        executed.append(float(np.mean(pred[first])))
        teleop.append(float(np.mean(target[first])))
    if not executed:
        return {"chunks": 0}
    ex, tel = np.asarray(executed), np.asarray(teleop)

    def sign(x: np.ndarray) -> np.ndarray:
        return np.where(np.abs(x) <= deadband, 0, np.sign(x))

    disagree = sign(ex) != sign(tel)
    reversed_ = sign(ex) * sign(tel) < 0
    return {"chunks": int(ex.size), "disagree": int(disagree.sum()), "disagree_fraction": _f(disagree.mean()),
            "reversed": int(reversed_.sum()), "reversed_fraction": _f(reversed_.mean()),
            "policy_throttle_mean": _f(ex.mean()), "policy_throttle_min": _f(ex.min()),
            "teleop_throttle_mean": _f(tel.mean()),
            "negative_throttle_ticks_policy": _f((pred[scored] < -deadband).mean()) if scored.any() else None,
            "negative_throttle_ticks_teleop": _f((target[scored] < -deadband).mean()) if scored.any() else None}


def _hold_previous(target: np.ndarray, acting: np.ndarray, names: Sequence[str]) -> dict:
    """Baseline that repeats the previous teleop command (what the state input already says)."""
    if len(target) < 2:
        return {}
    prev = np.vstack([target[:1], target[:-1]])
    keep = acting.copy()
    keep[0] = False
    return regression_metrics(prev[keep], target[keep], names)


DRIVE_GAP_S = 1.0  # pauses longer than this (between sessions) are not driving time


def drive_time_s(t_ns: np.ndarray) -> np.ndarray:
    """Seconds of driving at each sample, pauses longer than DRIVE_GAP_S cut out."""
    dt = np.diff(np.asarray(t_ns, dtype=np.int64)) / 1e9
    return np.concatenate([[0.0], np.cumsum(np.where(dt > DRIVE_GAP_S, 0.0, dt))])


def drive_summary(t_ns: np.ndarray, target: np.ndarray) -> dict:
    """What the teleop did: driving time, segments, how often it steered left/right."""
    steer = target[:, 0]
    sign = np.where(np.abs(steer) <= SIGN_DEADBAND, 0, np.sign(steer))
    gaps = int((np.diff(t_ns) / 1e9 > DRIVE_GAP_S).sum()) if len(t_ns) > 1 else 0
    return {
        "teleop_samples": int(len(steer)),
        "driving_time_s": _f(drive_time_s(t_ns)[-1]),
        "segments": gaps + 1,
        "steering_left_fraction": _f((sign > 0).mean()),
        "steering_straight_fraction": _f((sign == 0).mean()),
        "steering_right_fraction": _f((sign < 0).mean()),
        "steering_full_lock_fraction": _f((np.abs(steer) >= 0.95).mean()),
        "throttle_mean": _f(target[:, 1].mean()) if target.shape[1] > 1 else None,
    }


def largest_errors(t_ns: np.ndarray, pred: np.ndarray, target: np.ndarray, count: int = 5,
                   separation_s: float = 2.0) -> list[dict]:
    """The distinct moments (>= separation_s apart) where the policy was farthest from the teleop."""
    err = np.abs(pred - target)
    valid = np.flatnonzero(np.isfinite(err))
    time_s = drive_time_s(t_ns)
    order = []
    for i in valid[np.lexsort((valid, -err[valid]))]:  # largest first, ties by time
        if all(abs(time_s[i] - time_s[j]) >= separation_s for j in order):
            order.append(i)
            if len(order) == count:
                break
    return [{"drive_time_s": _f(time_s[i]), "stamp_ns": int(t_ns[i]), "teleop": _f(target[i]),
             "policy": _f(pred[i]), "abs_error": _f(err[i])} for i in order]


def agreement(reference, other) -> dict:
    """How closely two replays of one bag agree (e.g. int8 vs fp32): same ticks, same windows."""
    out: dict = {}
    if reference.tick_pred and other.tick_pred and len(reference.tick_pred) == len(other.tick_pred):
        a, b = np.stack(reference.tick_pred), np.stack(other.tick_pred)
        both = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        diff = np.abs(a[both] - b[both])
        if diff.size:
            out["policy_mean_abs_diff"] = [_f(v) for v in diff.mean(axis=0)]
            out["policy_max_abs_diff"] = [_f(v) for v in diff.max(axis=0)]
    if reference.y_pred and other.y_pred and len(reference.y_pred) == len(other.y_pred):
        out["behavior_same_class"] = _f(np.mean(np.asarray(reference.y_pred) == np.asarray(other.y_pred)))
        out["behavior_same_code"] = _f(np.mean(np.asarray(reference.codes) == np.asarray(other.codes)))
    return out
