"""Layer 5, training: seeded, CPU-feasible training scripts for the embedded models (one command each).

Imports models, scenes and the layers under them; never outputs, the benchmark or the app.
"""
