"""`edge-inference eval`: replay a bag through the robot's cores and score the models.

    edge-inference eval --bag drive.mcap_dir --model act_dir --backend onnxruntime --out report/

--fast (default) replays on simulated time as fast as possible: the same bag and
model give a byte-identical metrics.json. --realtime republishes the bag on DDS
at its own pace with /clock (plus the policy's chunks and commands under
/eval/...) so rviz or rqt can watch while it is scored.

Several --model or --backend values evaluate each combination on the same bag
and add comparison.md, a side-by-side table (e.g. fp32 vs int8, cpu vs npu).

Every policy is also replayed with its camera frames shuffled (the camera ablation,
--no-camera-ablation skips it), and the report says whether it beats the strongest
camera-blind baseline. --holdout-tail F scores only the last F of the bag's frames,
the tail `train-act --holdout-tail F` held out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_inference.commands.arg_types import non_negative_float, positive_float, positive_int
from edge_inference.core.errors import CheckFailed, UsageError
from edge_inference.core.files import Staging

HEURISTIC = "heuristic"  # the numpy stand-in models of edge_inference.backends.heuristic


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="score a policy / behavior model on a rosbag2",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bag", required=True, help="rosbag2 folder (MCAP or sqlite3) or a single storage file")
    p.add_argument("--model", action="append", default=[],
                   help=f"policy model path (repeat to compare), or '{HEURISTIC}'")
    p.add_argument("--backend", action="append", default=[],
                   help="policy backend, e.g. torch, onnxruntime, onnxruntime-int8, hailo (repeat to compare)")
    p.add_argument("--behavior-model", help=f"behavior (FSQ) model path, or '{HEURISTIC}'")
    p.add_argument("--behavior-backend", action="append", default=[],
                   help="behavior backend (default: the runner's; repeat to compare)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="mode", action="store_const", const="fast",
                      help="simulated time, deterministic metrics (default)")
    mode.add_argument("--realtime", dest="mode", action="store_const", const="realtime",
                      help="republish on DDS with /clock at the bag's pace")
    p.set_defaults(mode="fast")
    p.add_argument("--rate", type=positive_float, default=1.0, help="--realtime playback speed factor")
    p.add_argument("--sim-latency-ms", type=non_negative_float, default=0.0,
                   help="simulated model latency: chunks take effect this long after their frame")
    p.add_argument("--chunk-mode", choices=("queue", "ensemble", "async"), default=None,
                   help="chunk execution, the policy node's `mode` (default: config/rover.yaml)")
    p.add_argument("--n-action-steps", type=positive_int, default=None,
                   help="queue mode: actions executed per chunk (default: config/rover.yaml)")
    p.add_argument("--max-action-age", type=positive_float, default=None,
                   help="s; older chunks give neutral (default: config/rover.yaml)")
    p.add_argument("--teleop", choices=("command", "state"), default="command",
                   help="ground truth: manual VehicleCommands (imports, teleop) or VehicleState in manual "
                        "mode (a rover drive steered by the RC transmitter)")
    p.add_argument("--holdout-tail", type=float, default=None, metavar="FRACTION",
                   help="score the policy only on the last FRACTION of the bag's camera frames (time order): "
                        "the tail `train-act --holdout-tail` held out (behavior windows are all scored)")
    p.add_argument("--no-camera-ablation", dest="camera_ablation", action="store_false",
                   help="skip the replay with shuffled camera frames (it doubles the policy's replay time)")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.set_defaults(func=run)


def _pairs(models: list[str], backends: list[str]) -> list[tuple[str, str | None]]:
    if not models:
        return []
    if not backends:
        return [(m, None) for m in models]
    if len(models) == 1:
        return [(models[0], b) for b in backends]
    if len(backends) == 1:
        return [(m, backends[0]) for m in models]
    if len(models) == len(backends):
        return list(zip(models, backends))
    raise UsageError(f"give one --model per --backend ({len(models)} models, {len(backends)} backends)")


def load_policy(model: str, backend: str | None):
    if model == HEURISTIC:
        from edge_inference.backends.heuristic import HeuristicPolicyRunner

        return HeuristicPolicyRunner()
    from edge_inference.backends.runners import create_policy_runner

    return create_policy_runner(model, backend) if backend else create_policy_runner(model)


def load_behavior(model: str | None, backend: str | None):
    if model is None:
        return None
    if model == HEURISTIC:
        from edge_inference.backends.heuristic import HeuristicBehaviorRunner

        return HeuristicBehaviorRunner()
    from edge_inference.backends.runners import create_behavior_runner

    return create_behavior_runner(model, backend) if backend else create_behavior_runner(model)


def scheduler_config(args: argparse.Namespace, chunk_size: int | None, dt: float | None = None):
    """The policy node's scheduler settings: rover.yaml, then command-line overrides."""
    from dataclasses import fields

    from edge_inference.core.chunk_scheduler import SchedulerConfig
    from edge_inference.core.resources import config_path
    from edge_inference.ros.graph import load_param_file

    names = {f.name for f in fields(SchedulerConfig)}
    node = load_param_file(config_path("rover.yaml")).get("policy_node", {})
    values = {k: v for k, v in node.items() if k in names}
    for key, arg in (("mode", args.chunk_mode), ("n_action_steps", args.n_action_steps),
                     ("max_action_age", args.max_action_age)):
        if arg is not None:
            values[key] = arg
    config = SchedulerConfig(**values)
    if chunk_size and config.n_action_steps > chunk_size:
        config.n_action_steps = chunk_size
    if dt and args.n_action_steps is None and config.mode == "queue":
        # A queue longer than max_action_age would leave the car neutral until the
        # next chunk; that is a configuration artifact, not the model's quality.
        fit = max(1, int(config.max_action_age / dt))
        if config.n_action_steps > fit:
            print(f"note: n_action_steps {config.n_action_steps} x dt {dt:g} s exceeds max_action_age "
                  f"{config.max_action_age:g} s; evaluating with n_action_steps {fit} (set --n-action-steps "
                  f"to override)", file=sys.stderr)
            config.n_action_steps = fit
    return config


def _label(model: str, backend: str | None) -> str:
    name = Path(model).name or model
    return f"{name}-{backend}" if backend else name


def _variants(args: argparse.Namespace) -> list[tuple[str | None, str | None, str | None, str | None]]:
    """(policy model, backend, behavior model, behavior backend) for each evaluation to run."""
    policies = _pairs(args.model, args.backend) or [(None, None)]
    behaviors = [(args.behavior_model, b) for b in (args.behavior_backend or [None])]
    if len(policies) > 1 and len(behaviors) > 1:
        raise UsageError("compare either policies/backends or behavior backends in one run, not both")
    if policies == [(None, None)] and not args.behavior_model:
        raise UsageError("give --model and/or --behavior-model")
    return [(pm, pb, bm, bb) for pm, pb in policies for bm, bb in behaviors]


def _variant_label(pm: str | None, pb: str | None, bm: str | None, bb: str | None, compare_behavior: bool) -> str:
    if compare_behavior or pm is None:
        return _label(bm or "behavior", bb)
    return _label(pm, pb)


def run(args: argparse.Namespace) -> int:
    variants = _variants(args)
    # Every model is loaded (and its metadata checked against its graph) before any replay.
    loaded = []
    try:
        for pm, pb, bm, bb in variants:
            loaded.append((load_policy(pm, pb) if pm else None, load_behavior(bm, bb)))
        # The report folder appears only complete: written beside --out, moved there at the end.
        with Staging(args.out) as stage:
            _evaluate(args, variants, loaded, stage)
            stage.commit()
    finally:
        for runner in (r for pair in loaded for r in pair):
            close = getattr(runner, "close", None)
            if close is not None:
                close()
    return 0


def _evaluate(args: argparse.Namespace, variants, loaded, stage: Staging) -> None:
    import json

    from edge_inference.core.imu_window import WindowConfig
    from edge_inference.evaluation.replay import ReplayConfig, evaluate_bag
    from edge_inference.evaluation.report import comparison_markdown, write_report

    compare_behavior = len({v[3] for v in variants}) > 1
    labels, metrics_list, timings, results = [], [], [], []
    for (pm, pb, bm, bb), (policy, behavior) in zip(variants, loaded):
        scheduler = scheduler_config(args, getattr(policy, "chunk_size", None), getattr(policy, "dt", None))
        window = WindowConfig(window_length=getattr(behavior, "window_length", 100),
                              sample_rate_hz=getattr(behavior, "sample_rate_hz", 50.0), stride=25)
        config = ReplayConfig(sim_latency_ms=args.sim_latency_ms, window=window, scheduler=scheduler,
                              teleop=args.teleop, holdout_tail=args.holdout_tail)
        run_info = {"mode": args.mode, "model": pm or "none",
                    "backend": pb or getattr(policy, "backend_name", "default"),
                    "model_hash": getattr(policy, "model_hash", None),
                    "behavior_model": bm, "behavior_backend": bb or getattr(behavior, "backend_name", None),
                    "behavior_hash": getattr(behavior, "model_hash", None), "holdout_tail": args.holdout_tail}
        label = _variant_label(pm, pb, bm, bb, compare_behavior)
        out_dir = stage.dir if len(variants) == 1 else stage.path(label)
        if args.mode == "realtime":
            from edge_inference.evaluation.realtime import evaluate_bag_realtime

            metrics, result = evaluate_bag_realtime(args.bag, config, policy, behavior, run_info, args.rate)
        else:
            metrics, result = evaluate_bag(args.bag, config, policy, behavior, run_info)
        _check_scored(label, metrics, policy is not None, behavior is not None)
        if policy is not None and args.camera_ablation and "policy" in metrics:
            from edge_inference.evaluation.camera_ablation import camera_ablation

            metrics["policy"]["camera_ablation"] = camera_ablation(args.bag, config, policy, result)
        write_report(out_dir, metrics, result, f"{label} on {Path(args.bag).name}")
        timings.append(json.loads((out_dir / "timing.json").read_text()))
        labels.append(label)
        metrics_list.append(metrics)
        results.append(result)
        _print_summary(label, metrics, args.out if len(variants) == 1 else args.out / label)
    if len(variants) > 1:
        from edge_inference.evaluation.metrics import agreement

        agreements = [{}] + [agreement(results[0], r) for r in results[1:]]
        stage.path("comparison.md").write_text(comparison_markdown(labels, metrics_list, timings, agreements))
        print(f"comparison: {args.out / 'comparison.md'}")


def _check_scored(label: str, metrics: dict, with_policy: bool, with_behavior: bool) -> None:
    """A model that could not be scored at all (e.g. it only outputs NaN) fails the evaluation."""
    policy = metrics.get("policy") or {}
    if with_policy and not policy.get("scored_samples"):
        reasons = policy.get("neutral_samples") or metrics.get("replay_counts") or {}
        raise CheckFailed(f"FAIL: {label}: none of {policy.get('teleop_samples', 0)} teleop commands could be "
                          f"scored (policy neutral: {reasons}); no report written")
    behavior = metrics.get("behavior") or {}
    if with_behavior and not behavior.get("windows"):
        raise CheckFailed(f"FAIL: {label}: the behavior model classified no IMU window "
                          f"({metrics.get('replay_counts') or {}}); no report written")


def _print_summary(label: str, metrics: dict, out_dir: Path) -> None:
    policy = metrics.get("policy")
    if policy:
        steer = policy["per_dimension"].get("steering", {})
        print(f"{label}: steering MAE {steer.get('mae')} (constant mean "
              f"{policy['baseline_constant_mean'].get('steering', {}).get('mae')}), "
              f"ratio {policy['steering_mae_vs_constant_mean']}, {policy['scored_samples']} samples")
        versus = policy.get("versus_strongest_baseline") or {}
        if versus:
            print(f"{label}: {versus['outcome']} the strongest camera-blind baseline ({versus['strongest']}, "
                  f"steering MAE {versus['strongest_mae']})")
        ablation = policy.get("camera_ablation") or {}
        if ablation:
            print(f"{label}: shuffled camera frames: steering MAE "
                  f"{ablation['per_dimension'].get('steering', {}).get('mae')}; the camera {ablation['camera']}")
    behavior = metrics.get("behavior")
    if behavior and "accuracy" in behavior:
        print(f"{label}: behavior accuracy {behavior['accuracy']}, macro-F1 {behavior['macro_f1']}")
    skipped = {**metrics["bag"]["skipped"], **metrics.get("replay_counts", {})}
    if skipped or metrics["bag"]["warnings"]:
        print(f"{label}: input problems {skipped}; warnings: {len(metrics['bag']['warnings'])}")
    print(f"report: {out_dir / 'report.md'}")
