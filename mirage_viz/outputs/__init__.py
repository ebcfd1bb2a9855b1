"""Layer 6, outputs: the files a rollout leaves (its output folder, PLY, MP4, GIF) in folders that never cost a file.

Imports pictures, the rollout and the layers under it; never the app.
"""

from mirage_viz.image import to_uint8_image
from mirage_viz.outputs.exports import VIDEO_FPS, export_animation, export_cache_ply, export_video, read_cache_ply
from mirage_viz.outputs.folder import MARKER, atomic_output_dir, check_output_dir
from mirage_viz.outputs.writer import OutputParts, write_outputs, write_rollout

__all__ = [
    "MARKER", "VIDEO_FPS", "OutputParts", "atomic_output_dir", "check_output_dir", "export_animation",
    "export_cache_ply", "export_video", "read_cache_ply", "to_uint8_image", "write_outputs", "write_rollout",
]
