"""Embedded synthetic worlds: seeded procedural rooms ray-cast on the CPU with open3d.

A world is closed (floor, ceiling, four walls) so every ray hits something, and holds objects at
several depths so that moving cameras see occlusion and disocclusion. Rendering gives RGB and metric
depth (z along the optical axis, OpenCV convention) for any :class:`~mirage_viz.geometry.cameras.Camera`;
these renders are the ground truth for every consistency figure.

World frame: y points down (like the OpenCV camera at identity), the floor is the plane
``y = +camera_height`` and the default start camera sits at the origin looking along +z.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d
import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.projection import camera_rays

__all__ = ["WORLD_NAMES", "DEFAULT_WORLD", "Render", "SyntheticWorld", "make_world"]

PLAIN, CHECKER, STRIPES, WAVES = 0, 1, 2, 3


@dataclass
class Render:
    """A rendered view: rgb (3, H, W) in [0, 1] and metric depth (H, W) > 0 (None: a real frame, whose depth
    nobody measured)."""

    rgb: torch.Tensor
    depth: torch.Tensor | None


@dataclass
class _Material:
    base: tuple[float, float, float]
    accent: tuple[float, float, float]
    pattern: int
    scale: float  # metres per pattern period


@dataclass
class SyntheticWorld:
    """A seeded procedural room. Build one with :func:`make_world`."""

    name: str
    seed: int
    half_width: float = 3.0  # walls at x = +-half_width
    camera_height: float = 1.4  # floor at y = +camera_height
    ceiling: float = 1.6  # ceiling at y = -ceiling
    back: float = -3.0  # wall behind the start camera
    front: float = 8.0  # far wall
    light_direction: tuple[float, float, float] = (0.35, 0.8, 0.45)  # towards +y: light from above
    _scene: o3d.t.geometry.RaycastingScene = field(init=False, repr=False)
    _materials: list[_Material] = field(init=False, repr=False, default_factory=list)
    _objects: o3d.t.geometry.RaycastingScene = field(init=False, repr=False)  # the closed objects alone
    object_count: int = field(init=False, default=0)
    clearance: float = 0.05  # metres of free space a camera needs from every surface

    def __post_init__(self) -> None:
        self._scene = o3d.t.geometry.RaycastingScene()
        self._objects = o3d.t.geometry.RaycastingScene()
        rng = np.random.default_rng(self.seed)
        self._build_room(rng)
        self._build_objects(rng)
        table = np.array([m.base + m.accent + (m.pattern, m.scale) for m in self._materials], dtype=np.float32)
        self._material_table = table  # (G, 8): base rgb, accent rgb, pattern, scale

    # -- construction ---------------------------------------------------------------------------
    def _add(self, mesh: o3d.t.geometry.TriangleMesh, material: _Material, closed: bool = True) -> None:
        geometry_id = self._scene.add_triangles(mesh)
        assert geometry_id == len(self._materials)
        self._materials.append(material)
        if closed:  # an object, not a wall: cameras must stay out of it
            self._objects.add_triangles(mesh)

    def _build_room(self, rng: np.random.Generator) -> None:
        x0, x1 = -self.half_width, self.half_width
        y_floor, y_ceiling = self.camera_height, -self.ceiling
        z0, z1 = self.back, self.front
        wall_base = _pastel(rng)
        floor = _Material(_muted(rng), _muted(rng), CHECKER, float(rng.uniform(0.8, 1.2)))
        ceiling = _Material((0.85, 0.85, 0.82), (0.75, 0.75, 0.72), STRIPES, 2.0)
        walls = [
            _Material(wall_base, _shade(wall_base, 0.75), STRIPES, float(rng.uniform(0.9, 1.5))),
            _Material(_pastel(rng), _pastel(rng), WAVES, float(rng.uniform(1.5, 2.5))),
            _Material(wall_base, _shade(wall_base, 0.8), WAVES, float(rng.uniform(1.5, 2.5))),
            _Material(_pastel(rng), _pastel(rng), STRIPES, float(rng.uniform(0.9, 1.5))),
        ]
        quads = [
            (np.array([[x0, y_floor, z0], [x1, y_floor, z0], [x1, y_floor, z1], [x0, y_floor, z1]]), floor),
            (np.array([[x0, y_ceiling, z0], [x1, y_ceiling, z0], [x1, y_ceiling, z1], [x0, y_ceiling, z1]]), ceiling),
            (np.array([[x0, y_ceiling, z0], [x0, y_floor, z0], [x0, y_floor, z1], [x0, y_ceiling, z1]]), walls[0]),
            (np.array([[x1, y_ceiling, z0], [x1, y_floor, z0], [x1, y_floor, z1], [x1, y_ceiling, z1]]), walls[1]),
            (np.array([[x0, y_ceiling, z1], [x1, y_ceiling, z1], [x1, y_floor, z1], [x0, y_floor, z1]]), walls[2]),
            (np.array([[x0, y_ceiling, z0], [x1, y_ceiling, z0], [x1, y_floor, z0], [x0, y_floor, z0]]), walls[3]),
        ]
        for corners, material in quads:
            self._add_quad(corners, material)

    def _add_quad(self, corners: np.ndarray, material: _Material) -> None:
        mesh = o3d.t.geometry.TriangleMesh()
        mesh.vertex.positions = o3d.core.Tensor(corners.astype(np.float32))
        mesh.triangle.indices = o3d.core.Tensor(np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32))
        self._add(mesh, material, closed=False)

    def _build_objects(self, rng: np.random.Generator) -> None:
        count = int(rng.integers(5, 8))
        placed: list[tuple[float, float, float]] = []
        for _ in range(count):
            for _attempt in range(30):
                kind = int(rng.integers(0, 3))
                size = float(rng.uniform(0.35, 0.75))
                x = float(rng.uniform(-self.half_width + 0.8, self.half_width - 0.8))
                z = float(rng.uniform(1.8, self.front - 1.0))
                if all((x - px) ** 2 + (z - pz) ** 2 > (size + ps + 0.2) ** 2 for px, pz, ps in placed):
                    break
            placed.append((x, z, size))
            material = _Material(
                _saturated(rng), _saturated(rng), int(rng.choice([PLAIN, STRIPES, CHECKER])), float(rng.uniform(0.4, 0.8))
            )
            if kind == 0:
                height = float(rng.uniform(0.6, 2.0))
                mesh = o3d.t.geometry.TriangleMesh.create_box(2 * size, height, 2 * size)
                mesh.translate(o3d.core.Tensor([x - size, self.camera_height - height, z - size], o3d.core.float32))
                angle = float(rng.uniform(-0.6, 0.6))
                rotation = o3d.geometry.get_rotation_matrix_from_xyz((0.0, angle, 0.0))
                mesh.rotate(o3d.core.Tensor(rotation, o3d.core.float32), o3d.core.Tensor([x, 0.0, z], o3d.core.float32))
            elif kind == 1:
                mesh = o3d.t.geometry.TriangleMesh.create_sphere(size, resolution=32)
                lift = float(rng.uniform(0.0, 0.8))
                mesh.translate(o3d.core.Tensor([x, self.camera_height - size - lift, z], o3d.core.float32))
                if lift > 0.05:  # a pedestal under a floating sphere
                    self._add_cylinder(x, z, 0.12, lift + 0.01, _Material((0.4, 0.4, 0.42), (0.3, 0.3, 0.3), PLAIN, 1.0))
            else:
                height = float(rng.uniform(0.8, 2.2))
                self._add_cylinder(x, z, size * 0.8, height, material)
                self.object_count += 1
                continue
            self._add(mesh, material)
            self.object_count += 1

    def _add_cylinder(self, x: float, z: float, radius: float, height: float, material: _Material) -> None:
        mesh = o3d.t.geometry.TriangleMesh.create_cylinder(radius, height, resolution=32, split=1)
        # open3d cylinders stand along +z from -h/2 to h/2: turn them upright along y.
        rotation = o3d.geometry.get_rotation_matrix_from_xyz((np.pi / 2, 0.0, 0.0))
        mesh.rotate(o3d.core.Tensor(rotation, o3d.core.float32), o3d.core.Tensor([0.0, 0.0, 0.0], o3d.core.float32))
        mesh.translate(o3d.core.Tensor([x, self.camera_height - height / 2, z], o3d.core.float32))
        self._add(mesh, material)

    # -- where a camera may stand --------------------------------------------------------------
    def free_space(self) -> dict[str, tuple[float, float]]:
        """The box a camera centre must stay in: the room less ``clearance`` from every wall (x, y, z in metres)."""
        c = self.clearance
        return {"x": (-self.half_width + c, self.half_width - c), "y": (-self.ceiling + c, self.camera_height - c),
                "z": (self.back + c, self.front - c)}

    def camera_problem(self, camera: Camera) -> str | None:
        """Why ``camera`` cannot stand where it is (outside the room, in or against an object), or None."""
        position = camera.camera_to_world[:3, 3].numpy().astype(np.float32)
        box = self.free_space()
        outside = [axis for i, (axis, (low, high)) in enumerate(box.items()) if not low <= float(position[i]) <= high]
        if outside:
            ranges = ", ".join(f"{axis} in [{low:g}, {high:g}]" for axis, (low, high) in box.items())
            return f"it is outside the {self.name!r} room (accepted: {ranges} m)"
        query = o3d.core.Tensor(position[None])
        if int(self._objects.compute_occupancy(query).numpy()[0]) > 0:
            return "it is inside an object"
        distance = float(self._objects.compute_distance(query).numpy()[0])
        if distance < self.clearance:
            return f"it is {distance:.3f} m from an object's surface (accepted: at least {self.clearance:g} m)"
        return None

    def check_cameras(self, cameras: list[Camera]) -> None:
        """Raise ``ValueError`` naming the first step whose camera cannot stand where it is, and its pose."""
        for step, camera in enumerate(cameras):
            problem = self.camera_problem(camera)
            if problem is not None:
                position = ", ".join(f"{v:.3f}" for v in camera.camera_to_world[:3, 3].tolist())
                raise ValueError(f"step {step}: the camera at ({position}) m cannot be rendered: {problem}; "
                                 f"its camera_to_world is {[[round(v, 4) for v in row] for row in camera.camera_to_world.tolist()]}")

    # -- rendering ------------------------------------------------------------------------------
    def render(self, camera: Camera) -> Render:
        """RGB (3, H, W) in [0, 1] and metric depth (H, W) seen by ``camera``."""
        k = camera.intrinsics
        c2w = camera.camera_to_world.numpy().astype(np.float32)
        rays = camera_rays(k).numpy()  # [N, 3] camera frame with z = 1, so t_hit is z-depth
        x, y = rays[:, 0:1], rays[:, 1:2]  # [N, 1]
        # R @ (x, y, 1) written out: a BLAS matmul here leaves OpenBLAS threads spinning, which
        # slows the next torch call by ~90 ms on 2 cores.
        directions = x * c2w[:3, 0] + y * c2w[:3, 1] + c2w[:3, 2]  # [N, 3] world
        origins = np.broadcast_to(c2w[:3, 3], directions.shape)
        rays = o3d.core.Tensor(np.concatenate([origins, directions], axis=1).astype(np.float32))
        hits = self._scene.cast_rays(rays, nthreads=1)
        depth = hits["t_hit"].numpy()  # [N]
        geometry = hits["geometry_ids"].numpy().astype(np.int64)
        normals = hits["primitive_normals"].numpy()
        missed = ~np.isfinite(depth)
        depth = np.where(missed, 1e3, depth).astype(np.float32)
        geometry = np.where(missed, 0, geometry)
        points = origins + directions * depth[:, None]  # [N, 3] world hit points
        rgb = self._shade(points, normals, directions, geometry)
        rgb[missed] = 0.5
        rgb = rgb.reshape(k.height, k.width, 3).transpose(2, 0, 1)
        return Render(rgb=torch.from_numpy(np.ascontiguousarray(rgb)), depth=torch.from_numpy(depth.reshape(k.height, k.width)))

    def _shade(self, points: np.ndarray, normals: np.ndarray, directions: np.ndarray, geometry: np.ndarray) -> np.ndarray:
        table = self._material_table[geometry]  # [N, 8]
        base, accent, pattern, scale = table[:, 0:3], table[:, 3:6], table[:, 6], table[:, 7]
        # Texture coordinates: the two world axes most in the surface's plane (tri-planar).
        axis = np.abs(normals).argmax(axis=1)
        a = np.where(axis == 0, points[:, 2], points[:, 0]) / scale
        b = np.where(axis == 1, points[:, 2], points[:, 1]) / scale
        checker = 0.5 + 0.5 * np.tanh(3.0 * np.sin(np.pi * a) * np.sin(np.pi * b))
        stripes = 0.5 + 0.5 * np.tanh(2.5 * np.sin(2 * np.pi * a))
        waves = 0.5 + 0.5 * np.sin(2 * np.pi * (a + 0.3 * np.sin(2 * np.pi * b)))
        amount = np.select([pattern == CHECKER, pattern == STRIPES, pattern == WAVES], [checker, stripes, waves], 0.0)
        albedo = base + (accent - base) * amount[:, None]
        # Lambert shading with the normal turned towards the viewer (the room is seen from inside).
        facing = np.sign(-(normals * directions).sum(axis=1, keepdims=True))
        light = np.asarray(self.light_direction, dtype=np.float32)
        light = -light / np.linalg.norm(light)  # direction towards the light
        diffuse = np.clip((normals * facing * light).sum(axis=1, keepdims=True), 0.0, 1.0)
        return np.clip(albedo * (0.55 + 0.45 * diffuse), 0.0, 1.0).astype(np.float32)


def _pastel(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(0.55, 0.9, size=3))


def _muted(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(0.25, 0.6, size=3))


def _saturated(rng: np.random.Generator) -> tuple[float, float, float]:
    color = rng.uniform(0.1, 0.95, size=3)
    color[rng.integers(0, 3)] = rng.uniform(0.8, 1.0)
    return tuple(float(c) for c in color)


def _shade(color: tuple[float, float, float], factor: float) -> tuple[float, float, float]:
    return tuple(float(c * factor) for c in color)


# name -> seed offset; a world is (name, seed): the same pair always builds the same room.
_WORLD_SEEDS = {"room": 0, "studio": 1000, "gallery": 2000}
WORLD_NAMES = tuple(_WORLD_SEEDS)
DEFAULT_WORLD = "room"


def make_world(name: str = DEFAULT_WORLD, seed: int = 0) -> SyntheticWorld:
    """Build the embedded world ``name`` with ``seed``. Names: ``room`` (default), ``studio``, ``gallery``."""
    if name not in _WORLD_SEEDS:
        raise ValueError(f"unknown world {name!r}; accepted: {', '.join(WORLD_NAMES)}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"world seed must be a non-negative integer, got {seed!r}")
    return SyntheticWorld(name=name, seed=_WORLD_SEEDS[name] + int(seed))
