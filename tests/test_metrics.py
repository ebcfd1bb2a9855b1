"""The image measures: sharpness as gradient energy (the bench's and the VAE training's) and as mean absolute gradient
(issue 15's), PSNR."""

import json
import math

import torch
import torch.nn.functional as F

from mirage_viz.metrics import gradient_energy, gradient_magnitude, gradient_mean_abs, psnr


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


def test_sharpness_calibration_script_writes_every_measure(load_script, tmp_path):
    """scripts/sharpness_calibration.py at 64 px: every measure against the truth and the VAE, per memory, with whether
    it agrees with the issue's figures. The gradient magnitude is the length of each pixel's (x, y) step."""
    calibration = load_script("sharpness_calibration")
    image = torch.zeros(3, 4, 4)
    image[0, :, 2:] = 0.3  # x steps of 0.3 in red, y steps of 0.4 in green
    image[1, 2:, :] = 0.4
    # over the 3 x 3 pixels with forward steps: one crosses both edges (0.5), two only the red (0.3), two the green (0.4)
    assert math.isclose(gradient_magnitude(image), (0.5 + 2 * 0.3 + 2 * 0.4) / 9, rel_tol=1e-5)
    out = tmp_path / "calibration.json"
    result = calibration.main(["--size", "64", "--steps", "3", "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert set(result["measures"]) == {f"{m} vs {r}" for m in calibration.MEASURES for r in ("truth", "vae")}
    for measure in result["measures"].values():
        assert set(measure) == {"latent", "rgb", "none", "consistent_with_issue"}
        assert isinstance(measure["consistent_with_issue"], bool)
        assert all(0 <= measure[m]["min"] <= measure[m]["mean"] <= measure[m]["max"] for m in ("latent", "rgb", "none"))
    # the energy punishes blur more than the summed steps do
    assert result["measures"]["energy vs truth"]["latent"]["mean"] < result["measures"]["mean_abs vs truth"]["latent"]["mean"]


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


def test_frame_bars_reports_the_three_sharpness_measures(load_script, backbone):
    """scripts/frame_bars.py's row for one setting at 64 px: every sharpness measure, each the metrics' own ratio."""
    frame_bars = load_script("frame_bars")
    row = frame_bars.measure("closest", "studio", 3, 64, backbone)
    for memory in ("latent", "rgb", "none"):
        assert {"sharpness", "sharpness_abs", "sharpness_magnitude", "sharpness_vs_vae"} <= set(row[memory])
        assert 0 < row[memory]["sharpness"] < row[memory]["sharpness_abs"]  # blur costs the energy most
