#!/usr/bin/env python3
"""Chunk-execution modes in closed loop: one `edge-inference drive-sim` command per row, one table.

Each row is ``drive-sim --model MODEL --backend BACKEND --laps N --param policy_node.X=Y ...``
run one after the other in this order (same machine, same load pattern), plus the expert as the
reference. Writes every row's drive-sim JSON under --out-dir, and the table as JSON + Markdown.

    python scripts/drive_sim_modes.py --model models/sim_demo/policy_cnn --laps 2 \\
        --out-dir artifacts/drive_sim_modes
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: row name -> policy_node parameter overrides (empty: config/rover.yaml as shipped)
ROWS: dict[str, dict[str, object]] = {
    "shipped (rover.yaml)": {},
    "queue n_action_steps=8": {"mode": "queue", "n_action_steps": 8},
    "queue n_action_steps=4": {"mode": "queue", "n_action_steps": 4},
    "queue n_action_steps=2": {"mode": "queue", "n_action_steps": 2},
    "queue n_action_steps=1": {"mode": "queue", "n_action_steps": 1},
    "ensemble coeff=0.01": {"mode": "ensemble", "ensemble_coeff": 0.01},
    "ensemble coeff=0.1": {"mode": "ensemble", "ensemble_coeff": 0.1},
    "ensemble coeff=-0.1": {"mode": "ensemble", "ensemble_coeff": -0.1},
    "async threshold=0.5": {"mode": "async", "async_threshold": 0.5},
    "async threshold=0.8": {"mode": "async", "async_threshold": 0.8},
    "async threshold=0.95": {"mode": "async", "async_threshold": 0.95},
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/sim_demo/policy_cnn")
    p.add_argument("--backend", default="onnxruntime-int8")
    p.add_argument("--laps", type=int, default=2)
    p.add_argument("--rows", default="", help="comma-separated subset of the row names (default: all + expert)")
    p.add_argument("--no-expert", action="store_true")
    p.add_argument("--out-dir", default="artifacts/drive_sim_modes")
    args = p.parse_args()

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {k: v for k, v in ROWS.items() if not args.rows or k in args.rows.split(",")}
    table = []
    runs = [("expert", "expert", {})] if not args.no_expert else []
    runs += [(name, args.model, params) for name, params in rows.items()]
    for i, (name, model, params) in enumerate(runs):
        json_path = out / f"{i:02d}.json"
        cmd = [sys.executable, "-m", "edge_inference.cli", "drive-sim", "--model", model, "--backend", args.backend,
               "--laps", str(args.laps), "--quiet", "--json", str(json_path)]
        for key, value in params.items():
            cmd += ["--param", f"policy_node.{key}={value}"]
        print(f"[{name}] {' '.join(cmd[2:])}", flush=True)
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode
        result = json.loads(json_path.read_text()) if json_path.is_file() else {"error": f"exit {rc}"}
        result |= {"row": name, "command": "edge-inference " + " ".join(cmd[3:]), "exit_code": rc}
        table.append(result)
        print(f"  -> {summary(result)}", flush=True)
    (out / "table.json").write_text(json.dumps(table, indent=2))
    md = markdown(table)
    (out / "table.md").write_text(md)
    print(md)
    return 0


def summary(r: dict) -> str:
    if "error" in r:
        return r["error"]
    return (f"laps {r['laps_completed']} off {r['off_track_events']} cte {r['mean_cte_m']:.3f}/{r['max_cte_m']:.3f} "
            f"e2e {r['e2e_latency_ms']['p50']}/{r['e2e_latency_ms']['p95']} ms calls/s {r['model_calls_per_s']} "
            f"cpu {r.get('cpu_s_per_s')}")


def markdown(table: list[dict]) -> str:
    lines = [("| row | laps | off-track | CTE mean m | CTE max m | e2e p50 ms | e2e p95 ms | model calls/s | "
              "CPU s/s | rate Hz |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        if "error" in r:
            lines.append(f"| {r['row']} | {r['error']} | | | | | | | | |")
            continue
        lines.append(f"| {r['row']} | {r['laps_completed']} | {r['off_track_events']} | {r['mean_cte_m']:.3f} | "
                     f"{r['max_cte_m']:.3f} | {r['e2e_latency_ms']['p50']} | {r['e2e_latency_ms']['p95']} | "
                     f"{r['model_calls_per_s']:.1f} | {r.get('cpu_s_per_s', float('nan')):.3f} | "
                     f"{r['control_rate_hz']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
