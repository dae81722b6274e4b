"""Everything on disk that belongs to one job: the images it wrote and the inputs it was given.

One place for deleting a job's files, used by ``DELETE /jobs/{id}`` and by retention (which
must not reach up into the API package for it).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from sdrest.outputs import discard_job_outputs
from sdrest.settings import Settings


def remove_job_files(settings: Settings, job_id: str, params: Mapping[str, Any]) -> None:
    """Remove the job's outputs folder and its saved input images (kept only inside
    ``data_dir/inputs``: a stored path pointing elsewhere is ignored, never followed)."""
    discard_job_outputs(settings.outputs_dir, job_id)
    inputs = params.get("_inputs")
    if inputs:
        target = (settings.data_dir / inputs).resolve()
        if target.is_relative_to((settings.data_dir / "inputs").resolve()):
            shutil.rmtree(target, ignore_errors=True)
