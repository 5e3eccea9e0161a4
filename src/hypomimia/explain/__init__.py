"""Explanations: 3D Grad-CAM(++)/occlusion maps, attention per facial region, embeddings, rendering."""
