"""Everything stored that belongs to one job: the images it wrote (in the image store) and the
inputs it was given (in the data folder).

One place for deleting a job's files, used by ``DELETE /jobs/{id}`` and by retention (which
must not reach up into the API package for it).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from sdrest.images import ImageStore
from sdrest.settings import Settings


def remove_job_files(settings: Settings, images: ImageStore, job_id: str, params: Mapping[str, Any]) -> None:
    """Remove the job's stored files and its saved input images (kept only inside
    ``data_dir/inputs``: a stored path pointing elsewhere is ignored, never followed)."""
    images.delete_job(job_id)
    inputs = params.get("_inputs")
    if inputs:
        target = (settings.data_dir / inputs).resolve()
        if target.is_relative_to((settings.data_dir / "inputs").resolve()):
            shutil.rmtree(target, ignore_errors=True)
