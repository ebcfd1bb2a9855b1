"""Layer 5, pictures: PCA colours, plotly figures, the step view and the report page, pure functions of a rollout.

Imports the rollout and the layers under it; never outputs or the app.
"""
