"""The phantom's voice: each subject's own voice, what the disease does to it, and a formant synthesizer.

Speech follows the clip's timeline, so sound and face tell one story at one time: every
``syllable`` event (the one that opens jaw and lips) is one syllable, loudest and with its vowel
target where the mouth is most open; syllables back to back form a phrase, and the pauses
between phrases are silent. The lips choose the vowel (stretched: i-e-a, puckered: u-o) and the jaw
its openness. No timing is drawn here.

Synthesis is a source-filter model in numpy (a simplified Klatt cascade synthesizer):

- glottal source: KLGLOTT88 pulses (flow ``x**2 (1 - x)`` over the open phase; its time derivative,
  which includes lip radiation, drives the tract), cycle by cycle along the F0 contour, with jitter
  and shimmer; aspiration noise is added at the harmonics-to-noise ratio (HNR) asked for, measured
  after the tract (both parts go through the same linear filter);
- vocal tract: five formant resonators in cascade, their frequencies moving from a consonant locus
  to each syllable's vowel target and back; coefficients change every 2.5 ms;
- the speech is scaled to the intensity asked for (dB on Praat's scale: a sample value of 1 is 1 Pa,
  so 94 dB is an RMS of 1), a room-noise floor is added and the samples are rounded to int16.

Reproducibility: the int16 rounding is the grid snap. Everything before it is smooth in its inputs
(products, sums, IIR filters of fixed order), so a last-place difference in a CPU's ``exp`` or
``cos`` moves a sample by ~1e-12 of a quantisation step and flips one at odds of that order;
random draws are numpy's, keyed like every other phantom draw. The AAC encoder's own kernels are
pinned in ``hypomimia.data.video.write_mp4``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import sosfilt

from hypomimia.phantom.disease import Profile
from hypomimia.phantom.timeline import Event

# Speaking F0 by sex and age: women's voices fall ~0.5 Hz a year from 30, men's rise a little after 60.
F0_HZ = {"F": lambda age: 210.0 - 0.5 * max(age - 30, 0), "M": lambda age: 118.0 + 0.4 * max(age - 60, 0)}
F0_SD_HZ = {"F": 16.0, "M": 12.0}  # between people of one sex and age
TRACT = {"F": 1.0, "M": 0.85}  # formant scale (shorter vocal tract = higher formants); the table is women's
# Vowel targets F1-F3 in Hz (adult women, after Peterson & Barney 1952) and the neutral vowel of a
# uniform tube, which a centralised vowel space moves toward.
VOWELS = {"i": (310.0, 2790.0, 3310.0), "e": (610.0, 2330.0, 2990.0), "a": (850.0, 1220.0, 2810.0),
          "o": (590.0, 920.0, 2710.0), "u": (370.0, 950.0, 2670.0)}  # fmt: skip
NEUTRAL = (550.0, 1700.0, 2900.0)
UPPER_FORMANTS = (3900.0, 4700.0)  # F4, F5: voice colour, not vowel identity
BANDWIDTHS = (80.0, 110.0, 160.0, 250.0, 300.0)  # Hz, F1-F5
CONSONANT_F1 = 0.5  # F1 at a syllable's edges, as a fraction of the neutral F1 (a closing tract lowers F1)
PHRASE_FLOOR = 0.3  # voicing amplitude between a phrase's syllables (nasals, glides), of the syllable peak
PHRASE_GAP_S = 0.05  # syllables closer than this belong to one phrase
EDGE_S = 0.025  # fade at a phrase's start and end
BLOCK_S = 0.0025  # the formant filters' coefficients change this often
ACCENT_P = 0.4  # share of a phrase's syllables after the first that carry a pitch accent
DECLINATION = 0.6  # F0 falls across a phrase by this fraction of the accent height

# Disease effects on the voice per MDS-UPDRS 3.2 score (docs/phantom.md, "Voice"). Hypophonia: PD
# speech 2-4 dB quieter (Fox & Ramig 1997, Ho et al. 1999), more when severe; monopitch: F0 SD in
# semitones about halved (Rusz et al. 2011); a smaller vowel space (Skodda et al. 2011, Rusz et al.
# 2013: area 10-30% smaller); breathiness: a lower HNR. The syllable rate is the face's: Profile.speech_speed.
VOICE_EFFECTS: dict[int, dict[str, float]] = {
    0: {"loudness_db": 0.0, "f0_variability": 1.00, "centralisation": 0.00, "hnr_db": 0.0},
    1: {"loudness_db": -1.5, "f0_variability": 0.85, "centralisation": 0.05, "hnr_db": -1.5},
    2: {"loudness_db": -3.0, "f0_variability": 0.70, "centralisation": 0.10, "hnr_db": -3.0},
    3: {"loudness_db": -4.5, "f0_variability": 0.57, "centralisation": 0.15, "hnr_db": -4.5},
    4: {"loudness_db": -6.0, "f0_variability": 0.45, "centralisation": 0.20, "hnr_db": -6.0},
}
_CUE_OF = {"loudness_db": "loudness", "f0_variability": "monopitch", "centralisation": "vowel_space",
           "hnr_db": "breathiness"}  # fmt: skip


@dataclass(frozen=True)
class Voice:
    """How one subject sounds before the disease (drawn once per subject, like the face)."""

    sex: str
    age: int
    f0_hz: float  # speaking F0: the contour's level between accents
    accent_st: float  # height of a pitch accent in semitones (the size of the intonation)
    tract: float  # formant scale: 1 = the table's average woman
    open_quotient: float  # open share of a glottal cycle (higher: softer, breathier source)
    jitter_pct: float  # cycle-to-cycle period perturbation (local jitter)
    shimmer_pct: float  # cycle-to-cycle amplitude perturbation (local shimmer)
    level_db: float  # speech intensity
    hnr_db: float  # harmonics-to-noise ratio


@dataclass(frozen=True)
class VoiceEffects:
    """What the disease changes in one subject's voice (1.0 / 0 = unchanged)."""

    loudness_db: float
    f0_variability: float  # multiplier on pitch accents and declination
    centralisation: float  # fraction of the way from each vowel target to the neutral vowel
    hnr_db: float
    speech_speed: float  # the timeline's syllable-rate factor (rate ~ sqrt(speech_speed))


@dataclass
class Speech:
    """One clip's audio: int16 samples and the truth of every parameter that made them."""

    samples: np.ndarray  # int16, mono
    sample_rate: int
    truth: dict


def _snap(x: float, decimals: int = 4) -> float:
    return round(float(x), decimals) + 0.0


def draw_voice(rng: np.random.Generator, sex: str, age: int) -> Voice:
    """A voice for a person of ``sex`` and ``age``; values are snapped so the truth holds what was used."""
    return Voice(
        sex=sex,
        age=int(age),
        f0_hz=_snap(F0_HZ[sex](age) + rng.normal(0, F0_SD_HZ[sex]), 2),
        accent_st=_snap(5.5 * np.exp(rng.normal(0, 0.2)), 3),
        tract=_snap(TRACT[sex] * np.exp(rng.normal(0, 0.04)), 4),
        open_quotient=_snap(rng.uniform(0.5, 0.7), 3),
        jitter_pct=_snap(0.4 * np.exp(rng.normal(0, 0.3)), 3),
        shimmer_pct=_snap(2.5 * np.exp(rng.normal(0, 0.3)), 3),
        level_db=_snap(63.0 + rng.normal(0, 2.5), 2),
        hnr_db=_snap(17.0 + rng.normal(0, 2.0), 2),
    )


def voice_effects(profile: Profile, cues, on: bool = True) -> VoiceEffects:
    """The disease effects of ``profile``'s UPDRS 3.2 score for the switched-on voice cues (``cues``:
    VoiceCueConfig); ``on=False`` (a study whose label is not in the voice) switches every cue off."""
    eff = VOICE_EFFECTS[int(profile.updrs_3_2)]
    neutral = VOICE_EFFECTS[0]
    kept = {k: (v if on and getattr(cues, _CUE_OF[k]) else neutral[k]) for k, v in eff.items()}
    return VoiceEffects(**kept, speech_speed=_snap(profile.speech_speed, 6))


def _phrases(syllables: list[Event]) -> list[list[Event]]:
    phrases: list[list[Event]] = []
    for e in syllables:
        if phrases and e.start - phrases[-1][-1].end < PHRASE_GAP_S:
            phrases[-1].append(e)
        else:
            phrases.append([e])
    return phrases


def _vowel(e: Event, amplitude: float) -> tuple[str, tuple[float, float, float]]:
    """The vowel the mouth shapes: lips stretched (AU20) i-e-a or puckered (AU18) u-o, opener with the jaw.

    Openness comes from the jaw drop relative to the subject's expression amplitude, so it is drawn
    alike for both classes (a smaller PD movement does not make a different vowel)."""
    openness = float(np.clip((e.aus.get("au26", 0.0) / max(amplitude, 1e-6) - 0.2) / 0.35, 0.0, 1.0))
    if "au18" in e.aus:
        path, names = (VOWELS["u"], VOWELS["o"]), ("u", "o")
        k, w = 0, openness
    else:
        path, names = (VOWELS["i"], VOWELS["e"], VOWELS["a"]), ("i", "e", "a")
        k, w = (0, 2 * openness) if openness < 0.5 else (1, 2 * openness - 1)
    f = tuple(path[k][j] + w * (path[k + 1][j] - path[k][j]) for j in range(3))
    return names[k + int(w >= 0.5)], f


def _resonator_sos(freqs: np.ndarray, sample_rate: int) -> np.ndarray:
    """Klatt's digital resonators (unity gain at 0 Hz) as second-order sections: ``freqs`` (..., 5) Hz
    of F1-F5 -> (..., 5, 6)."""
    t = 1.0 / sample_rate
    bandwidths = np.array(BANDWIDTHS)
    c = -np.exp(-2 * np.pi * bandwidths * t) + np.zeros_like(freqs)
    b = 2 * np.exp(-np.pi * bandwidths * t) * np.cos(2 * np.pi * freqs * t)
    sos = np.zeros((*freqs.shape, 6))
    sos[..., 0], sos[..., 3], sos[..., 4], sos[..., 5] = 1.0 - b - c, 1.0, -b, -c
    return sos


def synthesize(
    voice: Voice,
    effects: VoiceEffects,
    events: list[Event],
    amplitude: float,
    duration: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> Speech:
    """One clip's speech on the syllables among ``events`` (``amplitude``: the profile's expression
    amplitude, which the vowels' openness is relative to). A clip without syllables is room tone."""
    sr = sample_rate
    n = int(round(duration * sr))
    t = np.arange(n) / sr
    gain_db = _snap(rng.normal(0, 1.5), 3)  # microphone distance and gain: one recording to the next
    noise_floor_db = _snap(rng.uniform(25.0, 35.0), 3)  # room and microphone
    syllables = sorted(
        (e for e in events if e.kind == "syllable" and e.start < duration), key=lambda e: e.start
    )
    phrases = _phrases(syllables)

    level_db = _snap(voice.level_db + effects.loudness_db + gain_db, 3)
    hnr_db = _snap(voice.hnr_db + effects.hnr_db, 3)
    accent = _snap(voice.accent_st * effects.f0_variability, 4)
    neutral = np.array(NEUTRAL) * voice.tract
    locus = np.array([CONSONANT_F1 * NEUTRAL[0], NEUTRAL[1], NEUTRAL[2]]) * voice.tract

    amp = np.zeros(n)  # voicing amplitude, 0 outside phrases
    formants = np.tile(np.concatenate([locus, np.array(UPPER_FORMANTS) * voice.tract]), (n, 1))
    semitones = np.full(n, 12 * np.log2(voice.f0_hz))  # F0 contour in semitones re 1 Hz
    syllable_truth, phrase_truth = [], []
    for phrase in phrases:
        p0, p1 = max(phrase[0].start, 0.0), min(phrase[-1].end, duration)
        i0, i1 = int(np.ceil(p0 * sr)), min(int(np.ceil(p1 * sr)), n)
        tp = t[i0:i1]
        fade = np.clip(np.minimum(tp - p0, p1 - tp) / EDGE_S, 0.0, 1.0)
        opening = np.zeros(i1 - i0)
        # The phrase's pitch: a declination line plus accents, each a rise and fall over its syllable.
        pitch = DECLINATION * accent * (0.5 - (tp - p0) / max(p1 - p0, 1e-6))
        for j, e in enumerate(phrase):
            env = e.envelope(tp)
            opening += env
            height = accent * rng.uniform(0.6, 1.0) if j == 0 or rng.random() < ACCENT_P else 0.0
            pitch += height * env
            vowel, target = _vowel(e, amplitude)
            target = neutral + (1 - effects.centralisation) * (np.array(target) * voice.tract - neutral)
            formants[i0:i1, :3] += env[:, None] * (target - locus)[None, :]
            syllable_truth.append({"onset": e.start, "nucleus": e.start + e.onset, "end": e.end, "vowel": vowel,
                                   "formants_hz": [_snap(f, 1) for f in target], "accent_st": _snap(height, 3)})  # fmt: skip
        amp[i0:i1] = fade * (PHRASE_FLOOR + (1 - PHRASE_FLOOR) * np.clip(opening, 0.0, 1.0))
        semitones[i0:i1] += pitch
        phrase_truth.append([p0, p1])

    voiced = amp > 0
    source, cycles = _glottal_source(voice, semitones, voiced, amp, sr, rng)
    aspiration = rng.standard_normal(n) * amp
    tract = _vocal_tract(np.stack([source, aspiration]), formants, sr)
    speech = np.zeros(n)
    if voiced.any():
        harmonic, noise = tract[0], tract[1]
        noise_gain = np.sqrt(
            np.mean(harmonic[voiced] ** 2) / (np.mean(noise[voiced] ** 2) * 10 ** (hnr_db / 10))
        )
        speech = harmonic + noise_gain * noise
        speech *= 2e-5 * 10 ** (level_db / 20) / np.sqrt(np.mean(speech[voiced] ** 2))
    room = rng.standard_normal(n) * 2e-5 * 10 ** (noise_floor_db / 20)
    pcm = np.round((speech + room) * 32768.0)
    clipped = int(np.count_nonzero(np.abs(pcm) > 32767))
    samples = np.clip(pcm, -32768, 32767).astype(np.int16)

    frames = np.arange(0, n, sr // 100)  # the contour every 10 ms, where voiced
    frames = frames[voiced[frames]]
    f0_st = semitones[frames]
    speaking = sum(p1 - p0 for p0, p1 in phrase_truth)
    truth = {
        "sample_rate": sr,
        "channels": 1,
        "samples": n,
        "voice": asdict(voice),
        "effects": asdict(effects),
        "gain_db": gain_db,
        "noise_floor_db": noise_floor_db,
        "peak": _snap(np.abs(samples).max() / 32768.0, 6),
        "clipped_samples": clipped,
        "speech": None,
    }
    if syllables:
        dispersion = [np.hypot(*(np.array(s["formants_hz"][:2]) - neutral[:2])) for s in syllable_truth]
        truth["speech"] = {
            "intensity_db": level_db,  # over the phrases, before the room noise (30+ dB lower)
            "hnr_db": hnr_db,
            "f0_mean_hz": _snap(np.mean(2 ** (f0_st / 12)), 3),
            "f0_sd_st": _snap(np.std(f0_st), 4),
            "accent_st": accent,
            "jitter_pct": voice.jitter_pct,
            "shimmer_pct": voice.shimmer_pct,
            "glottal_cycles": cycles,
            "syllables_per_s": _snap(len(syllables) / (phrase_truth[-1][1] - phrase_truth[0][0]), 4),
            "articulation_rate": _snap(len(syllables) / speaking, 4),  # syllables per second of phrase
            "vowel_centralisation": effects.centralisation,
            "vowel_dispersion_hz": _snap(np.mean(dispersion), 2),  # mean (F1, F2) distance from neutral
            "neutral_formants_hz": [_snap(f, 1) for f in neutral],
            "phrases": phrase_truth,
            "syllables": syllable_truth,
        }
    return Speech(samples, sr, truth)


def _glottal_source(voice: Voice, semitones, voiced, amp, sr: int, rng) -> tuple[np.ndarray, int]:
    """KLGLOTT88 flow-derivative pulses over the voiced stretches, cycle by cycle (jitter and shimmer
    perturb each cycle's period and amplitude), times the voicing amplitude."""
    n = len(semitones)
    source = np.zeros(n)
    # Local jitter/shimmer (mean absolute difference of consecutive cycles) of iid normal perturbations.
    jitter_sd = voice.jitter_pct / 100 * np.sqrt(np.pi) / 2
    shimmer_sd = voice.shimmer_pct / 100 * np.sqrt(np.pi) / 2
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    cycles = 0
    for i0, i1 in zip(edges[::2], edges[1::2], strict=True):
        starts, periods, gains = [], [], []
        s = i0 / sr
        while s < i1 / sr:
            period = (
                1.0
                / (2 ** (semitones[min(int(s * sr), n - 1)] / 12))
                * (1 + jitter_sd * rng.standard_normal())
            )
            starts.append(s)
            periods.append(period)
            gains.append(1 + shimmer_sd * rng.standard_normal())
            s += period
        cycles += len(starts)
        tt = np.arange(i0, i1) / sr
        k = np.searchsorted(np.array(starts), tt, side="right") - 1
        period, gain = np.array(periods)[k], np.array(gains)[k]
        x = (tt - np.array(starts)[k]) / (voice.open_quotient * period)
        pulse = np.where(x < 1.0, 2 * x - 3 * x**2, 0.0) / (voice.open_quotient * period)
        source[i0:i1] = gain * pulse
    return source * amp, cycles


def _vocal_tract(x: np.ndarray, formants: np.ndarray, sr: int) -> np.ndarray:
    """Filter the rows of ``x`` through the formant cascade, its frequencies updated every BLOCK_S."""
    n = x.shape[1]
    block = max(1, int(round(BLOCK_S * sr)))
    starts = np.arange(0, n, block)
    sos = _resonator_sos(formants[np.minimum(starts + block // 2, n - 1)], sr)
    out = np.empty_like(x)
    state = np.zeros((len(BANDWIDTHS), x.shape[0], 2))
    for k, i in enumerate(starts):
        out[:, i : i + block], state = sosfilt(sos[k], x[:, i : i + block], axis=-1, zi=state)
    return out
