"""Does LeRobot itself read what `edge-inference export-dataset` writes? Run it in a LeRobot venv.

Two steps, two environments (LeRobot is not a project dependency):

1. Dev venv (edge_inference importable): the reference, i.e. what train-act's alignment gives
   for the source bag(s):
       python test/lerobot_compat/check_lerobot_load.py reference BAG [BAG ...] --out ref.npz

2. LeRobot 0.4.x venv (see docs/LEROBOT.md for the install): load the exported folder with
   ``LeRobotDataset(repo_id, root=...)`` and check it against the reference, then run one
   ACT training step with LeRobot's own ACTPolicy, processors and a torch DataLoader:
       HF_HUB_OFFLINE=1 python test/lerobot_compat/check_lerobot_load.py check DATASET \
           --repo-id local/ds --reference ref.npz

The check needs no network (HF_HUB_OFFLINE=1 is set here too) and no pretrained weights (the
ResNet backbone starts from random weights). Exit status 0 = every check passed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

PIXEL_MAE_TOLERANCE = 6.0  # mean |decoded - source| per frame, in 0..255 units (AV1/H.264 at CRF 30)
N_IMAGE_SAMPLES = 24


def make_reference(bags: list[str], out: str) -> int:
    """Reference arrays from edge_inference's alignment (the function train-act and the exporter share)."""
    from edge_inference.models.act.dataset import concatenate, load_bag

    data = concatenate([load_bag(b, None) for b in bags])
    pick = np.unique(np.linspace(0, len(data) - 1, N_IMAGE_SAMPLES).astype(int))
    np.savez_compressed(out, states=data.states, actions=data.actions, segments=data.segments,
                        image_index=pick, images=data.images[pick])
    print(f"{out}: {len(data)} frames, {int(data.segments.max()) + 1} segments, {len(pick)} reference images")
    return 0


def check(root: str, repo_id: str, reference: str | None, steps: int, batch_size: int) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from lerobot.configs.types import FeatureType
    from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
    from lerobot.datasets.utils import dataset_to_policy_features
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.factory import make_policy, make_pre_post_processors

    failures: list[str] = []

    def expect(ok: bool, what: str) -> None:
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            failures.append(what)

    info = json.loads((Path(root) / "meta" / "info.json").read_text())
    t0 = time.monotonic()
    ds = LeRobotDataset(repo_id, root=root)
    print(f"LeRobotDataset loaded in {time.monotonic() - t0:.1f} s: {ds.num_frames} frames, "
          f"{ds.num_episodes} episodes, fps {ds.fps}, backend {ds.video_backend}")
    cam = [k for k in ds.meta.video_keys][0]
    expect(ds.num_frames == info["total_frames"] == len(ds), f"frame count {len(ds)} = info total_frames")
    expect(ds.num_episodes == info["total_episodes"], f"episode count {ds.num_episodes}")
    expect(ds.fps == info["fps"], f"fps {ds.fps}")
    want = {cam, "observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"}
    expect(set(ds.features) == want, f"features {sorted(ds.features)}")
    expect(ds.meta.features["action"]["names"] == ["steering", "throttle"], "action names steering, throttle")
    expect(ds.meta.tasks.index.tolist() == [ds.meta.tasks.index[0]] and ds[0]["task"] == ds.meta.tasks.index[0],
           f"task {ds[0]['task']!r}")
    stats = ds.meta.stats
    expect(stats[cam]["mean"].shape == (3, 1, 1) and "q01" in stats["action"],
           "stats: image mean (3,1,1), quantiles present")

    # every row: state/action and episode bounds, straight from the parquet LeRobot reads
    hf = ds.hf_dataset.with_format(None)
    states = np.asarray(hf["observation.state"], np.float32)
    actions = np.asarray(hf["action"], np.float32)
    episodes = np.asarray(hf["episode_index"])
    if reference:
        ref = np.load(reference)
        same_len = len(ref["states"]) == len(states)
        expect(same_len, f"rows {len(states)} = reference frames {len(ref['states'])}")
        if same_len:
            expect(np.array_equal(states, ref["states"]), "observation.state == train-act alignment (exact)")
            expect(np.array_equal(actions, ref["actions"]), "action == train-act alignment (exact)")
            seg = ref["segments"]
            same_split = np.array_equal(np.r_[True, seg[1:] != seg[:-1]], np.r_[True, episodes[1:] != episodes[:-1]])
            expect(same_split, "episode boundaries == train-act segments")
            maes = []
            for i, src in zip(ref["image_index"], ref["images"]):
                frame = ds[int(i)][cam]  # (3, H, W) float [0, 1], decoded by LeRobot
                got = (frame.permute(1, 2, 0).numpy() * 255.0)
                maes.append(float(np.abs(got - src.astype(np.float32)).mean()))
            expect(max(maes) <= PIXEL_MAE_TOLERANCE,
                   f"decoded frames vs source: mean abs error max {max(maes):.2f}, mean {np.mean(maes):.2f} "
                   f"(0..255, tolerance {PIXEL_MAE_TOLERANCE})")

    # stats of the vector features, recomputed by LeRobot's own compute_stats on the same rows
    from lerobot.datasets.compute_stats import aggregate_stats, get_feature_stats

    table = {k: np.asarray(hf[k]) for k in ("observation.state", "action", "timestamp", "frame_index", "index")}
    import pyarrow.parquet as pq

    ep_rows = [r for f in sorted((Path(root) / "meta" / "episodes").glob("*/*.parquet"))
               for r in pq.read_table(f).to_pylist()]  # LeRobot's load_episodes drops the stats/ columns
    def gap(a, b, lo, hi, stat):
        """|a - b| over a tolerance: 1e-4, except where LeRobot's float32 arithmetic differs from our float64:
        quantiles within 1.5 histogram bins (LeRobot bins [min, max] in 5000 with float32 edges, which put
        boundary values one bin over), std within sqrt(8 eps32 max|x|^2) (LeRobot takes E[x^2] - E[x]^2 in
        float32: a constant 0.98 throttle gets std 6.5e-4 there, 0 here; cf. lerobot PR #4704)."""
        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        tol = np.full(lo.shape, 1e-4)
        if stat.startswith("q"):
            tol = np.maximum(tol, 1.5 * (hi - lo) / 5000)
        elif stat == "std":
            tol = np.maximum(tol, np.sqrt(8 * np.finfo(np.float32).eps) * np.maximum(np.abs(lo), np.abs(hi)))
        return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / tol))

    ep_stats, worst = [], 0.0
    for e in ep_rows:
        rows = slice(e["dataset_from_index"], e["dataset_to_index"])
        mine = {k: {s: np.asarray(e[f"stats/{k}/{s}"]) for s in stats[k]} for k in table}
        theirs = {k: get_feature_stats(v[rows].astype(np.float32 if v.dtype.kind == "f" else v.dtype),
                                       axis=0, keepdims=v.ndim == 1) for k, v in table.items()}
        ep_stats.append(theirs)
        worst = max([worst] + [gap(v, mine[k][s], mine[k]["min"], mine[k]["max"], s)
                               for k in table for s, v in theirs[k].items()])
    expect(worst <= 1.0, f"episode stats (min/max/mean/std/count/q01..q99 of state, action, timestamp, frame_index, "
           f"index) vs lerobot get_feature_stats on the same rows: worst diff {worst:.2f} x tolerance")
    agg = aggregate_stats(ep_stats)
    worst = max(gap(agg[k][s], stats[k][s], stats[k]["min"], stats[k]["max"], s) for k in table for s in agg[k])
    expect(worst <= 1.0, f"stats.json vs lerobot aggregate_stats of those: worst diff {worst:.2f} x tolerance")

    # one ACT training step as lerobot-train does it (make_policy, processors, DataLoader, AdamW)
    meta = LeRobotDatasetMetadata(repo_id, root=root)
    features = dataset_to_policy_features(meta.features)
    cfg = ACTConfig(
        input_features={k: f for k, f in features.items() if f.type is not FeatureType.ACTION},
        output_features={k: f for k, f in features.items() if f.type is FeatureType.ACTION},
        chunk_size=20, n_action_steps=20, dim_model=64, n_heads=2, dim_feedforward=128, n_encoder_layers=1,
        n_decoder_layers=1, n_vae_encoder_layers=1, latent_dim=8, pretrained_backbone_weights=None, device="cpu")
    delta = {"action": [i / meta.fps for i in cfg.action_delta_indices]}
    train_ds = LeRobotDataset(repo_id, root=root, delta_timestamps=delta)
    policy = make_policy(cfg, ds_meta=train_ds.meta)
    pre, _ = make_pre_post_processors(cfg, dataset_stats=train_ds.meta.stats)
    loader = torch.utils.data.DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=0,
                                         generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    policy.train()
    it = iter(loader)
    for step in range(steps):
        batch = next(it)
        expect(tuple(batch["action"].shape) == (batch_size, cfg.chunk_size, 2) and
               tuple(batch[cam].shape)[:2] == (batch_size, 3), f"batch {step}: action {tuple(batch['action'].shape)}, "
               f"{cam} {tuple(batch[cam].shape)}, action_is_pad {int(batch['action_is_pad'].sum())} padded")
        t1 = time.monotonic()
        loss, out = policy.forward(pre(batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        expect(bool(torch.isfinite(loss)), f"ACT step {step}: loss {loss.item():.4f} "
               f"({', '.join(f'{k} {v:.3f}' for k, v in out.items())}) in {time.monotonic() - t1:.2f} s")
    print("PASS" if not failures else f"FAIL: {len(failures)} check(s): {failures}")
    return 0 if not failures else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference", help="(dev venv) reference arrays from the bag(s)")
    r.add_argument("bags", nargs="+")
    r.add_argument("--out", required=True)
    c = sub.add_parser("check", help="(LeRobot venv) load the dataset with LeRobot and train one ACT step")
    c.add_argument("root")
    c.add_argument("--repo-id", default=None, help="default: local/<folder name>")
    c.add_argument("--reference", default=None, help="ref.npz from the reference step")
    c.add_argument("--steps", type=int, default=1)
    c.add_argument("--batch-size", type=int, default=8)
    a = p.parse_args(argv)
    if a.cmd == "reference":
        return make_reference(a.bags, a.out)
    return check(a.root, a.repo_id or f"local/{Path(a.root).name}", a.reference, a.steps, a.batch_size)


if __name__ == "__main__":
    sys.exit(main())
