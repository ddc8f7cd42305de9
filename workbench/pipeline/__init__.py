"""`workbench run`: the whole path (train, analyze, prune, distill, quantize, profile, export, report)
from one TOML recipe, resumable stage by stage."""

from workbench.pipeline.recipe import (
    PipelineRecipe,
    describe_fields,
    load_recipe,
    parse_recipe,
)
from workbench.pipeline.run import report_dir, run_pipeline
from workbench.pipeline.stage_runner import (
    Stage,
    StageContext,
    StageCrashed,
    StageFailed,
    StageResult,
    run_stages,
)
from workbench.pipeline.stages import STAGE_NAMES, STAGES, stage_configs

__all__ = [
    "STAGES",
    "STAGE_NAMES",
    "PipelineRecipe",
    "Stage",
    "StageContext",
    "StageCrashed",
    "StageFailed",
    "StageResult",
    "describe_fields",
    "load_recipe",
    "parse_recipe",
    "report_dir",
    "run_pipeline",
    "run_stages",
    "stage_configs",
]
