"""The voice measures of one clip, on its voiced segments only (docs/voice.md says why each matters).

Praat (through parselmouth) measures the waveform on its own frames; a frame counts when its time
falls inside a voiced segment of :mod:`hypomimia.voice.activity`:

| measure | how | PD sign |
|---|---|---|
| ``f0_mean_hz`` | mean of Praat's autocorrelation pitch (two passes: the speaker's own range) | (sex, age) |
| ``f0_sd_st`` | SD of the pitch in semitones re its mean | monopitch: lower |
| ``intensity_db`` | Praat intensity (dB re 2e-5, sample value 1 = 1 Pa), energy mean | hypophonia: lower |
| ``jitter_pct`` | Praat jitter (local), period-to-period, % | higher |
| ``shimmer_pct`` | Praat shimmer (local), amplitude, % | higher |
| ``hnr_db`` | mean harmonics-to-noise ratio (Praat cc harmonicity) | breathiness: lower |
| ``vowel_space_hz2`` | articulatory-acoustic vowel space: sqrt(det cov(F1, F2)) over voiced frames, Hz^2 (Whitfield & Goberman 2014) | centralised: smaller |
| ``speech_rate_syl_s`` | syllable nuclei (intensity peaks with a dip before them, voiced) per second of speaking span (de Jong & Wempe 2009) | altered |

Optional: the 88 eGeMAPS v02 functionals (openSMILE) on the speaking span (first voiced onset to
last offset: its pause and rate functionals need the pauses). Every number is snapped to a grid
before it is written, so the same audio gives the same bytes on any CPU.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import numpy as np

from hypomimia.config.voice import VoiceConfig
from hypomimia.voice.activity import Activity
from hypomimia.voice.audio import snap
from hypomimia.voice.schema import EGEMAPS_PREFIX, MEASURES

MEASURE_GRID = 4096.0  # 1/4096 of a unit: finer than any measure's precision
EGEMAPS_GRID = 2.0**20  # eGeMAPS holds small slopes and ratios (1e-3): a finer grid
TIME_STEP_S = 0.01
_UNVOICED_HNR = -200.0  # Praat's value of a harmonicity frame without periodicity
_MIN_FORMANT_FRAMES = 10
_MIN_PITCH_FRAMES = 10  # 0.1 s of voiced pitch: enough quartiles to fit the speaker's range
_SILENCE_BELOW_PEAK_DB = 25.0  # de Jong & Wempe's silence threshold re the 99th percentile


def in_segments(times: np.ndarray, segments: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Which ``times`` fall inside one of the (sorted, disjoint) segments."""
    times = np.asarray(times, np.float64)
    if not segments:
        return np.zeros(times.shape, bool)
    starts = np.array([a for a, _ in segments])
    ends = np.array([b for _, b in segments])
    i = np.searchsorted(starts, times, side="right") - 1
    return (i >= 0) & (times <= ends[np.clip(i, 0, None)])


def praat_measures(
    samples: np.ndarray, sample_rate: int, activity: Activity, cfg: VoiceConfig
) -> dict[str, Any]:
    """The measures of :data:`MEASURES` (None where undefined, e.g. too few voiced periods), snapped."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(samples, np.float64), sampling_frequency=sample_rate)
    segments = activity.segments
    pitch, intensity, cheap = pitch_and_intensity(sound, segments, cfg)
    out: dict[str, Any] = dict.fromkeys(MEASURES) | cheap
    level = intensity.values[0]

    points = call([sound, pitch], "To PointProcess (cc)")
    for a, b in _gaps(segments, sound.duration):  # periods only inside voiced speech
        call(points, "Remove points between", a, b)
    out["jitter_pct"] = _percent(call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3))
    out["shimmer_pct"] = _percent(call([sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6))

    harmonicity = sound.to_harmonicity_cc(
        time_step=TIME_STEP_S, minimum_pitch=cfg.f0_min_hz, silence_threshold=0.1, periods_per_window=1.0
    )
    hnr = harmonicity.values[0]
    hnr = hnr[in_segments(harmonicity.xs(), segments) & (hnr != _UNVOICED_HNR)]
    if len(hnr):
        out["hnr_db"] = float(np.mean(hnr))

    out["vowel_space_hz2"] = _vowel_space(sound, segments, cfg)
    out["speech_rate_syl_s"] = _speech_rate(
        level, intensity.xs(), f0_frames(pitch), activity, cfg.syllable_dip_db
    )
    return {k: snapped(v, MEASURE_GRID) for k, v in out.items()}


def pitch_and_intensity(
    sound: Any, segments: tuple[tuple[float, float], ...], cfg: VoiceConfig
) -> tuple[Any, Any, dict[str, float | None]]:
    """Praat's pitch (:func:`speaker_pitch`) and intensity of a clip, and the three measures they give
    on the voiced segments: ``f0_mean_hz``, ``f0_sd_st``, ``intensity_db`` (None where undefined,
    not snapped). The cheap part of :func:`praat_measures` (a tenth of its time): what the endpoint
    logs for drift monitoring (:func:`hypomimia.voice.clip.listen`)."""
    pitch = speaker_pitch(sound, segments, cfg)
    f0 = pitch.selected_array["frequency"]
    f0 = f0[in_segments(pitch.xs(), segments) & (f0 > 0)]
    out: dict[str, float | None] = {"f0_mean_hz": None, "f0_sd_st": None, "intensity_db": None}
    if len(f0) >= 2:
        out["f0_mean_hz"] = float(np.mean(f0))
        out["f0_sd_st"] = float(np.std(12.0 * np.log2(f0 / np.mean(f0))))

    intensity = sound.to_intensity(minimum_pitch=cfg.f0_min_hz, time_step=TIME_STEP_S, subtract_mean=True)
    level = intensity.values[0]
    voiced_level = level[in_segments(intensity.xs(), segments)]
    if len(voiced_level):
        out["intensity_db"] = float(10.0 * np.log10(np.mean(10.0 ** (voiced_level / 10.0))))
    return pitch, intensity, out


def speaker_pitch(sound: Any, segments: tuple[tuple[float, float], ...], cfg: VoiceConfig) -> Any:
    """Praat's autocorrelation pitch in two passes (Hirst 2011): the configured range first, then the
    speaker's own, 0.75 x the first quartile to 1.5 x the third quartile of the voiced F0. A fixed
    75-500 Hz range let Praat halve a breathy 190 Hz voice on a few frames, and those octave jumps
    raised its F0 SD by 70 % (phantom, HNR 9 dB)."""
    first = sound.to_pitch_ac(time_step=TIME_STEP_S, pitch_floor=cfg.f0_min_hz, pitch_ceiling=cfg.f0_max_hz)
    f0 = first.selected_array["frequency"]
    f0 = f0[in_segments(first.xs(), segments) & (f0 > 0)]
    if len(f0) < _MIN_PITCH_FRAMES:
        return first
    q1, q3 = np.percentile(f0, [25, 75])
    floor, ceiling = max(cfg.f0_min_hz, 0.75 * q1), min(cfg.f0_max_hz, 1.5 * q3)
    if ceiling <= floor:
        return first
    return sound.to_pitch_ac(time_step=TIME_STEP_S, pitch_floor=floor, pitch_ceiling=ceiling)


def f0_frames(pitch: Any) -> tuple[np.ndarray, np.ndarray]:
    """(times, F0 in Hz, 0 where unvoiced) of a Praat pitch object."""
    return pitch.xs(), pitch.selected_array["frequency"]


def _gaps(segments: tuple[tuple[float, float], ...], duration: float) -> list[tuple[float, float]]:
    bounds = [0.0, *(t for seg in segments for t in seg), duration]
    return [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=True) if b > a]


def _percent(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else 100.0 * float(value)


def _vowel_space(sound: Any, segments: tuple[tuple[float, float], ...], cfg: VoiceConfig) -> float | None:
    """sqrt(det cov(F1, F2)) over voiced frames, both formants inside their 5-95 % range (a stray
    formant jump at a segment edge must not inflate the area)."""
    from parselmouth.praat import call

    formant = sound.to_formant_burg(
        time_step=TIME_STEP_S,
        max_number_of_formants=5,
        maximum_formant=cfg.formant_ceiling_hz,
        window_length=0.025,
        pre_emphasis_from=50.0,
    )
    keep = in_segments(formant.xs(), segments)
    f1 = call(formant, "To Matrix", 1).values[0][keep]
    f2 = call(formant, "To Matrix", 2).values[0][keep]
    ok = np.isfinite(f1) & np.isfinite(f2) & (f1 > 0) & (f2 > 0)
    f1, f2 = f1[ok], f2[ok]
    if len(f1) < _MIN_FORMANT_FRAMES:
        return None
    lo1, hi1, lo2, hi2 = *np.percentile(f1, [5, 95]), *np.percentile(f2, [5, 95])
    core = (f1 >= lo1) & (f1 <= hi1) & (f2 >= lo2) & (f2 <= hi2)
    if core.sum() < _MIN_FORMANT_FRAMES:
        return None
    det = float(np.linalg.det(np.cov(np.vstack([f1[core], f2[core]]))))
    return math.sqrt(max(det, 0.0))


def syllable_nuclei(
    level: np.ndarray, times: np.ndarray, f0: tuple[np.ndarray, np.ndarray], activity: Activity, dip_db: float
) -> list[float]:
    """Times of syllable nuclei: intensity peaks above the silence threshold (the 99th percentile
    minus 25 dB), voiced, and each separated from the previous nucleus by a dip of ``dip_db``
    (de Jong & Wempe 2009; of two peaks without a dip between them the higher one stays)."""
    if len(level) < 3:
        return []
    threshold = np.percentile(level, 99) - _SILENCE_BELOW_PEAK_DB
    f0_times, f0_hz = f0
    voiced_pitch = np.interp(times, f0_times, (f0_hz > 0).astype(float), left=0, right=0) > 0.5
    peak = (level[1:-1] > level[:-2]) & (level[1:-1] >= level[2:])
    candidates = np.flatnonzero(peak) + 1
    candidates = candidates[
        (level[candidates] >= threshold)
        & in_segments(times[candidates], activity.segments)
        & voiced_pitch[candidates]
    ]
    nuclei: list[int] = []
    for c in candidates:
        if not nuclei:
            nuclei.append(int(c))
            continue
        last = nuclei[-1]
        dip = level[last : c + 1].min()
        if level[last] - dip >= dip_db and level[c] - dip >= dip_db:
            nuclei.append(int(c))
        elif level[c] > level[last]:
            nuclei[-1] = int(c)
    return [float(times[i]) for i in nuclei]


def _speech_rate(level, times, f0, activity: Activity, dip_db: float) -> float | None:
    """Syllable nuclei per second of the speaking span (pauses count: a halting speaker is slower)."""
    span = activity.span
    if span is None or span[1] <= span[0]:
        return None
    return len(syllable_nuclei(level, times, f0, activity, dip_db)) / (span[1] - span[0])


def snapped(value: float | None, grid: float) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(snap(value, grid))


# -- eGeMAPS (openSMILE) -------------------------------------------------------------------------
_SMILE: Any = None


@contextlib.contextmanager
def _pyyaml_untouched():
    """openSMILE imports audformat, which imports oyaml, which re-registers PyYAML's dict representer for the
    whole process (insertion order instead of sorted keys). KFP's compiler then writes other bytes: the
    checked-in pipeline packages stopped matching in any process that had measured eGeMAPS. Put it back."""
    import yaml

    saved = {d: dict(d.yaml_representers) for d in (yaml.Dumper, yaml.SafeDumper)}
    try:
        yield
    finally:
        for dumper, representers in saved.items():
            dumper.yaml_representers = representers


def _smile() -> Any:
    """One openSMILE extractor per process: building it costs about a second."""
    global _SMILE
    if _SMILE is None:
        with _pyyaml_untouched():
            import opensmile

        _SMILE = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
        )
    return _SMILE


def egemaps_names() -> list[str]:
    """The 88 eGeMAPS v02 functional column names, prefixed ``egemaps_``, in openSMILE's order."""
    return [EGEMAPS_PREFIX + n for n in _smile().feature_names]


def egemaps_functionals(samples: np.ndarray, sample_rate: int, activity: Activity) -> dict[str, float | None]:
    """eGeMAPS v02 functionals of the speaking span, snapped; all None when there is no voiced speech."""
    names = egemaps_names()
    span = activity.span
    if span is None:
        return dict.fromkeys(names)
    a, b = int(span[0] * sample_rate), int(math.ceil(span[1] * sample_rate))
    row = _smile().process_signal(np.asarray(samples[a:b], np.float32), sample_rate).iloc[0]
    return {EGEMAPS_PREFIX + k: snapped(float(v), EGEMAPS_GRID) for k, v in row.items()}


def measure(samples: np.ndarray, sample_rate: int, activity: Activity, cfg: VoiceConfig) -> dict[str, Any]:
    """Praat measures (and eGeMAPS when ``cfg.egemaps``) plus their seconds (``praat_s``, ``egemaps_s``)."""
    t0 = time.perf_counter()
    out = praat_measures(samples, sample_rate, activity, cfg)
    out["praat_s"] = time.perf_counter() - t0
    if cfg.egemaps:
        t1 = time.perf_counter()
        out |= egemaps_functionals(samples, sample_rate, activity)
        out["egemaps_s"] = time.perf_counter() - t1
    return out
