"""Read the phantom's voice back like a recording and compare it with the truth sidecar.

The AAC track is decoded (PyAV) and measured with Praat (praat-parselmouth), not with anything the
synthesizer used: F0 (autocorrelation pitch, SD in semitones), intensity over the phrases, HNR
(cross-correlation harmonicity), F1/F2 at the syllable nuclei (Burg formants), syllable nuclei
(intensity peaks), and the lag at which the audio envelope best follows the mouth opening
(AU25 + AU26 of the timeline). ``python -m hypomimia.phantom.voice_readback data/phantom`` prints
every clip and the read-back figures of docs/phantom.md ("Voice").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import av
import numpy as np

ENVELOPE_HOP_S = 0.01
MAX_LAG_S = 0.25


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The first audio stream of ``path`` as mono float samples in [-1, 1], cut to the stream's duration
    (the decoder also returns the last AAC frame's padding)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate
        chunks = [f.to_ndarray().reshape(-1, f.samples).mean(axis=0) for f in container.decode(stream)]
        samples = np.concatenate(chunks).astype(np.float64)
        if stream.duration is not None and stream.time_base is not None:
            samples = samples[: int(round(float(stream.duration * stream.time_base) * sr))]
    return samples, sr


def _phrase_mask(times: np.ndarray, phrases: list) -> np.ndarray:
    mask = np.zeros(len(times), bool)
    for p0, p1 in phrases:
        mask |= (times >= p0) & (times <= p1)
    return mask


def praat_measures(samples: np.ndarray, sr: int, speech: dict) -> dict:
    """Praat's reading of one clip's speech; ``speech`` (the sidecar's ``audio.speech``) gives the
    phrases to measure over and the syllable nuclei. The pitch range is found from the sound itself,
    in two passes (Hirst 2011: 0.75 x first quartile to 1.5 x third quartile of a wide first pass):
    a fixed octave either side of the true mean let Praat halve the F0 of the breathiest voice
    (HNR 9 dB: F0 SD 2.60 read for 1.45 semitones)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(samples, sr)
    first = sound.to_pitch_ac(pitch_floor=60.0, pitch_ceiling=700.0).selected_array["frequency"]
    q1, q3 = np.percentile(first[first > 0], [25, 75])
    pitch = sound.to_pitch_ac(pitch_floor=0.75 * q1, pitch_ceiling=1.5 * q3)
    hz = pitch.selected_array["frequency"]
    f0 = float(np.median(hz[hz > 0]))
    voiced = hz > 0
    semitones = 12 * np.log2(hz[voiced])
    intensity = sound.to_intensity(minimum_pitch=100.0)
    in_phrase = _phrase_mask(intensity.xs(), speech["phrases"])
    db = intensity.values[0][in_phrase]
    harmonicity = sound.to_harmonicity_cc(minimum_pitch=f0 / 2)
    hnr = harmonicity.values[0][_phrase_mask(harmonicity.xs(), speech["phrases"])]
    formant = sound.to_formant_burg(
        max_number_of_formants=5, maximum_formant=5500.0 * speech["neutral_formants_hz"][1] / 1700.0
    )
    nuclei = [s["nucleus"] for s in speech["syllables"]]
    f12 = np.array(
        [[call(formant, "Get value at time", k, t, "hertz", "linear") for k in (1, 2)] for t in nuclei]
    )
    neutral = np.array(speech["neutral_formants_hz"][:2])
    return {
        "f0_mean_hz": float(np.mean(hz[voiced])),
        "f0_sd_st": float(np.std(semitones)),
        "voiced_share": float(voiced.mean()),
        "intensity_db": float(10 * np.log10(np.mean(10 ** (db / 10)))),  # energy mean, as Praat's "Get mean"
        "hnr_db": float(np.mean(hnr[hnr > -100])),  # Praat marks unvoiced frames -200 dB
        "formants_hz": f12.tolist(),
        "vowel_dispersion_hz": float(np.nanmean(np.hypot(*(f12 - neutral).T))),
        "syllable_nuclei": count_syllable_nuclei(intensity, speech["phrases"]),
    }


def count_syllable_nuclei(intensity, phrases: list, dip_db: float = 2.0) -> int:
    """Intensity peaks inside the phrases, each separated from the previous by a dip of ``dip_db`` or more
    (the idea of de Jong & Wempe 2009, without their voicing check)."""
    times, db = intensity.xs(), intensity.values[0]
    count = 0
    for p0, p1 in phrases:
        seg = db[(times >= p0) & (times <= p1)]
        peak, low, rising = -np.inf, np.inf, True
        for v in seg:
            if rising:
                if v > peak:
                    peak = v
                elif v < peak - dip_db:
                    count, rising, low = count + 1, False, v
            else:
                if v < low:
                    low = v
                elif v > low + dip_db:
                    rising, peak = True, v
        count += rising and peak > -np.inf
    return count


def mouth_opening(truth: dict) -> np.ndarray:
    """Per video frame: lips apart plus jaw drop (AU25 + AU26) from the sidecar's timeline."""
    return np.asarray(truth["au"]["au25"]) + np.asarray(truth["au"]["au26"])


def envelope_lag(samples: np.ndarray, sr: int, opening: np.ndarray, fps: float) -> float:
    """Seconds by which the audio envelope lags the mouth opening at their cross-correlation peak
    (negative: the sound leads). Both are resampled to a 10 ms grid; the opening is interpolated
    between frames (frame i is shown at i / fps)."""
    hop = int(round(ENVELOPE_HOP_S * sr))
    n = len(samples) // hop
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop) ** 2, axis=1))
    grid = (np.arange(n) + 0.5) * ENVELOPE_HOP_S
    mouth = np.interp(grid, np.arange(len(opening)) / fps, opening)
    a, b = rms - rms.mean(), mouth - mouth.mean()
    max_lag = int(round(MAX_LAG_S / ENVELOPE_HOP_S))
    lags = np.arange(-max_lag, max_lag + 1)
    corr = [np.sum(a[max(k, 0) : n + min(k, 0)] * b[max(-k, 0) : n - max(k, 0)]) for k in lags]
    return float(lags[int(np.argmax(corr))] * ENVELOPE_HOP_S)


def read_back(video: str | Path, truth: dict) -> dict:
    """Praat's measures of one clip, the sidecar's values next to them, and the envelope lag."""
    samples, sr = read_audio(video)
    speech = truth["audio"]["speech"]
    measured = praat_measures(samples, sr, speech)
    measured["envelope_lag_s"] = envelope_lag(samples, sr, mouth_opening(truth), truth["fps"])
    return {
        "video_id": truth["video_id"],
        "label": truth["profile"]["label"],
        "measured": measured,
        "truth": speech,
    }


def _class_separation(rows: list[dict]) -> None:
    """Per measure: PD and control means and the AUROC of "PD is lower" (every voice cue lowers its measure)."""
    pd = [r for r in rows if r["label"] == "pd"]
    control = [r for r in rows if r["label"] == "control"]
    if not pd or not control:
        return

    def value(r: dict, key: str) -> float:
        if key == "articulation_rate":  # syllables heard per second of phrase
            return r["measured"]["syllable_nuclei"] / sum(p1 - p0 for p0, p1 in r["truth"]["phrases"])
        return r["measured"][key]

    for key in ("intensity_db", "f0_sd_st", "hnr_db", "vowel_dispersion_hz", "articulation_rate"):
        a, b = np.array([value(r, key) for r in pd]), np.array([value(r, key) for r in control])
        auroc = np.mean(a[:, None] < b[None, :]) + 0.5 * np.mean(a[:, None] == b[None, :])
        print(
            f"{key}: PD {a.mean():.2f} (n={len(a)}), control {b.mean():.2f} (n={len(b)}), AUROC(PD lower) {auroc:.2f}"
        )


def main(folder: str) -> None:
    rows = []
    for path in sorted(Path(folder, "truth").glob("*.json")):
        truth = json.loads(path.read_text())
        if (truth.get("audio") or {}).get("speech"):
            rows.append(read_back(Path(folder, "videos", f"{truth['video_id']}.mp4"), truth))
    for r in rows:
        m, t = r["measured"], r["truth"]
        print(f"{r['video_id']}  F0 SD {t['f0_sd_st']:.2f} -> {m['f0_sd_st']:.2f} st  intensity {t['intensity_db']:.1f} -> "
              f"{m['intensity_db']:.1f} dB  HNR {t['hnr_db']:.1f} -> {m['hnr_db']:.1f} dB  syllables "
              f"{len(t['syllables'])} -> {m['syllable_nuclei']}  lag {m['envelope_lag_s'] * 1000:.0f} ms")  # fmt: skip
    f0 = np.array([r["measured"]["f0_sd_st"] / r["truth"]["f0_sd_st"] - 1 for r in rows])
    di = np.array([r["measured"]["intensity_db"] - r["truth"]["intensity_db"] for r in rows])
    lag = np.array([r["measured"]["envelope_lag_s"] for r in rows])
    print(f"{len(rows)} clips: F0 SD error median {np.median(np.abs(f0)):.1%}, max {np.abs(f0).max():.1%}; "
          f"intensity error mean {di.mean():+.2f} dB, max |{np.abs(di).max():.2f}| dB; "
          f"envelope lag max |{np.abs(lag).max() * 1000:.0f}| ms")  # fmt: skip
    _class_separation(rows)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/phantom")
