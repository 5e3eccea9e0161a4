from typing import Literal

from pydantic import Field, model_validator

from hypomimia.config.base import Section

Task = Literal["rest", "smile", "speech", "mimic"]
CueRegion = Literal["face", "eyes", "mouth"]


class CueConfig(Section):
    """Which cues differ between PD and controls (see docs/phantom.md). Off = PD gets the control value."""

    amplitude: bool = Field(True, description="expression amplitude scaled down with UPDRS 3.2")
    speed: bool = Field(True, description="onset/offset and all movement slowed down with UPDRS 3.2")
    blink: bool = Field(True, description="spontaneous blink rate lowered with UPDRS 3.2")
    micro: bool = Field(True, description="continuous micro-movements damped with UPDRS 3.2")
    static: bool = Field(False, description="still-frame cue: lips parted at rest at UPDRS 3-4")


class VoiceCueConfig(Section):
    """Which voice cues differ between PD and controls (docs/phantom.md, "Voice"). Off = PD gets the control value."""

    loudness: bool = Field(True, description="hypophonia: speech intensity lowered with UPDRS 3.2 (dB)")
    monopitch: bool = Field(True, description="pitch movements (F0 SD in semitones) reduced with UPDRS 3.2")
    vowel_space: bool = Field(
        True, description="vowel formants pulled toward the neutral vowel with UPDRS 3.2"
    )
    breathiness: bool = Field(True, description="more aspiration noise (lower HNR) with UPDRS 3.2")
    rate: bool = Field(
        True,
        description="syllable rate slowed with UPDRS 3.2; the timing is shared with the lips, so it shows "
        "in the speech clips' video too",
    )


class VoiceConfig(Section):
    """The phantom's voice: which clips get an audio track, how it is encoded, which cues it carries."""

    tasks: list[Task] = Field(
        default_factory=lambda: ["speech"],
        description="clips of these tasks get an audio track (speech; other tasks record room tone only); "
        "[] = a silent phantom",
    )
    sample_rate: Literal[16000, 22050, 24000, 44100, 48000] = Field(16000, description="Hz, mono")
    bitrate_kbps: int = Field(48, ge=16, le=256, description="AAC bit rate")
    cues: VoiceCueConfig = VoiceCueConfig()


class PhantomConfig(Section):
    subjects: int = Field(32, ge=2, le=2000, description="number of subjects, matched PD/control pairs")
    videos_per_subject: int = Field(6, ge=1, le=100, description="clips per subject, cycling through tasks")
    seed: int = Field(0, ge=0, description="same seed and config -> byte-identical files")
    fps: Literal[25, 30] = 25
    size: int = Field(320, ge=256, le=480, description="square frame side in pixels")
    duration_s: float = Field(4.0, ge=3.0, le=10.0, description="clip length in seconds")
    tasks: list[Task] = Field(default_factory=lambda: ["rest", "smile", "speech", "mimic"], min_length=1)
    cues: CueConfig = CueConfig()
    dynamic_only: bool = Field(
        False,
        description="match per-frame facial configurations between classes; only timing (speed) differs",
    )
    cue_region: CueRegion = Field(
        "face",
        description="where the disease shows: face = every cue as configured; eyes = only blinks differ "
        "(rate and duration); mouth = only the lower face differs (expression amplitude, lips parted at "
        "rest). The region known answer of explain (docs/explain.md)",
    )
    audio_only: bool = Field(
        False,
        description="only the voice differs: PD i and control i are identical twins whose videos are "
        "byte-identical (no facial cue) and whose voices differ by the disease alone",
    )
    video_only: bool = Field(
        False,
        description="only the face differs: PD i and control i share one voice, without any voice cue "
        "(the syllable rate included)",
    )
    voice: VoiceConfig = VoiceConfig()
    pd_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of PD subjects")
    crf: int = Field(20, ge=0, le=45, description="x264 constant rate factor (each camera adds -2..+4)")
    workers: int = Field(2, ge=1, le=64, description="processes; does not change the output")

    @model_validator(mode="after")
    def _one_kind_of_known_answer(self):
        chosen = [name for name, on in (("dynamic_only", self.dynamic_only), ("audio_only", self.audio_only),
                  ("video_only", self.video_only), ("cue_region", self.cue_region != "face")) if on]  # fmt: skip
        if len(chosen) > 1:
            raise ValueError(
                f"{' and '.join(chosen)} are separate known answers: choose one "
                "(cue_region: face is the natural setting)"
            )
        if self.audio_only and not set(self.voice.tasks) & set(self.tasks):
            raise ValueError(
                "audio_only puts the label in the voice alone, but no clip gets an audio track: "
                "add one of tasks to voice.tasks"
            )
        return self

    @property
    def shared_voices(self) -> bool:
        """PD i and control i share one voice (before the disease): the audio-only and video-only studies."""
        return self.audio_only or self.video_only
