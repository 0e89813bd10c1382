"""CLI: `duplexbot eval turns`, `duplexbot bench model`, `duplexbot model {data,train,export}`."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import Subcommands

if TYPE_CHECKING:
    from ..eval.dataset import Sample

# one tuning candidate: (threshold, confirm chunks, its scores, p(eot) decay)
_Row = tuple[float, int, dict[str, Any], float]


def register(sub: Subcommands, groups: dict[str, Subcommands]) -> None:
    ev = groups["eval"].add_parser("turns", help="turn-taking metrics of policies over a labelled dataset")
    ev.add_argument("dataset", help="folder of NAME.wav (stereo: caller, bot) + NAME.json labels")
    ev.add_argument("--policy", action="append",
                    choices=["vad-timeout", "vad-timeout-pipecat", "smart-turn", "duplex", "duplex-words"],
                    help="policy to run (repeatable); default: all side by side")
    ev.add_argument("--telephony", action="store_true", help="degrade both channels to 8 kHz mu-law first")
    ev.add_argument("--out", default=None, help="folder for results.json and PNG plots (default out/eval-turns)")
    ev.add_argument("--no-curves", action="store_true", help="skip the threshold sweeps (faster)")
    ev.add_argument("--limit", type=int, default=None, help="only the first N samples")
    ev.add_argument("--model", default=None, help="duplex ONNX file (default: the shipped models/duplex.onnx)")
    ev.add_argument("--eot-threshold", type=float, default=None)
    ev.add_argument("--interrupt-threshold", type=float, default=None)
    ev.add_argument("--eot-confirm", type=int, default=None, help="chunks p(eot) must stay over its threshold")
    ev.add_argument("--interrupt-confirm", type=int, default=None,
                    help="chunks p(interrupt) must stay over its threshold")
    ev.add_argument("--max-eot-silence", type=float, default=None,
                    help="duplex fallback: caller silence that ends a pause the model does not read as a hold "
                         "(end_of_turn presets: fast 0.5, balanced 0.75, accurate 2.0)")
    ev.add_argument("--record", action="store_true",
                    help="store the summary in the duplex model's manifest (under eval/DATASET-RATE)")
    ev.add_argument("--tune", action="store_true",
                    help="pick duplex thresholds on this (dev) dataset and record them in the manifest")
    ev.set_defaults(func=eval_turns)

    b = groups["bench"].add_parser("model", help="per-step time of the batched duplex model on CPU")
    b.add_argument("--batches", default="1,64,512")
    b.add_argument("--steps", type=int, default=200)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--model", default=None)
    b.add_argument("--out", default=None, help="write JSON here (file)")
    b.set_defaults(func=bench_model)

    m = sub.add_parser("model", help="duplex model pipeline: generate data, train, export")
    msub = m.add_subparsers(dest="model_cmd", required=True)
    for name, helptext in (("data", "generate the synthetic two-channel calls"), ("train", "train the model"),
                           ("export", "export + verify the ONNX model and manifest")):
        p = msub.add_parser(name, help=helptext, add_help=False, prefix_chars="+")
        p.add_argument("args", nargs=argparse.REMAINDER)
        p.set_defaults(func=lambda a, n=name: _pipeline(n, a.args))


def _pipeline(name: str, argv: list[str]) -> int:
    import importlib
    return int(importlib.import_module(f"models.{name}").main(argv) or 0)


def _recommended(model: str | None) -> dict[str, Any]:
    from models.runtime import DEFAULT_MODEL
    path = Path(model).with_name("manifest.json") if model else DEFAULT_MODEL.with_name("manifest.json")
    try:
        return json.loads(path.read_text()).get("recommended", {})
    except (OSError, ValueError):
        return {}


def eval_turns(args: argparse.Namespace) -> int:
    from ..eval.dataset import load_dataset
    from ..eval.plots import draw
    from ..eval.turns import POLICIES, evaluate, table
    from ..policy.base import PolicySettings

    policies = args.policy or ["vad-timeout", "vad-timeout-pipecat", "smart-turn", "duplex", "duplex-words"]
    try:
        samples = load_dataset(args.dataset, telephone=args.telephony, limit=args.limit)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rec = _recommended(args.model)
    base = PolicySettings(
        eot_threshold=args.eot_threshold if args.eot_threshold is not None else rec.get("eot_threshold", 0.5),
        interrupt_threshold=(args.interrupt_threshold if args.interrupt_threshold is not None
                             else rec.get("interrupt_threshold", 0.5)))
    if args.max_eot_silence is not None:
        base = replace(base, max_end_of_turn_silence=args.max_eot_silence)
    if args.tune:
        return _tune(samples, args)
    from ..policy.duplex import DuplexTuning
    tuning = DuplexTuning.from_manifest(rec)
    if args.eot_confirm is not None:
        tuning = replace(tuning, eot_confirm=args.eot_confirm)
    if args.interrupt_confirm is not None:
        tuning = replace(tuning, interrupt_confirm=args.interrupt_confirm)
    res = evaluate(samples, [p for p in POLICIES if p in policies], base, curves=not args.no_curves,
                   duplex_path=args.model, tuning=tuning)
    res["dataset"] = str(args.dataset)
    res["telephony"] = args.telephony
    res["samples"] = len(samples)
    res["duplex_settings"] = {"eot_threshold": base.eot_threshold, "interrupt_threshold": base.interrupt_threshold,
                              "eot_confirm": tuning.eot_confirm, "interrupt_confirm": tuning.interrupt_confirm,
                              "eot_decay": tuning.eot_decay, "max_eot_silence": base.max_end_of_turn_silence}
    out = Path(args.out or "out/eval-turns")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    title = f"{Path(args.dataset).name}{' (8 kHz mu-law)' if args.telephony else ' (16 kHz)'}, {len(samples)} calls"
    pngs = draw(res, out, title)
    print(f"\n{title}: detection window -0.25..+3.0 s; latencies in seconds")
    print(table(res))
    print(f"\nproviders: {res['providers']}")
    print(f"wrote {out / 'results.json'} and {', '.join(str(p) for p in pngs)}")
    if args.record:
        print(f"recorded in {record(res, args.model)}")
    return 0


def record(res: dict[str, Any], model: str | None = None) -> Path:
    """Summaries of every policy of one eval run into the model manifest's "eval" section."""
    from models.runtime import DEFAULT_MODEL
    path = Path(model).with_name("manifest.json") if model else DEFAULT_MODEL.with_name("manifest.json")
    m = json.loads(path.read_text())
    key = f"{Path(res['dataset']).name}-{'8k-mulaw' if res['telephony'] else '16k'}"
    drop = {"eot_latencies", "stop_latencies", "curve", "decisions", "seconds"}
    m.setdefault("eval", {})[key] = {
        "command": f"duplexbot eval turns {res['dataset']}{' --telephony' if res['telephony'] else ''}",
        "samples": res["samples"], "duplex_settings": res["duplex_settings"],
        "policies": {n: {k: v for k, v in r.items() if k not in drop} for n, r in res["policies"].items()}}
    path.write_text(json.dumps(m, indent=1) + "\n")
    return path


def _tune(samples: list[Sample], args: argparse.Namespace) -> int:
    """Choose the duplex thresholds and confirm counts on a dev set: the lowest median latency among
    settings meeting both targets (end of turn: recall >= 0.90 with FP <= 0.05 over holds;
    interruption: recall >= 0.95 with false stops <= 0.05); when none does, the recall target at
    the fewest false positives; saved in the manifest under "recommended"."""
    import numpy as np

    from models.runtime import DEFAULT_MODEL

    from ..eval.turns import compute_streams, run_policy
    from ..policy.base import PolicySettings
    from ..policy.duplex import DuplexTuning
    st = compute_streams(samples, True, args.model)
    rows: list[_Row] = []
    for decay in (0.0, 0.15, 0.3, 0.45):
        for confirm in (1, 2, 3):
            for thr in np.round(np.arange(0.2, 0.96, 0.05), 3):
                r = run_policy("duplex", samples, st, PolicySettings(eot_threshold=float(thr),
                               interrupt_threshold=float(thr)), None, tuning=DuplexTuning(confirm, confirm, decay))
                rows.append((float(thr), confirm, r, decay))
                print(f"thr {thr:.2f} x{confirm} decay {decay:.2f}: eot rec {r['eot_recall']} fp {r['eot_fp_rate']} "
                      f"p50 {r['eot_latency_p50']} | int rec {r['interruption_recall']} false stop "
                      f"{r['false_stop_rate']} p50 {r['stop_latency_p50']}")

    def pick(fp_key: str, rec_key: str, lat_key: str, fp_max: float, rec_min: float) -> _Row:
        def fp(x: _Row) -> float: return x[2][fp_key] if x[2][fp_key] is not None else 1.0
        def rec(x: _Row) -> float: return x[2][rec_key] or 0.0
        def lat(x: _Row) -> float: return x[2][lat_key] if x[2][lat_key] is not None else 9.0
        both = [x for x in rows if fp(x) <= fp_max and rec(x) >= rec_min]
        if both:
            return min(both, key=lat)
        enough = [x for x in rows if rec(x) >= rec_min]
        if enough:  # the recall target, at the fewest false positives
            return min(enough, key=lambda x: (round(fp(x), 4), lat(x)))
        return max(rows, key=lambda x: rec(x) - fp(x))
    e = pick("eot_fp_rate", "eot_recall", "eot_latency_p50", 0.05, 0.90)
    i = pick("false_stop_rate", "interruption_recall", "stop_latency_p50", 0.05, 0.95)
    path = Path(args.model).with_name("manifest.json") if args.model else DEFAULT_MODEL.with_name("manifest.json")
    m = json.loads(path.read_text())
    m["recommended"] = {"eot_threshold": e[0], "eot_confirm": e[1], "eot_decay": e[3], "interrupt_threshold": i[0],
                        "interrupt_confirm": i[1], "tuned_on": str(args.dataset),
                        "rule": " ".join((_tune.__doc__ or "").split(":", 1)[-1].split()),
                        "dev": {k: e[2][k] for k in ("eot_recall", "eot_fp_rate", "eot_latency_p50")}
                        | {k: i[2][k] for k in ("interruption_recall", "false_stop_rate", "stop_latency_p50")}}
    path.write_text(json.dumps(m, indent=1) + "\n")
    print(f"recommended {m['recommended']} -> {path}")
    return 0


def bench_model(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from models.runtime import DuplexModel
    model = DuplexModel(args.model, threads=args.threads, device="cpu")
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    for b in [int(x) for x in args.batches.split(",")]:
        ids = [f"s{i}" for i in range(b)]
        x = (rng.standard_normal((b, 2, 512)) * 0.05).astype(np.float32)
        for _ in range(5):
            model.run(ids, x)
        steps = max(10, args.steps if b <= 64 else args.steps // 4)
        t0 = time.perf_counter()
        for _ in range(steps):
            model.run(ids, x)
        per = (time.perf_counter() - t0) / steps
        for i in ids:
            model.drop(i)
        rows.append({"batch": b, "step_ms": round(per * 1e3, 3), "per_call_us": round(per / b * 1e6, 2),
                     "realtime_calls_per_core": int(0.032 / (per / b) / args.threads)})
    res = {"model": str(model.path), "providers": model.providers, "threads": args.threads,
           "chunk_seconds": 0.032, "rows": rows,
           "calls_per_core": max(r["realtime_calls_per_core"] for r in rows if r["step_ms"] / 1e3 < 0.032)
           if any(r["step_ms"] / 1e3 < 0.032 for r in rows) else 0}
    print(f"duplex model on {model.providers} ({args.threads} thread)")
    print(f"{'batch':>6} {'step ms':>9} {'us/call':>9} {'real-time calls/core':>22}")
    for r in rows:
        print(f"{r['batch']:>6} {r['step_ms']:>9.3f} {r['per_call_us']:>9.2f} {r['realtime_calls_per_core']:>22}")
    print(f"one CPU core serves about {res['calls_per_core']} calls in real time (32 ms per step)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0
