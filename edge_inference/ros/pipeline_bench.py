"""`edge-inference bench --pipeline`: image-to-chunk latency and the policy pipeline's overhead beyond the model.

Runs the real PolicyNode over real DDS in one process: a camera stand-in
publishes 640x360 rgb8 frames stamped just before publishing, the node converts,
preprocesses (inside the real ``PolicyRunner``), runs the model, builds and
publishes the ActionChunk, and a probe records when each chunk arrives.

* ``image_to_chunk_ms`` = chunk arrival - image stamp (node clock);
* ``model_ms``          = time inside ``backend.run`` only;
* ``overhead_ms``       = the node's work beyond the model: hand-off to the
  worker, Image -> numpy, preprocessing, chunk message, publish;
* ``queued_ms``         = the frame waited for the previous inference to end (with a
  model slower than the camera; a consequence of model time, not overhead);
* ``dds_transport_ms``  = the rest: DDS delivery of the image and of the chunk.

Without ``--model-path`` the model is a null backend (returns zeros at once), so
the figures are the pipeline's own cost (preprocessing at the requested size);
with a model, preprocessing runs at the model's own input size.
"""
from __future__ import annotations

import argparse
import array
import json
import platform
import time
from pathlib import Path

import numpy as np

from edge_inference.ros.spin import spin_in_threads

NS_PER_MS = 1_000_000
DEFAULT_JSON = "artifacts/bench_pipeline.json"  # when --json is left at the model bench's default


class NullActBackend:
    """A backend with the ACT contract whose model costs nothing: isolates pipeline overhead."""

    name = "null"
    model_file = Path("null")
    input_names = ["image", "state"]

    def __init__(self, width: int, height: int, chunk_size: int = 32, dt: float = 1.0 / 30.0):
        self.metadata = {"model": "act", "chunk_size": chunk_size, "action_dim": 2, "state_dim": 2, "dt": dt,
                         "action_names": ["steering", "throttle"], "image_size": [height, width]}
        self._out = np.zeros((1, chunk_size, 2), np.float32)

    def run(self, inputs: dict) -> list[np.ndarray]:
        return [self._out]

    def close(self) -> None:
        pass


class TimedBackend:
    """Wraps a backend and records the time spent in ``run`` (ms), in call order."""

    def __init__(self, backend):
        self._backend = backend
        self.run_ms: list[float] = []

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def run(self, inputs: dict) -> list[np.ndarray]:
        t0 = time.perf_counter()
        out = self._backend.run(inputs)
        self.run_ms.append((time.perf_counter() - t0) * 1e3)
        return out

    def close(self) -> None:
        self._backend.close()


def _stats(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "max": float(a.max()), "n": int(a.size)}


def make_frame(width: int, height: int, seed: int = 0):
    """A random rgb8 Image (array-backed data: what rclpy hands a subscriber)."""
    from sensor_msgs.msg import Image
    rgb = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = height, width, "rgb8", width * 3
    msg.data = array.array("B", rgb.tobytes())
    return msg


def measure_pipeline(runner, timed: TimedBackend, width: int, height: int, frames: int, rate_hz: float,
                     warmup: int) -> dict:
    """Drive the real PolicyNode over DDS; split each frame's latency into model, node overhead, transport."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from edge_inference.ros.nodes.policy_node import PolicyNode
    from edge_inference.ros.qos import reliable_qos, sensor_qos
    from edge_inference_msgs.msg import ActionChunk

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    arrivals: list[int] = []  # chunk arrival - image stamp, ns
    frame = make_frame(width, height)
    try:
        node = PolicyNode(runner_factory=lambda cfg, dt: runner, context=ctx,
                          parameter_overrides=[Parameter("enabled", value=True),
                                               Parameter("mode", value="ensemble")])  # infer on every frame
        probe = Node("bench_pipeline_probe", context=ctx)
        pub = probe.create_publisher(Image, "camera/image_raw", sensor_qos())

        def on_chunk(msg: ActionChunk) -> None:
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            arrivals.append(probe.get_clock().now().nanoseconds - stamp)

        def publish() -> None:
            frame.header.stamp = probe.get_clock().now().to_msg()
            pub.publish(frame)

        probe.create_subscription(ActionChunk, "policy/action_chunk", on_chunk, reliable_qos(50))
        probe.create_timer(1.0 / rate_hz, publish)
        executors = [SingleThreadedExecutor(context=ctx) for _ in range(2)]
        executors[0].add_node(node)
        executors[1].add_node(probe)
        stop, threads = spin_in_threads(executors)
        deadline = time.monotonic() + (frames + warmup) / rate_hz * 3 + 10
        while len(arrivals) < frames + warmup and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=5.0)
        timings, dropped = list(node.timings), node.dropped_frames
        node.destroy_node()
        probe.destroy_node()
        for ex in executors:
            ex.shutdown()
    finally:
        rclpy.try_shutdown(context=ctx)
    n = min(len(arrivals), len(timed.run_ms), len(timings))
    if n <= warmup:
        raise RuntimeError(f"only {n} chunks arrived; the policy node did not keep up (see its log)")
    image_to_chunk = np.array(arrivals[:n])[warmup:] / NS_PER_MS
    model = np.array(timed.run_ms[:n])[warmup:]
    t = timings[warmup:n]
    queued = np.array([x.queued_ms for x in t])  # waiting for the previous inference: model time, not overhead
    stages = {
        "handoff_ms": np.array([x.handoff_ms for x in t]),
        "convert_ms": np.array([x.convert_ms for x in t]),
        "preprocess_ms": np.array([x.predict_ms for x in t]) - model,  # runner.predict beyond backend.run
        "chunk_msg_ms": np.array([x.chunk_msg_ms for x in t]),
        "publish_ms": np.array([x.publish_ms for x in t]),
    }
    overhead = sum(stages.values())
    return {"image_to_chunk_ms": _stats(image_to_chunk), "model_ms": _stats(model),
            "overhead_ms": _stats(overhead),
            "queued_ms": _stats(queued),
            "dds_transport_ms": _stats(image_to_chunk - model - overhead - queued),
            "stages": {k: _stats(v) for k, v in stages.items()},
            "chunks": int(image_to_chunk.size), "dropped_frames": int(dropped)}


def build_runner(args) -> tuple[object, TimedBackend]:
    from edge_inference.backends.runners import PolicyRunner
    model_path = args.model_path or getattr(args, "act_model", None)  # bench's --act-model works too
    if model_path:
        from edge_inference.backends import create_backend
        threads = getattr(args, "threads", 1)  # the model bench's --threads, when run through it
        timed = TimedBackend(create_backend(args.backend, model_path, threads=threads))
    else:
        timed = TimedBackend(NullActBackend(args.width, args.height))
    return PolicyRunner(timed), timed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the pipeline mode; skips any the bench parser already defines (e.g. --json)."""
    have = {s for a in parser._actions for s in a.option_strings}  # noqa: SLF001 - argparse has no public API
    # The model bench's own --json default must not be overwritten by a pipeline run.
    parser.set_defaults(pipeline_shared_json_default=parser.get_default("json") if "--json" in have else None)
    options = [
        ("--json", dict(default=None, help="write results as JSON to this file")),
        ("--model-path", dict(default="", help="policy model for --pipeline (default: null model, overhead only)")),
        ("--backend", dict(default="onnxruntime", help="backend for --model-path")),
        ("--width", dict(type=int, default=640, help="--pipeline image width, px")),
        ("--height", dict(type=int, default=360, help="--pipeline image height, px")),
        ("--frames", dict(type=int, default=300, help="--pipeline measured frames")),
        ("--rate", dict(type=float, default=30.0, help="--pipeline camera rate, Hz")),
        ("--warmup", dict(type=int, default=20, help="--pipeline frames ignored at the start")),
    ]
    for flag, kwargs in options:
        if flag not in have:
            parser.add_argument(flag, **kwargs)


def run(args) -> int:
    """Entry point of `edge-inference bench --pipeline`."""
    from edge_inference.core.errors import UsageError

    bad = [f"--{n} {getattr(args, n)}" for n in ("width", "height", "frames") if getattr(args, n) < 1]
    bad += [f"--rate {args.rate}"] * (not args.rate > 0) + [f"--warmup {args.warmup}"] * (args.warmup < 0)
    if bad:
        raise UsageError(f"--pipeline needs positive sizes, frames and rate: {', '.join(bad)}")
    json_path = args.json
    if json_path is not None and json_path == getattr(args, "pipeline_shared_json_default", None):
        json_path = DEFAULT_JSON
    runner, timed = build_runner(args)
    try:
        pipeline = measure_pipeline(runner, timed, args.width, args.height, args.frames, args.rate, args.warmup)
    finally:
        runner.close()
    result = {
        "pipeline": pipeline,
        "config": {"width": args.width, "height": args.height, "frames": args.frames, "rate_hz": args.rate,
                   "model": args.model_path or getattr(args, "act_model", None) or "null",
                   "backend": runner.backend_name, "threads": getattr(args, "threads", 1)},
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "definitions": {
            "image_to_chunk_ms": "image header stamp -> ActionChunk received by a subscriber (node clock)",
            "overhead_ms": "node pipeline beyond the model: handoff + convert + preprocess + chunk_msg + publish",
            "queued_ms": "frame waited for the worker to finish the previous inference (a model-time effect)",
            "dds_transport_ms": "image_to_chunk - model - overhead - queued: DDS delivery of image and chunk",
        },
    }
    ov, e2e = pipeline["overhead_ms"], pipeline["image_to_chunk_ms"]
    print(f"pipeline {args.width}x{args.height} @ {args.rate:g} Hz, model {result['config']['model']} "
          f"({runner.backend_name}), {pipeline['chunks']} chunks")
    print(f"  {'image_to_chunk_ms':<18} p50 {e2e['p50']:7.3f} ms  p95 {e2e['p95']:7.3f} ms")
    for name in ("model_ms", "overhead_ms", "queued_ms", "dds_transport_ms"):
        s = pipeline[name]
        print(f"  {name:<18} p50 {s['p50']:7.3f} ms  p95 {s['p95']:7.3f} ms")
    for name, s in pipeline["stages"].items():
        print(f"    {name:<16} p50 {s['p50']:7.3f} ms  p95 {s['p95']:7.3f} ms")
    print(f"  goal: overhead p50 <= 3 ms -> {'met' if ov['p50'] <= 3.0 else 'NOT met'}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2))
        print(f"wrote {json_path}")
    return 0
