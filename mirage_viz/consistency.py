"""Scores of a rollout that need no ground truth: generated frames measured against the cameras asked for and against
each other (like WorldScore's camera control and 3D consistency). ``docs/consistency.md`` explains each one.

- :func:`camera_control_error`: the relative pose between two frames, estimated from their pixels (SIFT, essential
  matrix), against the relative pose asked for;
- :func:`reprojection_error`: a frame lifted with its depth into earlier frames: do they show the same colours where
  both see the same surface;
- :func:`flow_agreement`: forward and backward optical flow between two frames: do they undo each other;
- :func:`consistency_scores`: the three along a rollout, one :class:`StepConsistency` per generated step, and
  :func:`mean_scores` their means.

Frames are (3, H, W) float in [0, 1], depth (H, W) metric with NaN for a hole; cameras in the OpenCV convention with
``camera_to_world`` poses (see :mod:`mirage_viz.geometry.cameras`). Shapes are written next to tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mirage_viz.geometry import Camera, backproject_depth, check_depth, project_points, rows_with_depth
from mirage_viz.image import to_uint8_image

__all__ = ["SCORES", "CameraError", "RolloutConsistency", "StepConsistency", "camera_control_error", "consistency_scores", "flow_agreement",
           "mean_scores", "reprojection_error"]

# each score a step gets (StepConsistency's fields) and its sign: +1 when higher is better (as PSNR), -1 when lower
SCORES: dict[str, int] = {"camera_rotation_error_deg": -1, "camera_direction_error_deg": -1, "reprojection_error": -1,
                          "flow_agreement": +1}
View = tuple[torch.Tensor, torch.Tensor, Camera]  # (frame (3, H, W), depth (H, W), camera)
Features = tuple[np.ndarray, np.ndarray]  # SIFT keypoints (N, 2) pixels float64, descriptors (N, 128) float32

SIFT_CONTRAST = 0.0  # keep low-contrast keypoints: generated and rendered frames are smooth (0.04, the default, finds
# a dozen on a 256 px room render); the ratio test below weeds out the weak ones
# smooth 256 px frames hold few SIFT keypoints: found on the frame at twice its size (the 600 strongest), the true
# frames of 12-step loops on 6 held-out worlds give a pose on 72 of 72 step pairs (54 at their own size with 2000),
# median rotation error 0.72 degrees (1.44); 2000 or 1000 keypoints at twice the size: 0.95 and 0.87
SIFT_UPSAMPLE, SIFT_UPSAMPLE_BELOW = 2, 512
MAX_FEATURES = 600  # the strongest keypoints kept per frame: the most reliable, and a bounded matching time
RATIO_TEST = 0.75  # Lowe's ratio: a match is kept when its best distance is under 0.75 x the second best
MIN_RATIO_MATCHES = 15  # fewer matches than this leave RANSAC too little to vote on
MIN_INLIERS = 15  # fewer inliers: on true renders a third of such poses were off by more than 5 degrees
RANSAC_THRESHOLD_PX = 0.5  # a match is an inlier within 0.5 px of its epipolar line (or of the homography's point)
RANSAC_CONFIDENCE = 0.999  # RANSAC stops once it is this sure to have drawn an all-inlier sample
MIN_BASELINE_M = 1e-6  # asked camera centres closer than this: a pure rotation, which has no translation direction
DEPTH_AGREEMENT = 0.05  # a pixel lands on the surface an earlier frame saw when its depth is within 5% of that frame's
FLOW_TOLERANCE_PX = 1.0  # forward and backward flow must cancel to within 1 px ...
FLOW_TOLERANCE_SHARE = 0.05  # ... or 5% of the flow's length, whichever is larger (long flow is less precise)
MAX_EARLIER_VIEWS = 6  # earlier frames a frame is reprojected into: the nearest cameras (a step's cost stays bounded)
DECIMALS = 4  # digits kept by StepConsistency.to_dict: well below any difference that means something


@dataclass(frozen=True)
class CameraError:
    """How far the relative pose seen between two frames is from the one asked for (None: not measurable)."""

    rotation_deg: float | None  # angle of R_est^T R_asked
    direction_deg: float | None  # angle between estimated and asked directions of travel, in camera a's frame
    matches: int  # matches consistent with the estimated pose (RANSAC inliers in front of both cameras)


@dataclass(frozen=True)
class StepConsistency:
    """The scores of generated step ``step`` (>= 1): camera control and flow from frame step - 1 to frame step,
    reprojection of frame step into every earlier frame."""

    step: int
    camera_rotation_error_deg: float | None
    camera_direction_error_deg: float | None
    camera_matches: int
    reprojection_error: float | None
    flow_agreement: float

    def to_dict(self) -> dict[str, int | float | None]:
        """The fields, floats rounded to ``DECIMALS`` digits (None stays None)."""
        return {name: round(value, DECIMALS) if isinstance(value, float) else value
                for name, value in asdict(self).items()}


# -- input checks --------------------------------------------------------------------------------------------------

def _check_frame(frame: torch.Tensor, camera: Camera, name: str) -> torch.Tensor:
    """``frame`` as float (3, H, W) on ``camera``'s grid, or a ``ValueError`` saying what was expected."""
    k = camera.intrinsics
    if not isinstance(frame, torch.Tensor) or tuple(frame.shape) != (3, k.height, k.width):
        shape = tuple(frame.shape) if isinstance(frame, torch.Tensor) else type(frame).__name__
        raise ValueError(f"{name} must be a tensor (3, {k.height}, {k.width}) on its camera's grid, got {shape}")
    return frame.float()


def _check_view(frame: torch.Tensor, depth: torch.Tensor, camera: Camera, name: str) -> View:
    """A (frame, depth, camera) checked: both on the camera's grid, depth > 0 or NaN (a hole)."""
    k = camera.intrinsics
    depth = check_depth(depth, f"{name}'s depth", allow_holes=True)
    if tuple(depth.shape) != (k.height, k.width):
        raise ValueError(f"{name}'s depth must be ({k.height}, {k.width}) on its camera's grid, "
                         f"got {tuple(depth.shape)}")
    return _check_frame(frame, camera, name), depth, camera


def _gray(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W) uint8 grayscale: the one torch -> numpy conversion of a frame."""
    return cv2.cvtColor(to_uint8_image(frame), cv2.COLOR_RGB2GRAY)


# -- camera control --------------------------------------------------------------------------------------------------

def _features(gray: np.ndarray) -> Features:
    """SIFT keypoints and descriptors of a grayscale frame (none on a textureless one), found on the frame enlarged
    ``SIFT_UPSAMPLE`` times when it is smaller than ``SIFT_UPSAMPLE_BELOW`` pixels a side; in the frame's pixels."""
    scale = SIFT_UPSAMPLE if min(gray.shape) < SIFT_UPSAMPLE_BELOW else 1
    searched = gray if scale == 1 else cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    keypoints, descriptors = cv2.SIFT_create(MAX_FEATURES, contrastThreshold=SIFT_CONTRAST).detectAndCompute(searched, None)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float64).reshape(-1, 2)  # [N, 2] pixels of ``searched``
    points = (points + 0.5) / scale - 0.5  # [N, 2] pixels of the frame (centres at integers)
    return points, (np.zeros((0, 128), np.float32) if descriptors is None else descriptors)


def _ratio_matches(a: Features, b: Features) -> tuple[np.ndarray, np.ndarray]:
    """The keypoints of a and b that match (Lowe's ratio test): (M, 2) and (M, 2) pixels."""
    if len(a[1]) < 2 or len(b[1]) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(a[1], b[1], k=2)
    kept = [best for best, second in (p for p in pairs if len(p) == 2) if best.distance < RATIO_TEST * second.distance]
    return a[0][[m.queryIdx for m in kept]].reshape(-1, 2), b[0][[m.trainIdx for m in kept]].reshape(-1, 2)


def _normalized(points: np.ndarray, camera: Camera) -> np.ndarray:
    """Pixels (M, 2) -> normalized image coordinates (M, 2): K^-1 [u, v, 1], its first two entries."""
    k = camera.intrinsics
    return (points - (k.cx, k.cy)) / (k.fx, k.fy)


def _rotation_angle_deg(rotation: np.ndarray) -> float:
    """The angle of a rotation (3, 3): arccos((trace - 1) / 2), in degrees."""
    return math.degrees(math.acos(float(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))


def _angle_between_deg(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two vectors (3,), in degrees."""
    cosine = float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return math.degrees(math.acos(float(np.clip(cosine, -1.0, 1.0))))


def _nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) nearest to ``matrix`` up to its scale and sign: U diag(1, 1, det(U V^T)) V^T of the SVD of
    ``matrix`` divided by the cube root of its determinant."""
    u, _, vt = np.linalg.svd(matrix / np.cbrt(np.linalg.det(matrix)))
    return u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt


def _rotation_from_homography(norm_a: np.ndarray, norm_b: np.ndarray, threshold: float
                               ) -> tuple[np.ndarray | None, int]:
    """A pure rotation's R (x_b ~ R x_a in normalized coordinates: a homography) and its inliers; R None when the
    homography is not found."""
    homography, mask = cv2.findHomography(norm_a, norm_b, cv2.USAC_ACCURATE, threshold, confidence=RANSAC_CONFIDENCE)
    inliers = 0 if mask is None else int(mask.sum())
    if homography is None or abs(np.linalg.det(homography)) < 1e-12:
        return None, inliers
    return _nearest_rotation(homography), inliers


def _pose_from_essential(norm_a: np.ndarray, norm_b: np.ndarray, threshold: float
                         ) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """R and unit t with x_b = R x_a + t from the essential matrix, and the inliers in front of both cameras; R and t
    None when no essential matrix is found."""
    essential, mask = cv2.findEssentialMat(norm_a, norm_b, np.eye(3), cv2.USAC_ACCURATE, RANSAC_CONFIDENCE, threshold)
    if essential is None or essential.shape[0] < 3 or mask is None:
        return None, None, 0
    inliers, rotation, translation, _ = cv2.recoverPose(essential[:3], norm_a, norm_b, np.eye(3), mask=mask)
    return rotation, translation.reshape(3), int(inliers)


def _camera_error(a: Features, b: Features, camera_a: Camera, camera_b: Camera) -> CameraError:
    """:func:`camera_control_error` on features already found (a frame used twice is described once)."""
    points_a, points_b = _ratio_matches(a, b)  # [M, 2] pixels each
    if len(points_a) < MIN_RATIO_MATCHES:
        return CameraError(rotation_deg=None, direction_deg=None, matches=0)
    asked = (camera_b.world_to_camera.double() @ camera_a.camera_to_world.double()).numpy()  # [4, 4] a -> b
    rotation_asked, translation_asked = asked[:3, :3], asked[:3, 3]
    norm_a, norm_b = _normalized(points_a, camera_a), _normalized(points_b, camera_b)  # [M, 2] each, K = identity
    focal = np.mean([camera_a.intrinsics.fx, camera_a.intrinsics.fy, camera_b.intrinsics.fx, camera_b.intrinsics.fy])
    threshold = RANSAC_THRESHOLD_PX / focal  # the pixel threshold in normalized coordinates
    pure_rotation = np.linalg.norm(translation_asked) < MIN_BASELINE_M
    try:
        if pure_rotation:
            (rotation, inliers), translation = _rotation_from_homography(norm_a, norm_b, threshold), None
        else:
            rotation, translation, inliers = _pose_from_essential(norm_a, norm_b, threshold)
    except cv2.error:  # degenerate matches (all on a line, all the same point) fail OpenCV's own checks
        return CameraError(rotation_deg=None, direction_deg=None, matches=0)
    if rotation is None or inliers < MIN_INLIERS:
        return CameraError(rotation_deg=None, direction_deg=None, matches=inliers)
    rotation_deg = _rotation_angle_deg(rotation.T @ rotation_asked)
    if translation is None:
        return CameraError(rotation_deg=rotation_deg, direction_deg=None, matches=inliers)
    # Camera b's centre in camera a's frame is -R^T t, for the estimated (unit length) and the asked poses alike.
    direction_deg = _angle_between_deg(-rotation.T @ translation, -rotation_asked.T @ translation_asked)
    return CameraError(rotation_deg=rotation_deg, direction_deg=direction_deg, matches=inliers)


def camera_control_error(frame_a: torch.Tensor, frame_b: torch.Tensor, camera_a: Camera, camera_b: Camera
                         ) -> CameraError:
    """The relative pose from ``frame_a`` to ``frame_b`` estimated from their pixels, against the one asked for.

    How: SIFT keypoints of each frame (grayscale uint8), matched by Lowe's ratio test (``RATIO_TEST``); the matches
    are normalized with each camera's K (x = K^-1 [u, v, 1], so the two cameras may have different intrinsics) and
    ``cv2.findEssentialMat`` (RANSAC, ``RANSAC_THRESHOLD_PX`` pixels) with an identity K gives E, and
    ``cv2.recoverPose`` the rotation R_est and the unit translation t_est with x_b = R_est x_a + t_est. The pose
    asked for is ``world_to_camera_b @ camera_to_world_a`` = [R_asked | t_asked].

    - ``rotation_deg`` = angle(R_est^T R_asked) = arccos((trace(R_est^T R_asked) - 1) / 2);
    - ``direction_deg`` = angle between -R_est^T t_est and -R_asked^T t_asked: where camera b's centre lies seen from
      camera a (the scale of a translation is not observable from two images, its direction is).

    When the asked centres coincide (closer than ``MIN_BASELINE_M``) the motion asked for is a pure rotation, where
    the essential matrix is degenerate: the rotation is then read from a homography of the matches
    (``cv2.findHomography``, RANSAC; x_b ~ R x_a in normalized coordinates), projected to the nearest rotation by an
    SVD, and ``direction_deg`` is None (a rotation has no direction of travel). Both errors are None, never an
    exception, when there are fewer than ``MIN_RATIO_MATCHES`` ratio-test matches (``matches`` is then 0) or fewer
    than ``MIN_INLIERS`` inliers (a textureless or unrelated frame).
    """
    frame_a, frame_b = _check_frame(frame_a, camera_a, "frame_a"), _check_frame(frame_b, camera_b, "frame_b")
    return _camera_error(_features(_gray(frame_a)), _features(_gray(frame_b)), camera_a, camera_b)


# -- reprojection ----------------------------------------------------------------------------------------------------

def _photometric_sums(colors: torch.Tensor, points: torch.Tensor, earlier: View) -> tuple[float, int]:
    """The summed photometric error of world ``points`` (N, 3) of ``colors`` (3, N) in one earlier view, over the
    points that view saw too, and their count."""
    frame, depth, camera = earlier
    k = camera.intrinsics
    uv, z = project_points(points, camera)  # [N, 2] pixels, [N] depth in the earlier camera
    u, v = uv[:, 0], uv[:, 1]
    inside = (z > 0) & (u >= 0) & (u <= k.width - 1) & (v >= 0) & (v <= k.height - 1)  # [N]; NaN uv fails
    u, v, z, colors = u[inside], v[inside], z[inside], colors[:, inside]  # [M] ..., [3, M]
    seen_depth = depth.reshape(-1)[v.round().long() * k.width + u.round().long()]  # [M] nearest sample, NaN: unseen
    seen = (z - seen_depth).abs() <= DEPTH_AGREEMENT * seen_depth  # [M]; NaN compares false
    if not bool(seen.any()):
        return 0.0, 0
    grid = torch.stack([u[seen] / (k.width - 1) * 2 - 1, v[seen] / (k.height - 1) * 2 - 1], dim=1)  # [S, 2] in [-1, 1]
    sampled = F.grid_sample(frame[None], grid[None, None], align_corners=True)[0, :, 0]  # [3, S] bilinear
    return float((sampled - colors[:, seen]).abs().mean(dim=0).sum()), int(seen.sum())


def reprojection_error(frame: torch.Tensor, depth: torch.Tensor, camera: Camera,
                       earlier: Sequence[tuple[torch.Tensor, torch.Tensor, Camera]]) -> float | None:
    """The mean photometric error between ``frame`` and the ``earlier`` (frame, depth, camera) views where both see
    the same surface, in [0, 1] image units; None when no pixel is seen by both.

    Each pixel p of ``frame`` with depth is lifted into the world with its depth (``backproject_depth``) and projected
    into each earlier camera (``project_points``) at uv with depth z. The earlier view saw that surface when uv lies in
    its image, z > 0 and |z - D_e(uv)| <= ``DEPTH_AGREEMENT`` x D_e(uv) (D_e: the earlier depth at the nearest pixel;
    NaN there means not seen). Over every such (pixel, earlier view) pair:

        error = mean |frame(p) - frame_e(uv)|, averaged over the 3 channels; frame_e sampled bilinearly (grid_sample).
    """
    frame, depth, camera = _check_view(frame, depth, camera, "frame")
    views = [_check_view(*view, f"earlier[{index}]") for index, view in enumerate(earlier)]
    return _reprojection_error((frame, depth, camera), views)


def _reprojection_error(view: View, earlier: Sequence[View]) -> float | None:
    """:func:`reprojection_error` on views already checked."""
    frame, depth, camera = view
    points = backproject_depth(depth, camera, allow_holes=True)  # [H*W, 3] world
    points, colors = rows_with_depth(depth, points, frame.reshape(3, -1).T)  # [N, 3] world, [N, 3]
    total, count = 0.0, 0
    for other in earlier:
        error, seen = _photometric_sums(colors.T, points, other)
        total, count = total + error, count + seen
    return total / count if count else None


# -- optical flow ----------------------------------------------------------------------------------------------------

def _flow_agreement(gray_a: np.ndarray, gray_b: np.ndarray) -> float:
    """:func:`flow_agreement` on grayscale (H, W) uint8 frames."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    forward = dis.calc(gray_a, gray_b, None)  # [H, W, 2] a -> b, pixels (x, y)
    backward = dis.calc(gray_b, gray_a, None)  # [H, W, 2] b -> a
    height, width = gray_a.shape
    columns, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = columns + forward[..., 0], rows + forward[..., 1]  # [H, W] where each pixel of a lands in b
    lands = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)  # [H, W]
    if not lands.any():
        return 0.0
    back = cv2.remap(backward, map_x, map_y, cv2.INTER_LINEAR)  # [H, W, 2] b's flow at x + f(x)
    residual = np.linalg.norm(forward + back, axis=2)  # [H, W] px
    tolerance = np.maximum(FLOW_TOLERANCE_PX, FLOW_TOLERANCE_SHARE * np.linalg.norm(forward, axis=2))  # [H, W] px
    return float((residual <= tolerance)[lands].mean())


def flow_agreement(frame_a: torch.Tensor, frame_b: torch.Tensor) -> float:
    """The share of pixels of ``frame_a`` whose optical flow to ``frame_b`` the flow back undoes, in [0, 1] (higher:
    more consistent; 0 when no flow lands in ``frame_b``).

    Dense flow f (a -> b) and g (b -> a) by DIS (``cv2.DISOpticalFlow_create``, medium preset) on grayscale uint8
    frames. DIS, not Farneback: on 256 px frames it is the faster of the two, and it finds motion on smooth surfaces,
    where Farneback reports almost no flow, which agrees with itself even between unrelated frames. A pixel x
    of a whose flow lands inside b (x + f(x) within its pixel centres) agrees when

        |f(x) + g(x + f(x))| <= max(``FLOW_TOLERANCE_PX``, ``FLOW_TOLERANCE_SHARE`` x |f(x)|),

    g sampled bilinearly at x + f(x) (``cv2.remap``). The score is the share of landing pixels that agree.
    """
    if not isinstance(frame_a, torch.Tensor) or not isinstance(frame_b, torch.Tensor) or frame_a.ndim != 3 \
            or frame_a.shape[0] != 3 or frame_a.shape != frame_b.shape:
        shapes = [tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__ for f in (frame_a, frame_b)]
        raise ValueError(f"flow_agreement needs two frames of one shape (3, H, W), got {shapes[0]} and {shapes[1]}")
    return _flow_agreement(_gray(frame_a), _gray(frame_b))


# -- a rollout -------------------------------------------------------------------------------------------------------

class RolloutConsistency:
    """One memory's rollout scored as it grows: :meth:`add` each frame (the first included) with its depth and camera
    and get its :class:`StepConsistency` (None for the first); :meth:`undo` takes the last back out.

    Camera control and flow compare frame t with frame t - 1; reprojection compares it with the ``MAX_EARLIER_VIEWS``
    earlier frames whose cameras stand nearest (so a step costs the same however long the rollout, and a return to
    an earlier place is compared with the frames first made there). Each frame is described by SIFT once.
    """

    def __init__(self) -> None:
        self._views: list[View] = []
        self._grays: list[np.ndarray] = []  # [H, W] uint8 each
        self._features: list[Features] = []

    def __len__(self) -> int:
        return len(self._views)

    def add(self, frame: torch.Tensor, depth: torch.Tensor, camera: Camera) -> StepConsistency | None:
        """Score ``frame`` (3, H, W) with its ``depth`` (H, W; NaN holes) at ``camera`` against the frames before it."""
        view = _check_view(frame, depth, camera, f"frame {len(self)}")
        gray = _gray(view[0])
        features = _features(gray)
        score = None
        if self._views:
            previous = self._views[-1][2]
            control = _camera_error(self._features[-1], features, previous, camera)
            score = StepConsistency(
                step=len(self), camera_rotation_error_deg=control.rotation_deg,
                camera_direction_error_deg=control.direction_deg, camera_matches=control.matches,
                reprojection_error=_reprojection_error(view, self._nearest(camera)),
                flow_agreement=_flow_agreement(self._grays[-1], gray))
        self._views.append(view)
        self._grays.append(gray)
        self._features.append(features)
        return score

    def undo(self) -> None:
        """Forget the last frame added."""
        for kept in (self._views, self._grays, self._features):
            kept.pop()

    def _nearest(self, camera: Camera) -> list[View]:
        """The ``MAX_EARLIER_VIEWS`` earlier views whose camera centres are nearest ``camera``'s (the latest on ties)."""
        centre = camera.camera_to_world[:3, 3]
        distances = [float((view[2].camera_to_world[:3, 3] - centre).norm()) for view in self._views]
        order = sorted(range(len(distances)), key=lambda index: (distances[index], -index))
        return [self._views[index] for index in sorted(order[:MAX_EARLIER_VIEWS])]


def consistency_scores(frames: Sequence[torch.Tensor], depths: Sequence[torch.Tensor], cameras: Sequence[Camera]
                       ) -> list[StepConsistency]:
    """The scores of every generated step of a rollout (``frames[0]`` is the given first frame, which gets no entry:
    the list holds steps 1..T), as :class:`RolloutConsistency` gives them step by step."""
    if not len(frames) == len(depths) == len(cameras):
        raise ValueError(f"one depth and one camera per frame: got {len(frames)} frames, {len(depths)} depths and "
                         f"{len(cameras)} cameras")
    tracker = RolloutConsistency()
    scores = [tracker.add(frame, depth, camera) for frame, depth, camera in zip(frames, depths, cameras)]
    return [score for score in scores if score is not None]


def mean_scores(scores: Sequence[StepConsistency]) -> dict[str, float | None]:
    """Each score's mean over the steps, skipping None (None when every step's is None, or there is no step)."""
    means: dict[str, float | None] = {}
    for field in fields(StepConsistency):
        if field.name == "step":
            continue
        values = [getattr(score, field.name) for score in scores if getattr(score, field.name) is not None]
        means[field.name] = float(np.mean(values)) if values else None
    return means
