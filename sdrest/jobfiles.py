"""Everything stored that belongs to one job: the images it wrote and the inputs it was given
(both in the image store: a folder, or the database).

One place for deleting a job's files, used by ``DELETE /jobs/{id}`` and by retention (which
must not reach up into the API package for it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sdrest.images import ImageStore
from sdrest.settings import Settings

log = logging.getLogger("sdrest.jobs")


def remove_job_files(settings: Settings, images: ImageStore, job_id: str, params: Mapping[str, Any]) -> None:
    """Remove the job's stored files and its saved input images (kept only inside
    ``data_dir/inputs``: a stored path pointing elsewhere is ignored, never followed)."""
    images.delete_job(job_id)
    inputs = params.get("_inputs")
    if inputs:
        try:
            images.delete_inputs(settings.data_dir, inputs)
        except ValueError as exc:
            log.warning("job %s: its inputs are not removed: %s", job_id, exc)
