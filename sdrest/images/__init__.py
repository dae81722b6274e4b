"""Where a job's finished files (images, their JSON sidecars, video clips) live, behind one
interface (:class:`~sdrest.images.store.ImageStore`): a folder (``--output-dir``, the default)
or the PostgreSQL database the jobs are in (``--image-store``; see docs/scale-out.md)."""

from sdrest.images.store import ImageStore, ImageStoreError, StoredFile, open_image_store

__all__ = ["ImageStore", "ImageStoreError", "StoredFile", "open_image_store"]
