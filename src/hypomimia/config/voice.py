from pydantic import Field, model_validator

from hypomimia.config.base import Section


class VoiceConfig(Section):
    """Voice features (`hypomimia voice`; docs/voice.md). Every field but ``workers`` is part of the cache key."""

    sample_rate: int = Field(
        16000,
        ge=8000,
        le=48000,
        description="the audio is resampled to this rate (Hz) before analysis; formants up to "
        "formant_ceiling_hz need at least twice that",
    )
    max_seconds: float = Field(
        120.0, gt=0.0, le=3600.0, description="longer audio is cut: only the first max_seconds are analysed"
    )
    f0_min_hz: float = Field(
        75.0, ge=30.0, le=300.0, description="pitch floor (Hz): Praat's pitch, intensity and HNR windows"
    )
    f0_max_hz: float = Field(500.0, ge=100.0, le=1000.0, description="pitch ceiling (Hz)")
    vad_range_db: float = Field(
        30.0,
        gt=0.0,
        le=90.0,
        description="voice activity: a frame counts only within this many dB of the clip's loudest frame",
    )
    vad_floor_dbfs: float = Field(
        -55.0,
        ge=-120.0,
        le=0.0,
        description="voice activity: and only above this level (dB re digital full scale), so a silent "
        "clip's faint hiss is never voice",
    )
    vad_voicing: float = Field(
        0.45,
        gt=0.0,
        lt=1.0,
        description="voice activity: minimum normalised autocorrelation peak in the pitch range "
        "(periodicity; Praat's voicing threshold is the same idea, 0.45)",
    )
    vad_max_gap_s: float = Field(
        0.06, ge=0.0, le=1.0, description="voiced stretches closer than this are joined into one segment"
    )
    vad_min_segment_s: float = Field(
        0.05, ge=0.0, le=2.0, description="voiced segments shorter than this are dropped (clicks, blips)"
    )
    min_voiced_s: float = Field(
        0.5,
        ge=0.0,
        le=60.0,
        description="less voiced speech than this: the clip is 'no_voice' and has no measures "
        "(jitter and F0 SD need many periods)",
    )
    formant_ceiling_hz: float = Field(
        5500.0,
        ge=3000.0,
        le=8000.0,
        description="Praat Burg formant ceiling (5500 Hz suits women's and children's voices, 5000 men's)",
    )
    syllable_dip_db: float = Field(
        2.0,
        gt=0.0,
        le=20.0,
        description="speech rate: an intensity peak is a new syllable nucleus when the intensity dips "
        "at least this much between it and the last one (de Jong & Wempe 2009)",
    )
    egemaps: bool = Field(
        False,
        description="also compute the 88 eGeMAPS v02 functionals with openSMILE (columns egemaps_*); "
        "off by default: about 45 % more time for a value not measured yet, while the Praat measures "
        "name the known answers (docs/voice.md)",
    )
    workers: int = Field(
        2, ge=1, le=64, description="processes measuring clips in parallel; not part of the cache key"
    )

    @model_validator(mode="after")
    def _consistent(self) -> "VoiceConfig":
        if self.f0_min_hz >= self.f0_max_hz:
            raise ValueError(f"f0_min_hz {self.f0_min_hz} must be below f0_max_hz {self.f0_max_hz}")
        if self.formant_ceiling_hz > self.sample_rate / 2:
            raise ValueError(
                f"formant_ceiling_hz {self.formant_ceiling_hz} is above the Nyquist frequency of "
                f"sample_rate {self.sample_rate} (raise sample_rate or lower the ceiling)"
            )
        return self
