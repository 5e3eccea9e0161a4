"""The phantom: synthetic face videos with a known answer (see docs/phantom.md).

Real photos shipped inside installed packages are animated by landmark displacement fields
(action units), so that every stage handles them exactly like real face video, while the
parameters that generated them (diagnosis, MDS-UPDRS 3.2, expression timeline, blinks) are known.
"""
