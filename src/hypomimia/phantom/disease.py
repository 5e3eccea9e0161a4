"""The phantom's disease model: diagnosis -> MDS-UPDRS 3.2 and Hoehn & Yahr -> movement profile.

MDS-UPDRS Part III item 3.2 (facial expression) rates hypomimia 0-4: 1 = only decreased blinking,
2 = masked lower face (less spontaneous smiling), 3 = lips parted some of the time at rest,
4 = lips parted most of the time. The profile turns the score into multipliers on what the
renderer animates; docs/phantom.md gives the table and its clinical basis. Each *cue* can be
switched off, which gives PD subjects the control value for that cue, so a data set can isolate
one cue (e.g. only speed) and test whether a model finds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hypomimia.config.phantom import CueConfig

PD_UPDRS_P = {1: 0.2, 2: 0.4, 3: 0.3, 4: 0.1}  # item 3.2 in a typical clinic PD cohort
CONTROL_UPDRS_P = {0: 0.8, 1: 0.2}  # some healthy older adults blink little or look "slight"
BASE_BLINK_RATE = (17.0, 4.0, 8.0, 28.0)  # per minute at rest: mean, sd, min, max (healthy adults)


@dataclass(frozen=True)
class Profile:
    """How one subject moves: multipliers relative to an expressive healthy adult."""

    label: str  # "pd" or "control"
    updrs_3_2: int
    hoehn_yahr: float | None
    amplitude: float  # expression amplitude (lower and upper face)
    upper_face: float  # extra factor on brow and cheek AUs (upper-face masking)
    speed: float  # movement speed; ramps last 1/speed as long
    blink_rate: float  # spontaneous blinks per minute
    micro: float  # amplitude of continuous micro-movements (head, face)
    lips_parted: float  # fraction of the time the lips are parted at rest (static cue)
    blink_speed: float = (
        1.0  # blink closing/opening speed (slowed only where the disease shows in the eyes only)
    )
    lid_droop: float = 0.0  # upper lids lowered at rest (AU45 level; only in the eyes-only disease)
    # Syllable-rate factor of speech (rate ~ sqrt): the voice's `rate` cue, which jaw and lips share.
    speech_speed: float = 1.0

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def draw_scores(rng: np.random.Generator, label: str, min_pd_score: int = 1) -> tuple[int, float | None]:
    """(UPDRS 3.2, Hoehn & Yahr stage or None for controls); PD scores below ``min_pd_score`` are excluded."""
    table = PD_UPDRS_P if label == "pd" else CONTROL_UPDRS_P
    if label == "pd":
        table = {u: p for u, p in table.items() if u >= min_pd_score}
    total = sum(table.values())
    updrs = int(rng.choice(list(table), p=[p / total for p in table.values()]))
    if label != "pd":
        return updrs, None
    # H&Y rises with facial masking but only loosely (r ~ 0.5 in clinic cohorts).
    hy = float(np.clip(np.round((1.0 + 0.55 * updrs + rng.normal(0, 0.5)) * 2) / 2, 1.0, 5.0))
    return updrs, hy


# Disease effects per UPDRS 3.2 score (1.0 = none). Score 1 is "slight: only decreased blinking",
# so its other effects are small; masking of the lower face (2) and parted lips (3, 4) follow the
# item's wording. Blink rate at 4 is about half the healthy rate, as in untreated PD.
SEVERITY_EFFECTS: dict[int, dict[str, float]] = {
    0: {
        "amplitude": 1.00,
        "upper_face": 1.00,
        "speed": 1.00,
        "blink": 1.00,
        "micro": 1.00,
        "lips_parted": 0.0,
    },
    1: {
        "amplitude": 0.92,
        "upper_face": 0.97,
        "speed": 0.90,
        "blink": 0.75,
        "micro": 0.90,
        "lips_parted": 0.0,
    },
    2: {
        "amplitude": 0.75,
        "upper_face": 0.90,
        "speed": 0.75,
        "blink": 0.65,
        "micro": 0.75,
        "lips_parted": 0.0,
    },
    3: {
        "amplitude": 0.60,
        "upper_face": 0.82,
        "speed": 0.62,
        "blink": 0.58,
        "micro": 0.60,
        "lips_parted": 0.4,
    },
    4: {
        "amplitude": 0.45,
        "upper_face": 0.75,
        "speed": 0.50,
        "blink": 0.50,
        "micro": 0.45,
        "lips_parted": 0.85,
    },
}


# Eyes-only disease (cue_region: eyes): upper lids lowered at rest per UPDRS 3.2 score, as AU45 (1 =
# shut). Fewer and slower blinks alone are too rare in 1-s clips for a 4-epoch CPU model to learn (the
# first eyes-only run stayed at chance); a resting lid position is visible in every frame and lies in
# the eye region only, as parted lips do for the mouth. Kept below 0.5, the blink-truth threshold.
LID_DROOP = (0.0, 0.08, 0.18, 0.27, 0.36)


def severity_effects(updrs: int) -> dict[str, float]:
    """Disease effects of one UPDRS 3.2 score (multipliers; lips_parted is a fraction of the time)."""
    return dict(SEVERITY_EFFECTS[int(updrs)])


def make_profile(
    rng: np.random.Generator,
    label: str,
    updrs: int,
    hoehn_yahr: float | None,
    cues: CueConfig,
    dynamic_only: bool,
    region: str = "face",
    speech_rate: bool | None = None,
) -> Profile:
    """Combine the disease effects (only for switched-on cues) with individual variation.

    ``region`` (PhantomConfig.cue_region) confines the disease to one facial region, whatever
    ``cues`` say: "eyes" = blink rate, blink duration and lids lowered at rest only; "mouth" = lower-face expression
    amplitude and lips parted at rest only. Everything else gets the control value, so a model
    can only find the label in that region (the region known answer of the explanations).
    ``speech_rate`` (the voice's rate cue) slows the syllables of speech; None follows the speed cue.
    """
    eff = severity_effects(updrs)
    on = {
        "amplitude": cues.amplitude and not dynamic_only,
        "speed": cues.speed,
        "blink": cues.blink and not dynamic_only,
        "micro": cues.micro,
        "static": cues.static and not dynamic_only,
    }
    if region != "face":
        on = dict.fromkeys(on, False) | (
            {"blink": True} if region == "eyes" else {"amplitude": True, "static": True}
        )
    expressivity = float(np.exp(rng.normal(0, 0.1)))  # people differ, independent of diagnosis
    own_speed = float(np.exp(rng.normal(0, 0.08)))
    mean, sd, lo, hi = BASE_BLINK_RATE
    own_blink = float(np.clip(rng.normal(mean, sd), lo, hi))
    if dynamic_only:
        # Same poses and amplitudes in both classes: only timing may differ.
        expressivity, own_speed = 1.0, 1.0
    amplitude = eff["amplitude"] if on["amplitude"] else 1.0
    upper_face = eff["upper_face"] if on["amplitude"] else 1.0
    if speech_rate is None:
        speech_rate = on["speed"]
    if region == "mouth":
        upper_face = 1.0 / amplitude  # the upper face (amplitude x upper_face) keeps the control value
    return Profile(
        label=label,
        updrs_3_2=updrs,
        hoehn_yahr=hoehn_yahr,
        amplitude=expressivity * amplitude,
        upper_face=upper_face,
        speed=own_speed * (eff["speed"] if on["speed"] else 1.0),
        blink_rate=own_blink * (eff["blink"] if on["blink"] else 1.0),
        # In dynamic-only data micro-movements keep their size; the speed cue slows them instead.
        micro=eff["micro"] if on["micro"] and not dynamic_only else 1.0,
        lips_parted=eff["lips_parted"] if on["static"] else 0.0,
        # Slower eyelid movement is part of the eyes-only disease (longer blinks in PD); elsewhere blinks
        # keep their healthy duration, as the natural phantom always had.
        blink_speed=eff["speed"] if region == "eyes" else 1.0,
        lid_droop=LID_DROOP[int(updrs)] if region == "eyes" else 0.0,
        speech_speed=own_speed * (eff["speed"] if speech_rate else 1.0),
    )
