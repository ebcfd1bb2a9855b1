"""The image measures: sharpness as gradient energy (the bench's and the VAE training's) and as mean absolute gradient
(the measure issue 15's figures were taken in), PSNR."""

import math

import pytest
import torch
import torch.nn.functional as F

from mirage_viz.image import gaussian_blur
from mirage_viz.metrics import SHARPNESS_MEASURES, gradient_energy, gradient_length, gradient_mean_abs, psnr, sharpness_ratios, ssim


def test_gradient_energy_is_the_mean_squared_step_and_falls_with_blur():
    edge = torch.zeros(3, 16, 16)
    edge[:, :, 8:] = 1.0  # one vertical step edge: 16 of the 16 x 15 horizontal differences are 1 per channel
    assert math.isclose(gradient_energy(edge), 16 / (16 * 15), rel_tol=1e-6)
    blurred = F.avg_pool2d(edge[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    assert gradient_energy(blurred) < 0.5 * gradient_energy(edge)
    assert gradient_energy(torch.stack([edge, edge])) == gradient_energy(edge)  # a batch (B, 3, H, W) averages
    assert gradient_energy(torch.full((3, 8, 8), 0.5)) == 1e-12  # flat: floored, so a ratio never divides by 0


def test_mean_abs_gradient_keeps_a_blurred_edge_and_falls_with_missing_contrast():
    """The measure issue 15's figures were taken in: a monotone blur keeps each row's summed steps (the energy halves),
    half the contrast (content fading to fog) halves it."""
    edge = torch.zeros(3, 16, 16)
    edge[:, :, 8:] = 1.0
    assert math.isclose(gradient_mean_abs(edge), 16 / (16 * 15), rel_tol=1e-6)  # x: 16 unit steps; y: none
    blurred = F.avg_pool2d(edge[None], 3, stride=1, padding=1, count_include_pad=False)[0]
    assert math.isclose(gradient_mean_abs(blurred), gradient_mean_abs(edge), rel_tol=1e-6)
    assert gradient_energy(blurred) < 0.5 * gradient_energy(edge)
    assert math.isclose(gradient_mean_abs(0.5 + 0.5 * (edge - 0.5)), 0.5 * gradient_mean_abs(edge), rel_tol=1e-6)
    assert gradient_mean_abs(torch.full((2, 3, 8, 8), 0.5)) == 1e-12  # flat: floored, so a ratio never divides by 0


def test_gradient_length_counts_a_diagonal_step_once():
    """The length of each pixel's (x, y) forward step, colour channels together; the mean absolute gradient adds the
    x and y parts instead."""
    image = torch.zeros(3, 4, 4)
    image[0, :, 2:] = 0.3  # x steps of 0.3 in red, y steps of 0.4 in green
    image[1, 2:, :] = 0.4
    # over the 3 x 3 pixels with forward steps: one crosses both edges (0.5), two only the red (0.3), two the green (0.4)
    assert math.isclose(gradient_length(image), (0.5 + 2 * 0.3 + 2 * 0.4) / 9, rel_tol=1e-5)
    assert gradient_length(torch.full((3, 8, 8), 0.5)) == 1e-12


def test_sharpness_ratios_name_each_measure_and_read_1_for_the_truth_itself():
    edge = torch.zeros(3, 16, 16)
    edge[:, :, 8:] = 1.0
    assert sharpness_ratios(edge, edge) == {key: 1.0 for key in SHARPNESS_MEASURES}
    assert set(SHARPNESS_MEASURES) == {"sharpness", "sharpness_mean_abs", "sharpness_length"}  # the bench's keys
    half = sharpness_ratios(0.5 * edge, edge)  # half the contrast: a quarter of the energy, half of the others
    assert math.isclose(half["sharpness"], 0.25, rel_tol=1e-6) and math.isclose(half["sharpness_length"], 0.5, rel_tol=1e-6)


def test_psnr_of_a_known_error():
    image = torch.zeros(3, 8, 8)
    assert math.isclose(psnr(image + 0.1, image), 20.0, rel_tol=1e-5)
    assert psnr(image, image) == float("inf")


def test_gaussian_blur_keeps_flat_images_and_loses_energy_with_sigma():
    """The sharpness scripts' Gaussian blur (mirage_viz.image): a flat image stays flat (edges replicated, taps sum to
    1), a step edge keeps less gradient energy the wider the blur."""
    blur = gaussian_blur
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(blur(flat, 1.0), flat, atol=1e-6)
    edge = torch.zeros(1, 3, 16, 16)
    edge[..., 8:] = 1.0
    energies = [gradient_energy(blur(edge, sigma)) for sigma in (0.5, 1.0, 2.0)]
    assert gradient_energy(edge) > energies[0] > energies[1] > energies[2]

def test_ssim_equals_the_reference_window_done_map_by_map():
    """The fast SSIM (one depthwise convolution for its five maps) against the plain one: each map blurred by the
    11x11 Gaussian window on its own."""
    import torch.nn.functional as F

    def reference(x, y, window=11, sigma=1.5):
        x, y = x.reshape(-1, 1, *x.shape[-2:]), y.reshape(-1, 1, *y.shape[-2:])
        coords = torch.arange(window, dtype=torch.float32) - window // 2
        g = torch.exp(-(coords**2) / (2 * sigma**2))
        g = g / g.sum()
        blur = lambda t: F.conv2d(t, (g[:, None] * g[None, :])[None, None])  # noqa: E731
        mx, my = blur(x), blur(y)
        vx, vy, c = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        return float((((2 * mx * my + 1e-4) * (2 * c + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))).mean())

    generator = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 40, 56, generator=generator), torch.rand(2, 3, 40, 56, generator=generator)
    for x, y in ((a[0], b[0]), (a, b), (a[0], 0.8 * a[0] + 0.2 * b[0])):
        assert ssim(x, y) == pytest.approx(reference(x, y), abs=1e-6)
