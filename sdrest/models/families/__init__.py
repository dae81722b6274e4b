"""Per-family rules: which architecture a file of one model type is for, from its tensors.

Each ``classify_*`` function takes a header's tensors and metadata and returns a
:data:`~sdrest.models.families.common.Verdict` (architecture, variant, details); the driver in
:mod:`sdrest.models.detect` picks the function for a file's model type.
"""
