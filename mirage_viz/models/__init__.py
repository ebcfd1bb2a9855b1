"""Layer 2, models: the VAE, the warp-conditioned denoiser and inpainter, the depth estimators, hub loading, and the
protocols (:mod:`.protocols`) a new generator, codec or depth estimator implements.

Imports geometry and the base modules; never memories, the rollout, pictures or the app.
"""
