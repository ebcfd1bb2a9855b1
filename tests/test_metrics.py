"""The image measures: sharpness as gradient energy (the bench's and the VAE training's), PSNR."""

import math

import torch
import torch.nn.functional as F

from mirage_viz.metrics import gradient_energy, psnr


def test_gradient_energy_is_the_mean_squared_step_and_falls_with_blur():
    edge = torch.zeros(3, 16, 16)
    edge[:, :, 8:] = 1.0  # one vertical step edge: 16 of the 16 x 15 horizontal differences are 1 per channel
    assert math.isclose(gradient_energy(edge), 16 / (16 * 15), rel_tol=1e-6)
    blurred = F.avg_pool2d(edge[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    assert gradient_energy(blurred) < 0.5 * gradient_energy(edge)
    assert gradient_energy(torch.stack([edge, edge])) == gradient_energy(edge)  # a batch (B, 3, H, W) averages
    assert gradient_energy(torch.full((3, 8, 8), 0.5)) == 1e-12  # flat: floored, so a ratio never divides by 0


def test_psnr_of_a_known_error():
    image = torch.zeros(3, 8, 8)
    assert math.isclose(psnr(image + 0.1, image), 20.0, rel_tol=1e-5)
    assert psnr(image, image) == float("inf")


def test_the_sharpness_ceiling_blur_keeps_flat_images_and_loses_energy_with_sigma(load_script):
    """scripts/sharpness_ceiling.py's Gaussian blur: a flat image stays flat (edges replicated, taps sum to 1), a step
    edge keeps less gradient energy the wider the blur."""
    blur = load_script("sharpness_ceiling").gaussian_blur
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(blur(flat, 1.0), flat, atol=1e-6)
    edge = torch.zeros(1, 3, 16, 16)
    edge[..., 8:] = 1.0
    energies = [gradient_energy(blur(edge, sigma)) for sigma in (0.5, 1.0, 2.0)]
    assert gradient_energy(edge) > energies[0] > energies[1] > energies[2]
