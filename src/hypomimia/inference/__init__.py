"""Inference on new videos, shared by the endpoint and batch scoring: the same face-tube path as
training, calibrated probabilities with an abstain band, and the prediction log (``prediction_log``)."""
