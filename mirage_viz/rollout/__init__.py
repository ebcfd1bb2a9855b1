"""Layer 4, the rollout: what is asked and what it resolves to, one step, the engine, its records, drive mode.

Imports memories, the backbone, scenes, geometry and the base; never pictures, outputs or the app.
"""

from mirage_viz.rollout.config import (
    DEPTH_SOURCES,
    MAX_SEED,
    MAX_STEP_PIXELS,
    MAX_STEPS,
    MEMORY_SETTINGS,
    DepthSource,
    MemorySetting,
    RolloutConfig,
    RolloutPlan,
    RolloutSetup,
    memory_setting_of,
    plan_rollout,
)
from mirage_viz.rollout.engine import RolloutEngine, iter_rollout, make_memory, run_rollout
from mirage_viz.rollout.records import Rollout, StepRecord
from mirage_viz.rollout.step import STAGES, StageTimer, StepOutput, run_step, timed_ms
from mirage_viz.rollout.trace import (FIRST_HAND_TIE_BITS, PAPER_TIE_BITS, Candidate, CellTrace, EarlierView, RuleOwners,
                                      Winner, cell_of_pixel, owners_under_rules, pixels_of_cell, read_grid, trace_cell,
                                      trace_pixel)

__all__ = [
    "DEPTH_SOURCES", "FIRST_HAND_TIE_BITS", "MAX_SEED", "MAX_STEPS", "MAX_STEP_PIXELS", "MEMORY_SETTINGS", "STAGES", "DepthSource", "MemorySetting", "Rollout",
    "RolloutConfig",
    "RolloutEngine", "RolloutPlan", "RolloutSetup", "StageTimer", "StepOutput", "StepRecord", "iter_rollout",
    "make_memory", "memory_setting_of", "plan_rollout", "run_rollout", "run_step", "timed_ms",
    # trace a cell (mirage_viz.rollout.trace)
    "PAPER_TIE_BITS", "Candidate", "CellTrace", "EarlierView", "RuleOwners", "Winner", "cell_of_pixel",
    "owners_under_rules", "pixels_of_cell", "read_grid", "trace_cell", "trace_pixel",
]
