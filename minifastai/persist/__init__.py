"""Persistence, one concern per file, each importing only the layers below it (as accelerate's checkpointing):

- `atomic`: atomic writes and the temporaries of killed saves;
- `fileformat`: checksums, safe loading, entry checks, plain values, version manifests;
- `rng`: RNG states;
- `checkpoint`: `save` / `load` / `resume=True`;
- `snapshot`: everything a fit changes, put back exactly (`lr_find`, `dry_run`);
- `registry`: how each application's exports are rebuilt;
- `export`: `learn.export` and `load_learner`.
"""
from .atomic import STALE_AFTER, atomic_save, atomic_write, clean_stale_temporaries, stale_temporaries
from .checkpoint import (
    LATEST,
    RestoreCallbackStates,
    checkpoint_files,
    load_checkpoint,
    resume_latest,
    save_checkpoint,
    training_position,
)
from .export import ALLOCATION_SLACK, AllocationCap, export_learner, load_learner
from .fileformat import DamagedFileError, check_plain, check_state_dict, checksum, manifest, safe_load, with_checksum
from .registry import declare, known_rebuilders, register_learner_factory, register_rebuilder
from .rng import get_rng_state, loader_generators, set_rng_state

__all__ = ["atomic_write", "atomic_save", "stale_temporaries", "clean_stale_temporaries", "STALE_AFTER",
           "save_checkpoint", "load_checkpoint", "resume_latest", "checkpoint_files", "training_position",
           "RestoreCallbackStates", "LATEST", "export_learner", "load_learner", "AllocationCap", "ALLOCATION_SLACK",
           "DamagedFileError", "checksum", "with_checksum", "safe_load", "check_plain", "check_state_dict",
           "manifest", "get_rng_state", "set_rng_state", "loader_generators", "register_rebuilder", "declare",
           "register_learner_factory", "known_rebuilders"]
