"""Layer 3, scenes: synthetic worlds, camera trajectories, photos as first frames, synthetic training views.

Imports geometry and the base modules (inputs, checks); never the rollout, pictures or the app.
"""
