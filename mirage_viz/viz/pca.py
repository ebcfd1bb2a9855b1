"""PCA colours for latent features: one basis per rollout, so colours stay put from step to step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["PCABasis", "fit_pca"]


@dataclass(frozen=True)
class PCABasis:
    """Projects C-dim features on 3 principal axes and maps them to RGB in [0, 1]."""

    mean: torch.Tensor  # (C,)
    components: torch.Tensor  # (3, C) rows: principal axes, largest variance first
    low: torch.Tensor  # (3,) 2nd percentile of the projections on the fitted features
    high: torch.Tensor  # (3,) 98th percentile

    def colors(self, features: torch.Tensor) -> torch.Tensor:
        """features (N, C) -> colours (N, 3) in [0, 1]."""
        projected = (features.float() - self.mean) @ self.components.T  # [N, 3]
        return ((projected - self.low) / (self.high - self.low).clamp_min(1e-8)).clamp(0, 1)

    def image(self, latent: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """latent (C, h, w) -> (3, h, w) colours; cells outside ``mask`` (h, w) are black."""
        channels, height, width = latent.shape
        colors = self.colors(latent.reshape(channels, -1).T).T.reshape(3, height, width)
        return colors if mask is None else colors * mask[None].to(colors.dtype)


def fit_pca(features: torch.Tensor) -> PCABasis:
    """Fit on features (N, C), N >= 1. Fewer than 3 channels are padded with zero axes."""
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"fit_pca needs features of shape (N, C) with N >= 1, got {tuple(features.shape)}")
    features = features.float()
    mean = features.mean(dim=0)
    centred = features - mean
    covariance = centred.T @ centred / max(1, features.shape[0] - 1)  # [C, C]
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
    components = eigenvectors.flip(-1).T[:3]  # [min(3, C), C]
    # A sign convention, so the same data always gives the same colours.
    signs = torch.sign(components[torch.arange(components.shape[0]), components.abs().argmax(dim=1)])
    components = components * signs[:, None]
    if components.shape[0] < 3:
        components = torch.cat([components, torch.zeros(3 - components.shape[0], features.shape[1])])
    projected = centred @ components.T
    low, high = torch.quantile(projected, 0.02, dim=0), torch.quantile(projected, 0.98, dim=0)
    return PCABasis(mean=mean, components=components, low=low, high=high)
