"""The voice table's contract (docs/data-format.md §4), without the heavy imports: the stage, the
gate's expectations and later readers share these names."""

# Bump when a measure changes: it is in every row and in the cache key.
FEATURE_VERSION = "voice-3"  # 2: two-pass pitch (the speaker's own F0 range); 3: snr_db, hf_share_db
MEASURES = (
    "f0_mean_hz",
    "f0_sd_st",
    "intensity_db",
    "jitter_pct",
    "shimmer_pct",
    "hnr_db",
    "vowel_space_hz2",
    "speech_rate_syl_s",
)
# What the recording chain (microphone, room, gain) did to the sound, not the voice: drift monitoring
# compares them; a voice model must not learn them (they describe the device, not the speaker).
RECORDING = ("snr_db", "hf_share_db")
STATUSES = ("measured", "no_audio", "no_voice", "failed")
FAILURE_REASONS = ("unreadable_file", "unreadable_audio", "empty_audio", "voice_failed")
EGEMAPS_PREFIX = "egemaps_"
