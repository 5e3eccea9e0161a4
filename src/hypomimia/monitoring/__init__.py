"""Monitoring: has the data a model sees moved away from what it was trained on, and how is a patient doing?

``window`` builds the reference and current tables (quality features, calibrated probabilities,
embeddings) from stage outputs or the serving prediction log; ``scoring`` runs a model over face
tubes; ``drift`` runs the Evidently reports; ``decision`` turns them into ok | warn | retrain;
``trigger`` writes and reads the retrain trigger (the ``hypomimia monitor`` command submits the
run); ``course`` follows a patient's score over sessions. See docs/monitoring.md.
"""
