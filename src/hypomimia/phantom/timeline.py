"""Per-video timelines: expression events, spontaneous blinks and micro-movements -> per-frame AUs.

An event raises some AUs to a peak with a raised-cosine onset, holds, and releases with a
raised-cosine offset. Tasks follow a clinical video protocol: ``rest`` (sit still), ``smile``
(smile when asked, a few times), ``speech`` (talk: syllables move jaw and lips at ~4 Hz),
``mimic`` (copy a sequence of posed expressions).

Dynamic-only data sets use a *cyclic pattern* instead: one pattern of events, drawn from the same
distribution for both classes, is played ``n`` times per clip from a random phase. Time-scaling and
repeating a pattern leaves the fraction of time spent in every facial configuration unchanged
(exactly for whole cycles, in expectation over the random phase otherwise), so single frames
carry no class information; only the speed (cycles per clip) differs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from hypomimia.phantom.action_units import AUS
from hypomimia.phantom.disease import Profile

UPPER_FACE_AUS = ("au1_2", "au4", "au6")
BLINK_MIN_GAP_S = 0.8  # blinks closer than this would merge in the eye-aspect-ratio read-back


@dataclass(frozen=True)
class Event:
    kind: str  # smile, brow_raise, frown, open_mouth, syllable, spontaneous_smile, lips_parted
    aus: dict[str, float]  # AU -> peak intensity
    start: float  # seconds (or cycle fraction in a pattern)
    onset: float
    hold: float
    offset: float

    @property
    def end(self) -> float:
        return self.start + self.onset + self.hold + self.offset

    def envelope(self, t: np.ndarray) -> np.ndarray:
        """0..1 over time ``t``: raised-cosine rise, plateau, raised-cosine fall."""
        rise = np.clip((t - self.start) / max(self.onset, 1e-6), 0, 1)
        fall = np.clip((t - self.start - self.onset - self.hold) / max(self.offset, 1e-6), 0, 1)
        return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 + 0.5 * np.cos(np.pi * fall))

    def scaled(self, k: float, shift: float) -> Event:
        return Event(
            self.kind, self.aus, self.start * k + shift, self.onset * k, self.hold * k, self.offset * k
        )


@dataclass
class Timeline:
    fps: int
    n_frames: int
    events: list[Event]
    au: dict[str, np.ndarray]  # AU -> per-frame intensity
    pose: np.ndarray  # n_frames x 5: yaw, pitch, roll (degrees), dx, dy (inter-ocular distances)
    blinks: list[dict] = field(default_factory=list)  # {start, peak, end} frame indices
    cycles: float | None = None  # dynamic-only: pattern repetitions in the clip

    def blink_frames(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(self.au["au45"] >= 0.5)]

    def to_json(self) -> dict:
        return {
            "fps": self.fps,
            "n_frames": self.n_frames,
            "events": [{**asdict(e), "aus": {k: round(v, 4) for k, v in e.aus.items()}} for e in self.events],
            "blinks": self.blinks,
            "blink_frames": self.blink_frames(),
            "cycles": self.cycles,
            "au": {k: [round(float(x), 4) for x in v] for k, v in self.au.items()},
            "pose": {
                k: [round(float(x), 4) for x in self.pose[:, i]]
                for i, k in enumerate(("yaw", "pitch", "roll", "dx", "dy"))
            },  # fmt: skip
        }


def _posed(rng: np.random.Generator, kind: str, a: float, a_up: float) -> dict[str, float]:
    if kind == "smile":
        return {"au12": a * rng.uniform(0.8, 1.0), "au6": a_up * rng.uniform(0.5, 0.8)}
    if kind == "brow_raise":
        return {"au1_2": a_up * rng.uniform(0.8, 1.0)}
    if kind == "frown":
        return {"au4": a_up * rng.uniform(0.8, 1.0)}
    if kind == "open_mouth":
        return {"au25": a * rng.uniform(0.8, 1.0), "au26": a * rng.uniform(0.7, 0.9)}
    raise ValueError(kind)


def _sequence(rng, kinds, t0, t_end, ramp, hold, gap, a, a_up) -> list[Event]:
    """Events one after another from ``t0`` while they fit before ``t_end``."""
    events, t = [], t0
    for kind in kinds:
        on, off = ramp * rng.uniform(0.9, 1.1), ramp * rng.uniform(1.0, 1.3)
        h = rng.uniform(*hold)
        if t + on + h + off > t_end:
            if events:
                break
            # A slow (severe PD) subject still does the first expression asked for: shorter hold, earlier start.
            h = max(0.15, t_end - t - on - off)
            t = max(0.05, min(t, t_end - on - h - off))
        events.append(Event(kind, _posed(rng, kind, a, a_up), t, on, h, off))
        t += on + h + off + rng.uniform(*gap)
    return events


def _speech(rng: np.random.Generator, t0: float, t_end: float, a: float, speed: float) -> list[Event]:
    """Phrases of syllables; each syllable opens the jaw and lips and stretches or rounds the lips."""
    events, t = [], t0
    rate = 4.2 * np.sqrt(speed)  # syllables per second; speech slows less than limb movement
    while t < t_end - 0.5:
        phrase_end = min(t + rng.uniform(1.2, 2.6), t_end - 0.2)
        while t < phrase_end:
            period = rng.uniform(0.8, 1.2) / rate
            lips = "au20" if rng.random() < 0.6 else "au18"
            aus = {
                "au26": a * rng.uniform(0.2, 0.55),
                "au25": a * rng.uniform(0.5, 1.0),
                lips: a * rng.uniform(0.3, 0.8),
            }
            events.append(Event("syllable", aus, t, 0.45 * period, 0.1 * period, 0.45 * period))
            t += period
        t += rng.uniform(0.3, 0.6)
    return events


def task_events(rng: np.random.Generator, task: str, duration: float, profile: Profile) -> list[Event]:
    """Expression events of one clip in the natural (non-cyclic) setting."""
    a, a_up = profile.amplitude, profile.amplitude * profile.upper_face
    ramp = 0.35 / profile.speed
    if task == "smile":
        return _sequence(
            rng, ["smile"] * 4, rng.uniform(0.2, 0.6), duration - 0.1, ramp, (0.5, 1.1), (0.3, 0.8), a, a_up
        )
    if task == "mimic":
        kinds = list(rng.permutation(["brow_raise", "frown", "smile", "open_mouth"]))
        return _sequence(
            rng, kinds, rng.uniform(0.2, 0.5), duration - 0.1, ramp, (0.4, 0.7), (0.2, 0.4), a, a_up
        )
    if task == "speech":
        events = _speech(rng, rng.uniform(0.2, 0.5), duration, a, profile.speech_speed)
        if rng.random() < 0.5:  # a brow raise for emphasis
            t = rng.uniform(0.5, max(0.6, duration - 1.5))
            events.append(Event("brow_raise", {"au1_2": 0.5 * a_up}, t, ramp, 0.4, ramp))
        return events
    if task == "rest":
        if rng.random() < 0.5:  # a spontaneous half-smile
            t = rng.uniform(0.3, max(0.4, duration - 2.0))
            return [
                Event("spontaneous_smile", {"au12": 0.35 * a, "au6": 0.2 * a_up}, t, ramp, 0.6, ramp * 1.2)
            ]
        return []
    raise ValueError(f"unknown task {task!r}")


def pattern_events(rng: np.random.Generator, task: str) -> list[Event]:
    """One cycle of a dynamic-only pattern, in cycle fractions [0, 1); shared by the twins of a pair."""
    if task == "speech":
        n = int(rng.integers(5, 8))
        events = []
        for i in range(n):
            lips = "au20" if rng.random() < 0.6 else "au18"
            aus = {"au26": rng.uniform(0.2, 0.55), "au25": rng.uniform(0.5, 1.0), lips: rng.uniform(0.3, 0.8)}
            events.append(Event("syllable", aus, 0.05 + 0.8 * i / n, 0.35 / n, 0.1 / n, 0.35 / n))
        return events
    kinds = {
        "smile": ["smile"],
        "rest": ["spontaneous_smile"],
        "mimic": [str(rng.choice(["brow_raise", "frown", "smile", "open_mouth"]))],
    }[task]
    events, t = [], 0.05
    for kind in kinds:
        span = 0.85 / len(kinds)
        aus = {"au12": 0.4, "au6": 0.25} if kind == "spontaneous_smile" else _posed(rng, kind, 1.0, 1.0)
        events.append(Event(kind, aus, t, 0.25 * span, 0.35 * span, 0.3 * span))
        t += span
    return events


def _blinks(
    rng: np.random.Generator, duration: float, rate_per_min: float, speed: float = 1.0
) -> list[Event]:
    events, t = [], 0.0
    while True:
        t += rng.exponential(60.0 / rate_per_min)
        if t > duration - 0.45:
            return events
        if t < 0.15 or (events and t - events[-1].start < BLINK_MIN_GAP_S):
            continue
        close, shut, opening = rng.uniform(0.07, 0.1), rng.uniform(0.03, 0.07), rng.uniform(0.13, 0.2)
        events.append(Event("blink", {"au45": 1.0}, t, close / speed, shut / speed, opening / speed))


def _smooth_noise(
    rng: np.random.Generator, t: np.ndarray, amp: float, speed: float, n: int = 4
) -> np.ndarray:
    """A sum of slow random sinusoids: drift and sway of a seated person (zero mean)."""
    out = np.zeros_like(t)
    for _ in range(n):
        f = rng.uniform(0.1, 0.9) * speed
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * rng.uniform(0.5, 1.0)
    return amp * out / np.sqrt(n / 2)


def build_timeline(
    rng: np.random.Generator,
    task: str,
    duration: float,
    fps: int,
    profile: Profile,
    pattern: list[Event] | None = None,
    cycles: float | None = None,
) -> Timeline:
    """Per-frame AU intensities and head pose of one clip.

    With ``pattern`` (dynamic-only), the cycle is played ``cycles`` times from a random phase;
    otherwise the task's natural events are drawn.
    """
    n = int(round(duration * fps))
    t = np.arange(n) / fps
    au = {k: np.zeros(n) for k in AUS}
    if pattern is not None and cycles is not None:
        events = []
        period = duration / cycles
        phase = rng.uniform(0, 1)
        for k in range(-1, int(np.ceil(cycles)) + 1):
            events += [e.scaled(period, (k - phase) * period) for e in pattern]
        events = [e for e in events if e.end > 0 and e.start < duration]
    else:
        events = task_events(rng, task, duration, profile)
    for e in events:
        env = e.envelope(t)
        for k, v in e.aus.items():
            au[k] += v * env
    if profile.lips_parted > 0:  # static cue: lips apart at rest some or most of the time
        e = Event("lips_parted", {"au25": 0.55}, 0.0, 0.3, profile.lips_parted * duration, 0.3)
        e = e.scaled(1.0, rng.uniform(-0.3, (1 - profile.lips_parted) * duration))
        events.append(e)
        au["au25"] = np.maximum(au["au25"], 0.55 * e.envelope(t))
    blinks = _blinks(rng, duration, profile.blink_rate, profile.blink_speed)
    for b in blinks:
        au["au45"] = np.maximum(au["au45"], b.envelope(t))
    if profile.lid_droop > 0:  # static eye cue (eyes-only disease): lids lowered between blinks
        au["au45"] = np.maximum(au["au45"], profile.lid_droop)
    # Micro-movements: small facial twitches and head sway, damped and slowed by the disease.
    for k, amp in (("au12", 0.05), ("au1_2", 0.05), ("au4", 0.03), ("au25", 0.04)):
        au[k] += np.abs(_smooth_noise(rng, t, amp * profile.micro, 2.0 * profile.speed))
    pose = np.stack(
        [_smooth_noise(rng, t, amp * profile.micro, profile.speed) for amp in (1.2, 0.9, 0.7, 0.012, 0.01)], 1
    )
    for k in au:
        au[k] = np.clip(au[k], 0.0, 1.2)
    blink_json = []
    for b in blinks:
        frames = np.flatnonzero(b.envelope(t) >= 0.5)
        if len(frames):
            blink_json.append({"start": int(frames[0]), "peak": int(round((b.start + b.onset) * fps)),
                               "end": int(frames[-1])})  # fmt: skip
    return Timeline(fps, n, events + blinks, au, pose, blink_json, cycles)
