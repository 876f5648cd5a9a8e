"""The evaluation report: a folder a person can open and understand.

- metrics.json: deterministic scores and counts (byte-identical for the same bag
  and model in --fast mode; keys sorted, floats rounded);
- timing.json: wall-clock model timings measured during the replay (vary per run);
- report.md: the drive in words and tables, linking the plots;
- actions_vs_teleop.png, horizon_error.png, latency_hist.png, confusion_matrix.png.

Matplotlib runs with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from edge_inference.evaluation.metrics import DRIVE_GAP_S, MIN_EFFECT, drive_time_s, latency_summary


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------ plots

MAX_GAP_S = DRIVE_GAP_S  # pauses between recording sessions are cut out of time plots


def drive_time(t_ns: np.ndarray, *series: np.ndarray) -> tuple[np.ndarray, ...]:
    """Seconds of driving with long pauses cut out; NaN rows break the lines at each cut."""
    gaps = np.flatnonzero(np.diff(t_ns) / 1e9 > MAX_GAP_S)
    t = drive_time_s(t_ns)
    t = np.insert(t, gaps + 1, t[gaps])
    out = [t]
    for x in series:
        x = np.asarray(x, dtype=np.float64)
        out.append(np.insert(x, gaps + 1, np.nan, axis=0))
    return tuple(out)



def plot_actions(result, path: Path, title: str) -> bool:
    if not result.tick_pred:
        return False
    plt = _pyplot()
    names = list(result.action_names)
    tick_ns = np.asarray(result.tick_ns, dtype=np.int64)
    start = getattr(result, "score_from_ns", None)
    shown = tick_ns >= start if start is not None else np.ones(tick_ns.size, dtype=bool)  # the scored ticks
    if not shown.any():
        return False
    t, pred, target = drive_time(tick_ns[shown], np.stack(result.tick_pred)[shown], np.stack(result.tick_target)[shown])
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.6 * len(names)), sharex=True, squeeze=False)
    for i, name in enumerate(names):
        ax = axes[i, 0]
        ax.plot(t, target[:, i], color="0.3", lw=1.0, label="teleop")
        ax.plot(t, pred[:, i], color="tab:blue", lw=1.0, label="policy (gaps: neutral)")
        ax.set_ylabel(name)
        ax.set_ylim(-1.1, 1.1)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel(f"drive time, s (pauses > {MAX_GAP_S:g} s cut out)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_horizon(metrics: dict, path: Path) -> bool:
    horizon = metrics.get("policy", {}).get("horizon_mae") or {}
    names = [k for k in horizon if k != "count"]
    if not names:
        return False
    plt = _pyplot()
    held = metrics["policy"].get("horizon_mae_hold_state") or {}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, name in enumerate(names):
        values = np.array([np.nan if v is None else v for v in horizon[name]])
        ax.plot(np.arange(values.size), values, marker=".", color=f"C{i}", label=name)
        if name in held:
            values = np.array([np.nan if v is None else v for v in held[name]])
            ax.plot(np.arange(values.size), values, ls="--", color=f"C{i}", label=f"{name}, hold state")
    ax.set_xlabel("action index k in the chunk (time t0 + k*dt)")
    ax.set_ylabel("MAE vs teleop")
    ax.set_title("Error along the chunk horizon")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_latency(latencies: dict[str, list[float]], path: Path) -> bool:
    stages = {k: v for k, v in latencies.items() if v}
    if not stages:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    top = max(np.percentile(v, 99) for v in stages.values())
    bins = np.linspace(0, max(top, 1e-3) * 1.05, 40)
    for name, values in sorted(stages.items()):
        ax.hist(np.clip(values, 0, bins[-1]), bins=bins, alpha=0.55, label=f"{name} (n={len(values)})")
    ax.set_xlabel("ms (clipped at p99)")
    ax.set_ylabel("count")
    ax.set_title("Latency per stage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


def plot_confusion(metrics: dict, path: Path) -> bool:
    behavior = metrics.get("behavior", {})
    if "confusion_matrix" not in behavior:
        return False
    plt = _pyplot()
    cm = np.asarray(behavior["confusion_matrix"])
    names = behavior["class_names"]
    fig, ax = plt.subplots(figsize=(3.0 + 0.7 * len(names), 2.2 + 0.6 * len(names)))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                color="white" if v > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Behavior confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return True


# ------------------------------------------------------------------ markdown


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _interval(diff: dict) -> str:
    lo, hi = diff.get("ci95", [None, None])
    return "n/a" if lo is None else f"{diff['mean_diff']:+.3f}, 95% interval [{lo:+.3f}, {hi:+.3f}]"


def verdict_lines(policy: dict | None) -> list[str]:
    """The report's headline: the policy against its strongest camera-blind baseline and without its camera."""
    versus = (policy or {}).get("versus_strongest_baseline") or {}
    if not versus:
        return []
    outcome = versus["outcome"]
    baselines = ", ".join(f"{k} {_fmt(v)}" for k, v in versus["baselines_mae"].items())
    hold_previous = policy.get("baseline_hold_previous", {}).get("steering", {}).get("mae")
    said = outcome.upper() if outcome != "ties with" else f"TIES WITH (within noise or under {MIN_EFFECT:.0%} apart)"
    lines = ["", "## Verdict", "",
             f"- **The policy {said} the strongest camera-blind baseline, {versus['strongest']}**: steering MAE "
             f"{_fmt(versus['policy_mae'])} vs {_fmt(versus['strongest_mae'])} (camera-blind baselines: {baselines}); "
             f"policy − baseline {_interval(versus['policy_minus_strongest'])} (moving-block bootstrap over "
             f"{versus['policy_minus_strongest'].get('block_ticks', 0)}-tick blocks)."
             + ("" if hold_previous is None else
                f" Not counted: hold-previous {_fmt(hold_previous)}, which reads the teleop at every tick.")]
    ablation = policy.get("camera_ablation") or {}
    if ablation:
        camera = ablation["camera"]
        plain = {"matters": "**the camera matters**: without it the policy steers measurably worse",
                 "does not measurably matter": "**the camera does not measurably matter**: the difference is "
                                               "within noise, so this policy drives by its state input",
                 "hurts": "**the policy steers better with shuffled frames than with the real ones**: its use "
                          "of the camera hurts",
                 "barely matters": f"**the camera barely matters**: the difference is real but under "
                                   f"{MIN_EFFECT:.0%} of the policy's error, so it drives almost entirely by its "
                                   f"state input"}.get(camera, f"camera {camera}")
        abl = ablation["per_dimension"].get("steering", {}).get("mae")
        lines.append(f"- Camera ablation ({ablation['replacement']}): steering MAE {_fmt(abl)}, ablated − full "
                     f"{_interval(ablation['ablated_minus_full_steering_mae'])}: {plain}.")
    pauses = policy.get("throttle_after_pauses") or {}
    if pauses.get("chunks"):
        lines.append(f"- Throttle in the first chunk after the start and each pause (state input reset to "
                     f"neutral): sign differs from the teleop's in {pauses['disagree']} of {pauses['chunks']} "
                     f"({_pct(pauses['disagree_fraction'])}), reversed in {pauses['reversed']} "
                     f"({_pct(pauses['reversed_fraction'])}); mean executed {_fmt(pauses['policy_throttle_mean'], 2)} "
                     f"(min {_fmt(pauses['policy_throttle_min'], 2)}) vs teleop "
                     f"{_fmt(pauses['teleop_throttle_mean'], 2)}. Negative throttle on "
                     f"{_pct(pauses['negative_throttle_ticks_policy'])} of the policy's ticks, "
                     f"{_pct(pauses['negative_throttle_ticks_teleop'])} of the teleop's.")
    return lines


def markdown(metrics: dict, timing: dict, plots: list[str]) -> str:
    run = metrics["run"]
    bag = metrics["bag"]
    model = run.get("model", "model")
    if model == "none":
        model, backend = run.get("behavior_model") or "behavior model", run.get("behavior_backend") or "default"
    else:
        backend = run.get("backend", "default backend")
    lines = [f"# Evaluation of `{model}` ({backend}) on `{Path(run['bag']).name}`", ""]
    driving = bag.get("driving_time_s")
    lines += [f"- Mode: {run.get('mode', 'fast')}, simulated model latency {run['sim_latency_ms']} ms, "
              f"chunk execution `{run['scheduler_mode']}`.",
              f"- Bag: {bag['storage']}, {bag['messages_read']} messages read, {bag['duration_s']} s from "
              f"first to last message" + ("" if driving is None else
                                          f", of which {_fmt(float(driving), 1)} s driving (teleop commands, "
                                          f"pauses > {DRIVE_GAP_S:g} s cut out)") + "."]
    if run.get("holdout_tail") is not None:
        lines.append(f"- Scored: only the held-out tail, the last {run['holdout_tail']:g} of the bag's camera frames "
                     f"(`--holdout-tail`); the teleop before it only feeds the state input.")
    lines += verdict_lines(metrics.get("policy"))
    if bag["salvaged"] or bag["truncated"]:
        lines.append("- **The bag is damaged**: evaluated as far as it was readable "
                     f"(salvaged={bag['salvaged']}, truncated={bag['truncated']}).")
    skipped = {**bag["skipped"], **metrics.get("replay_counts", {})}
    activity = metrics.get("replay_activity", {})
    warnings = bag["warnings"] + metrics.get("replay_warnings", [])
    drive = metrics.get("drive")
    if drive:
        lines += ["", "## The drive", "",
                  f"{drive['teleop_samples']} teleop commands over {_fmt(drive['driving_time_s'], 1)} s of driving "
                  f"in {drive['segments']} segment(s) (pauses > 1 s cut out). Steering: left "
                  f"{_pct(drive['steering_left_fraction'])}, straight {_pct(drive['steering_straight_fraction'])}, "
                  f"right {_pct(drive['steering_right_fraction'])}; at full lock "
                  f"{_pct(drive['steering_full_lock_fraction'])}. Mean throttle {_fmt(drive['throttle_mean'], 2)}."]
    policy = metrics.get("policy")
    if policy:
        names = [k for k in policy["per_dimension"]]
        lines += ["", "## Policy vs teleop", "",
                  f"{policy['scored_samples']} of {policy['teleop_samples']} teleop commands scored "
                  f"(the rest: policy neutral {policy['neutral_samples'] or {}}); "
                  f"{policy['chunks']} chunks; state input: {policy['state_source']}.", "",
                  "| dimension | MAE | RMSE | normalized MAE | bias | constant-mean MAE | hold-state-per-chunk MAE "
                  "| hold-previous MAE |",
                  "|---|---|---|---|---|---|---|---|"]
        for name in names:
            d = policy["per_dimension"][name]
            b = policy["baseline_constant_mean"].get(name, {})
            c = policy.get("baseline_hold_state_per_chunk", {}).get(name, {})
            h = policy["baseline_hold_previous"].get(name, {})
            lines.append(f"| {name} | {_fmt(d['mae'])} | {_fmt(d['rmse'])} | {_fmt(d['normalized_mae'])} | "
                         f"{_fmt(d['bias'])} | {_fmt(b.get('mae'))} | {_fmt(c.get('mae'))} | {_fmt(h.get('mae'))} |")
        ablation = policy.get("camera_ablation") or {}
        for name in names if ablation else []:
            d = ablation["per_dimension"].get(name, {})
            lines.append(f"| {name}, camera ablated | {_fmt(d.get('mae'))} | {_fmt(d.get('rmse'))} | "
                         f"{_fmt(d.get('normalized_mae'))} | {_fmt(d.get('bias'))} | | | |")
        lines += ["", "Baselines: constant mean of this drive's teleop; hold-state-per-chunk repeats the state "
                      "input for each chunk under the same scheduling (a policy that ignores the camera); "
                      "hold-previous repeats the previous teleop command at every tick (an upper bound on "
                      "what the state alone can give, not a policy: a chunked policy does not read the teleop "
                      "at every tick)."
                  + (f" Camera ablated: the same policy with {ablation['replacement']}." if ablation else "")]
        lines += ["", f"Steering MAE / constant-mean MAE: {_fmt(policy['steering_mae_vs_constant_mean'])} "
                      f"(goal ≤ 0.70; the constant mean is the weakest baseline, see the verdict above). "
                      f"Steering sign agreement: {_fmt(policy['steering_sign_agreement'])} "
                      f"(constant mean: {_fmt(policy['baseline_sign_agreement_constant_mean'])})."]
        worst = policy.get("largest_steering_errors") or []
        if worst:
            lines += ["", "Largest steering errors (drive time → teleop / policy): " + "; ".join(
                f"{_fmt(w['drive_time_s'], 1)} s → {_fmt(w['teleop'], 2)} / {_fmt(w['policy'], 2)}" for w in worst)
                + "."]
    behavior = metrics.get("behavior")
    if behavior:
        lines += ["", "## Behavior classifier", "",
                  f"{behavior['windows']} windows, {behavior['labelled_windows']} labelled."]
        if "accuracy" in behavior:
            lines.append(f"Accuracy **{_fmt(behavior['accuracy'])}**, macro-F1 **{_fmt(behavior['macro_f1'])}**.")
        skipped_windows = behavior.get("not_scored")
        if skipped_windows:
            said = ", ".join(f"{k} {v}" for k, v in skipped_windows["transition_predicted_as"].items() if v)
            lines.append(f"A window's label is the annotation covering at least half of it. Not scored: "
                         f"{skipped_windows['transition']} transition windows (predicted as: {said or 'none'}), "
                         f"{skipped_windows['mixed']} mixed (no annotation covers half), "
                         f"{skipped_windows['unlabelled']} unlabelled.")
        codes = behavior["fsq_codes"]
        if codes["n"]:
            lines.append(f"FSQ codes: {codes['unique_codes']} distinct, perplexity {_fmt(codes['perplexity'], 2)}.")
    latency_rows = [(k, v) for k, v in sorted(metrics.get("latency_recorded_on_robot", {}).items())]
    latency_rows += [(f"{k} (this replay)", v) for k, v in sorted(timing.get("latency_ms", {}).items())]
    if latency_rows:
        lines += ["", "## Latency", "", "| stage | n | median ms | p95 ms | max ms |", "|---|---|---|---|---|"]
        for name, s in latency_rows:
            lines.append(f"| {name} | {s['n']} | {_fmt(s.get('median_ms'), 2)} | {_fmt(s.get('p95_ms'), 2)} | "
                         f"{_fmt(s.get('max_ms'), 2)} |")
    lines += ["", "## Input problems", ""]
    if skipped:
        lines += ["| what | count |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sorted(skipped.items())]
    else:
        lines.append("None: every message was used.")
    if warnings:
        lines.append("")
    for w in warnings:
        lines.append(f"- warning: {w}")
    if activity:
        lines += ["", "Pipeline activity (normal, for reference): "
                  + ", ".join(f"{k} {v}" for k, v in sorted(activity.items())) + "."]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, metrics: dict, result, title: str) -> list[str]:
    """Write metrics.json, timing.json, report.md and the plots; return the plot names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    timing = {"note": "wall-clock timings of this replay on this machine; they vary between runs",
              "latency_ms": {k: latency_summary(v) for k, v in sorted(result.wall_latency_ms.items())}}
    plots = []
    if plot_actions(result, out_dir / "actions_vs_teleop.png", title):
        plots.append("actions_vs_teleop.png")
    if plot_horizon(metrics, out_dir / "horizon_error.png"):
        plots.append("horizon_error.png")
    latencies = {**{k: v for k, v in result.recorded_latency_ms.items()},
                 **{f"{k} (replay)": v for k, v in result.wall_latency_ms.items()}}
    if plot_latency(latencies, out_dir / "latency_hist.png"):
        plots.append("latency_hist.png")
    if plot_confusion(metrics, out_dir / "confusion_matrix.png"):
        plots.append("confusion_matrix.png")
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "timing.json", timing)
    (out_dir / "report.md").write_text(markdown(metrics, timing, plots))
    return plots


def comparison_markdown(labels: Sequence[str], metrics_list: Sequence[dict], timings: Sequence[dict],
                        agreements: Sequence[dict] | None = None) -> str:
    """Side-by-side table of several models/backends evaluated on one bag.

    agreements[i]: `metrics.agreement(first run, run i)` (empty for the first).
    """
    agreements = list(agreements) if agreements else [{} for _ in labels]
    rows: list[tuple[str, list[str]]] = []

    def add(name: str, getter) -> None:
        values = []
        for m, t, g in zip(metrics_list, timings, agreements):
            try:
                values.append(_fmt(getter(m, {**t, "agreement": g})))
            except (KeyError, TypeError, IndexError):
                values.append("n/a")
        if any(v != "n/a" for v in values):
            rows.append((name, values))

    first = metrics_list[0]
    for dim in first.get("policy", {}).get("per_dimension", {}):
        add(f"{dim} MAE", lambda m, t, d=dim: m["policy"]["per_dimension"][d]["mae"])
        add(f"{dim} RMSE", lambda m, t, d=dim: m["policy"]["per_dimension"][d]["rmse"])
    add("steering MAE / constant mean", lambda m, t: m["policy"]["steering_mae_vs_constant_mean"])
    add("strongest camera-blind baseline", lambda m, t: m["policy"]["versus_strongest_baseline"]["strongest"])
    add("its steering MAE", lambda m, t: m["policy"]["versus_strongest_baseline"]["strongest_mae"])
    add("vs strongest baseline", lambda m, t: m["policy"]["versus_strongest_baseline"]["outcome"])
    add("steering MAE, camera ablated", lambda m, t: m["policy"]["camera_ablation"]["per_dimension"]["steering"]["mae"])
    add("camera", lambda m, t: m["policy"]["camera_ablation"]["camera"])
    add("post-pause chunks with reversed throttle", lambda m, t: m["policy"]["throttle_after_pauses"]["reversed"])
    add("steering sign agreement", lambda m, t: m["policy"]["steering_sign_agreement"])
    add("scored samples", lambda m, t: m["policy"]["scored_samples"])
    add("behavior accuracy", lambda m, t: m["behavior"]["accuracy"])
    add("behavior macro-F1", lambda m, t: m["behavior"]["macro_f1"])
    add("FSQ perplexity", lambda m, t: m["behavior"]["fsq_codes"]["perplexity"])
    add(f"steering mean abs diff vs {labels[0]}", lambda m, t: t["agreement"]["policy_mean_abs_diff"][0])
    add(f"steering max abs diff vs {labels[0]}", lambda m, t: t["agreement"]["policy_max_abs_diff"][0])
    add(f"same behavior class as {labels[0]}", lambda m, t: t["agreement"]["behavior_same_class"])
    add(f"same FSQ code as {labels[0]}", lambda m, t: t["agreement"]["behavior_same_code"])
    add("policy inference median ms (replay)", lambda m, t: t["latency_ms"]["policy_inference"]["median_ms"])
    add("policy inference p95 ms (replay)", lambda m, t: t["latency_ms"]["policy_inference"]["p95_ms"])
    add("behavior inference median ms (replay)", lambda m, t: t["latency_ms"]["behavior_inference"]["median_ms"])
    header = "| metric | " + " | ".join(labels) + " |"
    lines = ["# Side-by-side comparison", "", f"Bag: `{Path(first['run']['bag']).name}`", "",
             header, "|---|" + "---|" * len(labels)]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return "\n".join(lines) + "\n"
