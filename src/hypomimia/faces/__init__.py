"""Faces in video: FaceMesh landmark geometry (``landmarks``), detection + tracking + alignment
(``track``), one video into one face tube (``tube``), and the tube's quality metrics (``quality``)."""
