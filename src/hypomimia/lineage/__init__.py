"""Lineage for auditors: provenance of every artifact, the chain from a prediction back to the video
bytes, the model card, and the append-only audit log of registry actions (``audit``)."""
