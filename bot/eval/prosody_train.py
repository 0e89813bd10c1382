"""Train the prosody probe (bot/services/prosody.py): does the voice go on after this phrase?

    python -m bot.eval.prosody_train [--out models/prosody.npz] [--pairs 600] [--check out/phone-set]
                                     [--real librispeech] [--real speechocean762]

Data, made here and never committed: for each training voice and sentence pair, the whole sentence
"PREFIX REST" is synthesised once and a pause is opened where PREFIX ends (bot/eval/phone_data.py's
`build_pause`: the prefix keeps its mid-sentence prosody), so the phrase before the pause is a
complete question by its words but not by its voice (label: goes on); the sentence's end and
PREFIX said alone as a whole question are ends (label: done). Every example has the same made-up
silence after its phrase (0.10-0.26 s, as the engine's VAD hangover and post-roll give), half a
noise floor, and half go through a telephone leg (8 kHz, band-pass, mu-law). Features are Whisper
tiny.en encoder frames at the pause, exactly as the engine computes them for its speculative
transcript.

Real speech (`--real`, bot/eval/prosody_real.py): whole sentences recorded by real speakers, from
`fetch` mirrors, label themselves by their own timing (a pause inside the speech goes on, the end
is done), made into features the same way. With them the L2 strength is chosen on the real dev
speakers, and the speakers of the `--check` set are never used.

Held apart from the phone benchmark: the voices (espeak-ng variants in the duplex model's training
split, not phone_data.ESPEAK_HELD_OUT; hibari "heart" with random vocoder settings, not
phone_data.HIBARI_STYLES) and the sentences (checked disjoint from phone_data's). Voices are split
train/dev by name; the L2 strength is chosen on dev. `--check` reports how well the probe
separates pauses from ends on a phone set (our held-out voices), for the record only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .phone_data import (
    ESPEAK_HELD_OUT,
    HIBARI_STYLES,
    LEAD_S,
    PAUSE_QUESTIONS,
    SHORT_QUESTIONS,
    EspeakVoice,
    HibariModel,
    HibariStyleVoice,
    build_pause,
    build_short,
)
from .prosody_real import REAL_SOURCES, as_heard, cut
from .real_data import MIRROR

if TYPE_CHECKING:
    from ..services.asr import WhisperAsr
    from ..services.prosody import ProsodyProbe
    from .phone_data import CallerVoice

RATE = 16000
# (a phrase that is a whole turn by its words, the rest of a longer sentence)
PAIRS = [
    ("Can I change my booking", "to the later flight?"), ("Is my order ready", "for collection today?"),
    ("Do you have it in blue", "or only in black?"), ("Could you send me the invoice", "by email instead?"),
    ("I'd like to cancel my subscription", "at the end of the month."), ("Is the pharmacy open", "after six tonight?"),
    ("Can I pay by card", "when the driver arrives?"), ("Where is the nearest branch", "to the train station?"),
    ("I need a new password", "for the online account."), ("Has my refund gone through", "to my bank yet?"),
    ("Do you deliver on weekends", "to the north side of town?"), ("Can I speak to someone", "about my last bill?"),
    ("I want to book a table", "for six people on Friday."), ("Is the warranty still valid", "after I moved house?"),
    ("How much is the upgrade", "for a family plan?"), ("Can you check my balance", "on the savings account?"),
    ("I lost my card", "somewhere at the shopping centre."), ("Is parking included", "in the monthly price?"),
    ("Could I get a window seat", "on the return journey?"), ("Is the doctor in today", "or only on Tuesdays?"),
    ("Can I return the shoes", "without the original box?"), ("My internet is down", "since early this morning."),
    ("Do I need an appointment", "for the blood test?"), ("Is breakfast included", "with the standard room?"),
    ("Can you move my delivery", "to next Wednesday afternoon?"), ("I'd like a quote", "for the kitchen repairs."),
    ("Is there a student discount", "on the annual pass?"), ("Can I add my husband", "to the insurance policy?"),
    ("The heating is broken", "in the upstairs flat."), ("Do you open early", "on bank holidays?"),
    ("Can I bring my dog", "into the cafe area?"), ("Is the package insured", "against damage in transit?"),
    ("I'd like to report a leak", "under the kitchen sink."), ("Are you hiring", "for the summer season?"),
    ("Can I get a receipt", "for the cash payment?"), ("Is the course online", "or in the classroom?"),
    ("Could you spell that", "for me once more?"), ("Is my car ready", "to pick up after lunch?"),
    ("I want to upgrade my phone", "before the contract ends."), ("Do you take cash", "at the front desk?"),
    ("Can I swap shifts", "with a colleague next week?"), ("Is the road open", "past the old quarry?"),
    ("I'd like to speak to a manager", "about the service today."),
    ("Can you hold the room", "until tomorrow morning?"),
    ("Is the meeting still on", "for three o'clock?"), ("Do you fix laptops", "with water damage?"),
    ("Can I renew my licence", "over the phone with you?"), ("Is the gate code the same", "as last month?"),
]
SHORT_ONLY = ["Is it raining there?", "Can you help me?", "What's the total?", "Is that everything?",
              "How long will it take?", "Are you still there?", "Can I pay now?", "What happens next?",
              "That's all, thanks.", "I'll wait for the email.", "Yes, that's correct.", "No, that's fine."]


def _disjoint_from_phone_set() -> None:
    theirs = {q.lower().rstrip("?") for q in SHORT_QUESTIONS} | {p.lower() for p, _ in PAUSE_QUESTIONS}
    ours = {p.lower() for p, _ in PAIRS} | {q.lower().rstrip("?.") for q in SHORT_ONLY}
    clash = theirs & ours
    if clash:
        raise SystemExit(f"training sentences overlap the phone set: {sorted(clash)}")


def split_of(name: str) -> str:
    return "dev" if zlib.crc32(("prosody:" + name).encode()) % 10 < 2 else "train"


def training_voices(rng: np.random.Generator, n_hibari: int = 12) -> list:
    from models.data import ESPEAK_LANGS, ESPEAK_VARIANTS, voice_split
    held = {v for _, v, _, _ in ESPEAK_HELD_OUT}
    voices: list = []
    for variant in ESPEAK_VARIANTS:
        if voice_split(variant) != "train" or variant in held:
            continue
        voices.append(EspeakVoice(str(rng.choice(ESPEAK_LANGS)), variant, int(rng.integers(140, 190)),
                                  int(rng.integers(30, 70))))
    model = HibariModel()
    styles = {(p, f) for _, p, f, _, _ in HIBARI_STYLES}
    while len([v for v in voices if v.family == "hibari"]) < n_hibari:
        pitch, formant = round(float(rng.uniform(0.72, 1.3)), 2), round(float(rng.uniform(0.86, 1.12)), 2)
        if any(abs(pitch - p) < 0.04 and abs(formant - f) < 0.03 for p, f in styles):
            continue  # too close to a held-out style
        voices.append(HibariStyleVoice(f"train-{pitch}-{formant}", pitch, formant, float(rng.uniform(0, 5)),
                                       round(float(rng.uniform(0.88, 1.18)), 2), model=model))
    return voices


def clip_for_asr(y: np.ndarray, t: float, after: float) -> np.ndarray:
    """The audio the engine hands to ASR for a phrase ending at t: from just before the caller's
    onset to t plus the VAD hangover and post-roll. The silence after t is made here, the same for
    pauses and ends (a sample's own tail is shorter than a pause: left as it is, the probe learns
    the length of the trailing silence instead of the voice). A phone-set sample's caller starts at LEAD_S."""
    return cut(y, LEAD_S, t, after)


def make_examples(voices: list[CallerVoice], n_pairs: int, rng: np.random.Generator, asr: WhisperAsr,
                  progress: bool = True, both_legs: bool = False
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels, split and leg (1: through the telephone leg) of `n_pairs` sentence pairs;
    a pair goes through the leg or not by chance, or, with `both_legs`, both ways."""
    from ..services.prosody import pause_features
    X, Y, G, L = [], [], [], []
    t0 = time.perf_counter()
    for k in range(n_pairs):
        voice = voices[int(rng.integers(len(voices)))]
        prefix, rest = PAIRS[int(rng.integers(len(PAIRS)))]
        tel = rng.random() < 0.5
        clips: list[tuple[np.ndarray, int]] = []
        try:
            y, end, holds = build_pause(voice, prefix, rest, float(rng.uniform(0.5, 1.2)))
            clips.append((clip_for_asr(y, holds[0][0], float(rng.uniform(0.1, 0.26))), 1))
            clips.append((clip_for_asr(y, end, float(rng.uniform(0.1, 0.26))), 0))
            text = prefix + "?" if rng.random() < 0.75 else str(rng.choice(SHORT_ONLY))
            ys, ends, _ = build_short(voice, text)
            clips.append((clip_for_asr(ys, ends, float(rng.uniform(0.1, 0.26))), 0))
        except Exception as e:  # a voice that fails on a sentence is skipped, not fatal
            print(f"skip {voice.name}: {e!r}", file=sys.stderr)
            continue
        for x, label in clips:
            if rng.random() < 0.5:  # a line's noise floor, -65 to -45 dBFS, under speech and silence alike
                x = x + rng.standard_normal(x.size).astype(np.float32) * np.float32(10 ** (rng.uniform(-65, -45) / 20))
            for leg, heard in as_heard(x, tel, both_legs, rng):
                X.append(pause_features(asr.encode_sync(heard), heard.size))
                Y.append(label)
                G.append(split_of(voice.name))
                L.append(int(leg))
        if progress and (k + 1) % 50 == 0:
            print(f"  {k + 1}/{n_pairs} pairs, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return np.stack(X), np.asarray(Y, np.float32), np.asarray(G), np.asarray(L)


def fit(X: np.ndarray, Y: np.ndarray, l2: float, steps: int = 600,
        lr: float = 0.05) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression by full-batch Adam on standardised features."""
    mean, std = X.mean(0), X.std(0) + 1e-4
    Z = (X - mean) / std
    w, b = np.zeros(Z.shape[1], np.float32), 0.0
    m = v = np.zeros_like(w)
    mb = vb = 0.0
    for t in range(1, steps + 1):
        p = 1 / (1 + np.exp(-(Z @ w + b)))
        gw = Z.T @ (p - Y) / len(Y) + l2 * w
        gb = float(np.mean(p - Y))
        m, v = 0.9 * m + 0.1 * gw, 0.999 * v + 0.001 * gw * gw
        mb, vb = 0.9 * mb + 0.1 * gb, 0.999 * vb + 0.001 * gb * gb
        w = w - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        b = b - lr * (mb / (1 - 0.9 ** t)) / (np.sqrt(vb / (1 - 0.999 ** t)) + 1e-8)
    return w.astype(np.float32), float(b), mean.astype(np.float32), std.astype(np.float32)


END_VETOED = 0.05  # calibration: the share of real ends the probe may contest (p >= continue_veto) ...
PAUSE_PASSED = 0.10  # ... and of real pauses it may call done (p <= voice_done)


def calibrate(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """A monotone map of the probe's logit (scale, shift; its ranking and AUC unchanged) under which
    the fusion's fixed thresholds keep their meaning on real speakers: at most END_VETOED of the ends
    reach `continue_veto` and at most PAUSE_PASSED of the pauses fall to `voice_done`."""
    from ..policy.fusion import FusionSettings
    fs = FusionSettings()
    z_end = float(np.quantile(z[y == 0], 1 - END_VETOED))
    z_pause = float(np.quantile(z[y == 1], PAUSE_PASSED))
    lo, hi = np.log(fs.voice_done / (1 - fs.voice_done)), np.log(fs.continue_veto / (1 - fs.continue_veto))
    if z_end <= z_pause + 1e-6:  # the classes barely overlap: any map keeps both targets; keep the scale
        return 1.0, float((lo + hi) / 2 - (z_end + z_pause) / 2)
    scale = float((hi - lo) / (z_end - z_pause))
    return scale, float(hi - scale * z_end)


def _rates(p: np.ndarray, y: np.ndarray) -> str:
    """How the fusion's fixed thresholds (FusionSettings.continue_veto / voice_done) act on `p`."""
    from ..policy.fusion import FusionSettings
    fs = FusionSettings()
    pause, end = p[y == 1], p[y == 0]
    return (f"pauses >= {fs.continue_veto:g}: {float((pause >= fs.continue_veto).mean()):.2f}, ends >= it: "
            f"{float((end >= fs.continue_veto).mean()):.2f}, ends <= {fs.voice_done:g}: "
            f"{float((end <= fs.voice_done).mean()):.2f}, pauses <= it: {float((pause <= fs.voice_done).mean()):.2f}")


def auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def check_phone_set(probe: ProsodyProbe, asr: WhisperAsr, folder: str, leg: bool = False) -> dict[str, Any]:
    """How the probe scores the pauses and the ends of a phone set (bot/eval/phone_data.py), as
    recorded or through a telephone leg (`leg`: 8 kHz, 300-3400 Hz, mu-law)."""
    from models.audio import read_wav, resample, telephony

    from ..services.prosody import pause_features
    m = json.loads((Path(folder) / "manifest.json").read_text())
    ps, ys, ks = [], [], []
    for s in m["samples"]:
        a, sr = read_wav(Path(folder) / s["wav"])
        a = resample(a.reshape(-1).astype(np.float32), sr, RATE)
        for t, label in [(h[0], 1) for h in s["holds"]] + [(s["end"], 0)]:
            x = np.concatenate([a[: int(t * RATE)], np.zeros(int(0.2 * RATE), np.float32)])
            if leg:
                x = telephony(x, RATE).astype(np.float32)
            ps.append(float(probe(pause_features(asr.encode_sync(x), x.size))[0]))
            ys.append(label)
            ks.append(str(s.get("kind", "")))
    p, y, k = np.asarray(ps), np.asarray(ys), np.asarray(ks)

    def summary(sel: np.ndarray) -> dict[str, Any]:
        ps_, ys_ = p[sel], y[sel]
        return {"auc": round(auc(ps_, ys_), 3), "pauses": int((ys_ == 1).sum()), "ends": int((ys_ == 0).sum()),
                "pauses_over_0.5": round(float((ps_[ys_ == 1] >= 0.5).mean()), 3) if (ys_ == 1).any() else None,
                "ends_over_0.5": round(float((ps_[ys_ == 0] >= 0.5).mean()), 3) if (ys_ == 0).any() else None,
                "rates": _rates(ps_, ys_)}
    out = summary(np.ones(len(y), bool))
    if len(set(ks)) > 1:
        out["by_kind"] = {kind: summary(k == kind) for kind in sorted(set(ks))}
    return out


def _with_real(args: argparse.Namespace, rng: np.random.Generator, asr: WhisperAsr,
               made: tuple[np.ndarray, ...] | None) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
    """The synthetic examples with the real recordings' appended (last, so dev can be scored on them
    alone). Speakers of the --check set are never used."""
    from .prosody_real import corpus, real_examples
    from .real_data import decode, open_tree
    exclude: frozenset[str] = frozenset()
    if args.check:
        held = json.loads((Path(args.check) / "manifest.json").read_text())["samples"]
        exclude = frozenset(s["speaker"] for s in held)
    recs: list[tuple[str, str, np.ndarray]] = []
    info: dict[str, Any] = {}
    for name in args.real:
        src = REAL_SOURCES[name]
        tree = open_tree(Path(args.mirror) / src.mirror)
        keep = None
        if src.model_train_split:
            from models.real_words import speaker_split
            keep = lambda spk: speaker_split(spk) == "train"  # noqa: E731
        got = corpus(name, tree, src.folder, src.pattern, decode, src.per_speaker, exclude, keep)
        speakers = sorted({s for s, _, _ in got})
        print(f"real: {len(got)} {name} recordings by {len(speakers)} speakers", file=sys.stderr)
        info[name] = {"mirror": src.mirror, "commit": tree.commit(), "licence": src.licence, "recordings": len(got),
                      "speakers_train": sum(split_of(s) == "train" for s in speakers),
                      "speakers_dev": sorted(s for s in speakers if split_of(s) == "dev")}
        recs += got
    *real, counts = real_examples(recs, rng, asr, split_of, both_legs=args.both_legs)
    info.update(counts, examples=int(len(real[1])), excluded_speakers=sorted(exclude))
    if made is None:
        return tuple(real), info
    return tuple(np.concatenate([a, b]) for a, b in zip(made, real)), info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bot.eval.prosody_train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/prosody.npz")
    ap.add_argument("--pairs", type=int, default=600, help="sentence pairs (3 examples each)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--check", default=None, help="a phone set to report the probe's separation on")
    ap.add_argument("--real", action="append", default=[], choices=sorted(REAL_SOURCES),
                    help="real recordings of whole sentences (bot/eval/prosody_real.py): their own pauses go on, "
                         "their ends are done (repeatable)")
    ap.add_argument("--mirror", default=str(MIRROR), help="where the real corpora's fetch mirrors are")
    ap.add_argument("--features", default=None,
                    help="an .npz of the examples' features: read if it exists (same arguments), else written")
    ap.add_argument("--both-legs", action="store_true",
                    help="every clip wideband and through the telephone leg, not one of the two by chance")
    args = ap.parse_args(argv)
    _disjoint_from_phone_set()
    from ..services.asr import AsrSettings, WhisperAsr
    from ..services.prosody import ProsodyProbe, load_probe
    rng = np.random.default_rng(args.seed)
    asr = WhisperAsr(AsrSettings(prosody_path="none"))
    voices = training_voices(rng)
    t0 = time.perf_counter()
    cached = Path(args.features) if args.features else None
    real: dict[str, Any] = {}
    if cached is not None and cached.exists():
        with np.load(cached, allow_pickle=False) as z:
            X, Y, G, real = z["X"], z["Y"], z["G"], json.loads(str(z["real"]))
            L = z["L"] if "L" in z.files else None  # caches made before legs were kept: unknown
        print(f"features from {cached}: {len(Y)} examples", file=sys.stderr)
    else:
        ex: tuple[np.ndarray, ...] | None = \
            make_examples(voices, args.pairs, rng, asr, both_legs=args.both_legs) if args.pairs else None
        if args.real:
            ex, real = _with_real(args, rng, asr, ex)
        assert ex is not None, "no examples: give --pairs or --real"
        X, Y, G, L = ex
        if cached is not None:
            np.savez(cached, X=X, Y=Y, G=G, L=L, real=np.array(json.dumps(real)))
    made = time.perf_counter() - t0
    tr, dv = G == "train", G == "dev"
    dv_real = dv & (np.arange(len(Y)) >= len(Y) - real.get("examples", 0))
    # the L2 strength is chosen on the real dev speakers when there are any (the callers' domain)
    sel = dv_real if dv_real.any() else dv
    shipped = load_probe("")
    if shipped is not None and dv_real.any():
        print(f"shipped probe on the real dev speakers: AUC {auc(shipped(X[dv_real]), Y[dv_real]):.3f}, "
              f"{_rates(shipped(X[dv_real]), Y[dv_real])}")
    best = None
    for l2 in (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0):
        w, b, mean, std = fit(X[tr], Y[tr], l2)
        p = ProsodyProbe(w, b, mean, std, {})(X[dv])
        pr = ProsodyProbe(w, b, mean, std, {})(X[dv_real])
        extra = f"; real dev speakers {auc(pr, Y[dv_real]):.3f} ({int(dv_real.sum())}), {_rates(pr, Y[dv_real])}" \
            if dv_real.any() else ""
        print(f"l2={l2:g}: dev AUC {auc(p, Y[dv]):.3f} ({int(dv.sum())} dev examples{extra})")
        score = auc(pr if dv_real.any() else p, Y[sel])
        if best is None or score > best[0]:
            best = (score, l2)
    assert best is not None
    calibration: dict[str, Any] = {}
    if dv_real.any():
        # shipped: the fit on the train split (the real dev speakers kept out), its logit mapped on
        # those dev speakers; their rates after the map are its targets, the held-out numbers are --check's
        w, b, mean, std = fit(X[tr], Y[tr], best[1])
        scale, shift = calibrate(((X[dv_real] - mean) / std) @ w + b, Y[dv_real])
        w, b = (w * scale).astype(np.float32), b * scale + shift
        pr = ProsodyProbe(w, b, mean, std, {})(X[dv_real])
        calibration = {"scale": round(scale, 4), "shift": round(shift, 4), "real_dev": _rates(pr, Y[dv_real]),
                       "fit_on": "train split"}
    else:
        w, b, mean, std = fit(X, Y, best[1])
    if calibration:
        print(f"calibrated on the real dev speakers: {calibration}")
    by_leg = {}
    scored = ProsodyProbe(w, b, mean, std, {})(X)
    for name, part in (("voices", dv & ~dv_real), ("real speakers", dv_real)) if L is not None else ():
        for leg, heard in ((0, "wideband"), (1, "telephone leg")):
            sel_ = part & (L == leg)
            if sel_.any():
                by_leg[f"{name}, {heard}"] = round(auc(scored[sel_], Y[sel_]), 3)
    print(f"dev AUC by leg: {by_leg}")
    meta = {"examples": int(len(Y)), "dev_auc": round(best[0], 3), "l2": best[1], "pairs": args.pairs,
            "dev": "real speakers" if dv_real.any() else "voices", "calibration": calibration,
            "dev_auc_by_leg": by_leg, "both_legs": args.both_legs,
            "seed": args.seed, "voices": sorted({v.name for v in voices}), "seconds_to_make": round(made, 1),
            "features": "whisper tiny.en encoder, last 4 x 0.2 s mean-pooled", "real": real,
            "licences": {"espeak": "GPL-3.0-or-later (espeak-ng; audio rendered locally, not shipped)",
                         "hibari": "Apache-2.0 (hibari-tts; audio rendered locally, not shipped)"}}
    probe = ProsodyProbe(w, b, mean, std, meta)
    if args.check:
        meta["phone_set_check"] = check_phone_set(probe, asr, args.check)
        meta["phone_set_check_telephone_leg"] = check_phone_set(probe, asr, args.check, leg=True)
        print(f"phone set {args.check} through the telephone leg: {meta['phone_set_check_telephone_leg']}")
        print(f"phone set {args.check}: {meta['phone_set_check']}")
    probe.save(args.out)
    print(f"wrote {args.out}: {len(Y)} examples, dev AUC {best[0]:.3f}")
    asr.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
