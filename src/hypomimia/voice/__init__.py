"""The voice in a video: decode its audio, find the voiced speech, measure it (docs/voice.md)."""
