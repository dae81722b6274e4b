"""The image store's interface (sdrest.images): the same tests against the folder store and the
PostgreSQL store (a real server, tests/postgres_helpers.py), plus what only the database has
(rows that go with their job, its schema ledger) and the ``image_store`` setting."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from sdrest.images import ImageStore, ImageStoreError, open_image_store
from sdrest.images.files import FileImageStore
from sdrest.images.pgimages import PgImageStore
from sdrest.images.store import encode_file, file_parameters, split_file
from sdrest.jobs import JobStore, SqliteJobStore
from sdrest.jobs.pgstore import PostgresJobStore
from sdrest.outputs import write_image
from sdrest.settings import Settings, SettingsError


@dataclass
class Stores:
    """One test's image store, the job store whose jobs it holds files of, and the staging folder."""

    kind: str
    jobs: JobStore
    images: ImageStore
    staging: Path

    def job(self) -> str:
        return self.jobs.create("generate", {"prompt": "p"}).id

    def write(self, job_id: str, count: int = 1, **options: object) -> list[Path]:
        """What a worker process writes for ``job_id``: images with their sidecars."""
        return [
            write_image(
                Image.new("RGB", (80, 40), (200, 10 * n, 30)),
                self.staging / job_id,
                str(n),
                infotext=f"a red apple {n}\nSteps: 1, Seed: {n}",
                metadata={"seed": n},
                **options,  # type: ignore[arg-type]
            )
            for n in range(count)
        ]


@pytest.fixture(params=["files", "database"])
def stores(request, tmp_path) -> Iterator[Stores]:
    staging = tmp_path / "outputs"
    if request.param == "files":
        jobs: JobStore = SqliteJobStore(tmp_path / "jobs.sqlite3")
        images: ImageStore = FileImageStore(staging)
    else:
        jobs = PostgresJobStore(request.getfixturevalue("postgres_url"))
        images = PgImageStore(jobs.database, staging=staging)
    with jobs:
        yield Stores(request.param, jobs, images, staging)


def test_published_files_read_back_byte_for_byte(stores: Stores) -> None:
    job = stores.job()
    written = {p.name: p.read_bytes() for p in stores.write(job, 2)}
    sidecar = (stores.staging / job / "0.json").read_bytes()
    stores.images.publish(job)
    assert stores.images.names(job) == ["0.json", "0.png", "1.json", "1.png"]
    for name, data in written.items():
        stored = stores.images.open(job, name)
        assert stored is not None
        assert (stored.read(), stored.size, stored.content_type) == (data, len(data), "image/png")
    json_file = stores.images.open(job, "0.json")
    assert json_file is not None and json_file.read() == sidecar and json_file.content_type == "application/json"
    assert encode_file(stores.images, job, f"{job}/1.png") == base64.b64encode(written["1.png"]).decode()
    assert stores.images.open(job, "2.png") is None
    # The folder store serves the worker's folder; the database leaves no folder behind.
    assert (stores.staging / job).exists() is (stores.kind == "files")


def test_parameters_come_from_the_image_then_its_stored_sidecar(stores: Stores) -> None:
    job = stores.job()
    stores.write(job, 1)  # PNG: the parameters are in the image
    stores.images.publish(job)
    assert file_parameters(stores.images, job, f"{job}/0.png") == ("a red apple 0\nSteps: 1, Seed: 0", {"seed": 0})
    other = stores.job()
    stores.write(other, 1, fmt="jpeg", embed=False)  # nothing in the image: only the sidecar has them
    stores.images.publish(other)
    assert file_parameters(stores.images, other, f"{other}/0.jpg") == ("a red apple 0\nSteps: 1, Seed: 0", {"seed": 0})
    stored = stores.images.open(other, "0.jpg")
    assert stored is not None and stored.content_type == "image/jpeg"


def test_thumbnails_are_made_once_and_kept_with_the_job(stores: Stores) -> None:
    job = stores.job()
    stores.write(job, 1)
    stores.images.publish(job)
    first = stores.images.thumbnail(job, "0.png", 50)  # served as the 64 size
    assert first is not None
    with Image.open(io.BytesIO(first.read())) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (64, 32))
    again = stores.images.thumbnail(job, "0.png", 64)
    assert again is not None and again.read() == first.read() and again.modified == first.modified
    assert stores.images.names(job) == ["0.json", "0.png"]  # thumbnails are not the job's files
    assert stores.images.thumbnail(job, "5.png", 64) is None


def test_delete_removes_every_file_and_thumbnail_and_is_idempotent(stores: Stores) -> None:
    job, kept = stores.job(), stores.job()
    stores.write(job, 2)
    stores.write(kept, 1)
    for each in (job, kept):
        stores.images.publish(each)
    assert stores.images.thumbnail(job, "0.png", 32) is not None
    stores.images.delete_job(job)
    assert stores.images.names(job) == [] and stores.images.open(job, "0.png") is None
    assert not (stores.staging / job).exists()
    stores.images.delete_job(job)  # nothing left: nothing to do
    assert stores.images.names(kept) == ["0.json", "0.png"]


def test_a_new_attempt_replaces_the_discarded_one(stores: Stores) -> None:
    job = stores.job()
    stores.write(job, 2)
    stores.images.publish(job)
    stores.images.delete_job(job)  # the worker discards an attempt that did not complete
    stores.write(job, 1)
    stores.images.publish(job)
    assert stores.images.names(job) == ["0.json", "0.png"]


def test_a_job_whose_staging_folder_has_nothing_publishes_nothing(stores: Stores) -> None:
    job = stores.job()
    stores.images.publish(job)  # a job that wrote no file (a model load)
    assert stores.images.names(job) == []


@pytest.mark.parametrize(
    ("job", "name", "field"),
    [
        ("../x", "0.png", "job_id"),
        ("job", "../0.png", "name"),
        ("job", "a/0.png", "name"),
        ("job", ".hidden", "name"),
        ("job", "", "name"),
        ("job", "0.png\0", "name"),
        ("/etc", "passwd", "job_id"),
    ],
)
def test_names_that_are_not_plain_are_refused_by_field(stores: Stores, job: str, name: str, field: str) -> None:
    for call in (
        lambda: stores.images.open(job, name),
        lambda: stores.images.thumbnail(job, name, 64),
    ):
        with pytest.raises(ValueError, match=f"^{field}: must be a plain name"):
            call()
    if field == "job_id":
        for call in (lambda: stores.images.names(job), lambda: stores.images.delete_job(job)):
            with pytest.raises(ValueError, match=r"^job_id: must be a plain name"):
                call()


# --- input images (a request's init image, mask, ...) -----------------------------------------------


def _save_inputs(data_dir: Path, folder: str = "inputs/req1") -> dict[str, bytes]:
    """What the API node saves for a request: its input images, as PNG files."""
    (data_dir / folder).mkdir(parents=True)
    for name, color in (("init_image", (10, 200, 30)), ("mask_image", (255, 255, 255))):
        Image.new("RGB", (16, 16), color).save(data_dir / folder / f"{name}.png")
    return {p.name: p.read_bytes() for p in (data_dir / folder).iterdir()}


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def test_inputs_reach_the_worker_for_every_attempt_until_deleted(stores: Stores, tmp_path: Path) -> None:
    api = tmp_path / "api"
    # The folder store is one machine (or a shared folder): the worker reads the API node's.
    worker = tmp_path / "worker" if stores.kind == "database" else api
    saved = _save_inputs(api)
    stores.images.publish_inputs(api, "inputs/req1")
    for _attempt in range(2):  # a job that goes back to the queue fetches them again
        stores.images.fetch_inputs(worker, "inputs/req1")
        assert _files(worker / "inputs" / "req1") == saved
        stores.images.drop_fetched_inputs(worker, "inputs/req1")
    stores.images.delete_inputs(api, "inputs/req1")
    stores.images.delete_inputs(api, "inputs/req1")  # idempotent
    stores.images.fetch_inputs(worker, "inputs/req1")
    assert _files(worker / "inputs" / "req1") == {} and _files(api / "inputs" / "req1") == {}


def test_the_folder_store_keeps_inputs_where_they_were_saved(tmp_path: Path) -> None:
    images = FileImageStore(tmp_path / "outputs")
    saved = _save_inputs(tmp_path)
    images.publish_inputs(tmp_path, "inputs/req1")
    images.fetch_inputs(tmp_path, "inputs/req1")
    images.drop_fetched_inputs(tmp_path, "inputs/req1")
    assert _files(tmp_path / "inputs" / "req1") == saved  # as before: until the job is deleted


def test_database_inputs_leave_no_copy_on_either_node(postgres_url: str, tmp_path: Path) -> None:
    api, worker = tmp_path / "api", tmp_path / "worker"
    with PostgresJobStore(postgres_url) as jobs:
        images = PgImageStore(jobs.database, staging=tmp_path / "outputs")
        _save_inputs(api)
        images.publish_inputs(api, "inputs/req1")
        assert not (api / "inputs" / "req1").exists()
        with psycopg.connect(postgres_url) as conn:
            rows = conn.execute("SELECT folder, name FROM input_files ORDER BY name").fetchall()
        assert rows == [("inputs/req1", "init_image.png"), ("inputs/req1", "mask_image.png")]
        images.fetch_inputs(worker, "inputs/req1")
        images.drop_fetched_inputs(worker, "inputs/req1")
        assert not (worker / "inputs" / "req1").exists()


@pytest.mark.parametrize(
    "folder", ["../inputs/x", "inputs/../../etc", "inputs/a/b", "outputs/x", "inputs/.hidden", "inputs/", "", "inputs"]
)
def test_input_folders_that_are_not_plain_are_refused_by_field(stores: Stores, tmp_path: Path, folder: str) -> None:
    for method in (
        stores.images.publish_inputs,
        stores.images.fetch_inputs,
        stores.images.drop_fetched_inputs,
        stores.images.delete_inputs,
    ):
        with pytest.raises(ValueError, match=r"^inputs: "):
            method(tmp_path, folder)


def test_an_inputs_folder_that_is_a_link_out_is_not_followed(stores: Stores, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.png").write_bytes(b"x")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "req1").symlink_to(outside)
    with pytest.raises(ValueError, match=r"^inputs: "):
        stores.images.delete_inputs(tmp_path, "inputs/req1")
    assert (outside / "keep.png").exists()


def test_a_result_file_of_another_job_is_refused() -> None:
    assert split_file("job-a", "job-a/0.png") == "0.png"
    for file in ("job-b/0.png", "job-a/../job-b/0.png", "job-a/sub/0.png", "0.png"):
        with pytest.raises(ValueError, match=r"^file: "):
            split_file("job-a", file)


def test_the_folder_store_does_not_follow_a_link_out_of_its_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    (tmp_path / "outputs" / "job").mkdir(parents=True)
    (tmp_path / "outputs" / "job" / "0.png").symlink_to(secret)
    assert FileImageStore(tmp_path / "outputs").open("job", "0.png") is None


# --- the database only ------------------------------------------------------------------------


def _rows(url: str, job_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM job_files WHERE job_id = %s", (job_id,)).fetchone()
    assert row is not None
    return int(row[0])


def test_deleting_a_job_deletes_its_rows(postgres_url: str, tmp_path: Path) -> None:
    with PostgresJobStore(postgres_url) as jobs:
        stores = Stores("database", jobs, PgImageStore(jobs.database, staging=tmp_path), tmp_path)
        job = stores.job()
        stores.write(job, 2)
        stores.images.publish(job)
        assert stores.images.thumbnail(job, "1.png", 32) is not None
        assert _rows(postgres_url, job) == 5  # 2 images, 2 sidecars, 1 thumbnail
        jobs.cancel(job)
        assert jobs.delete(job) is not None
        assert _rows(postgres_url, job) == 0


def test_files_of_a_job_deleted_before_they_are_stored_are_dropped(postgres_url: str, tmp_path: Path) -> None:
    with PostgresJobStore(postgres_url) as jobs:
        images = PgImageStore(jobs.database, staging=tmp_path)
        job = jobs.create("generate", {"prompt": "p"}).id
        Stores("database", jobs, images, tmp_path).write(job, 1)
        jobs.cancel(job)
        jobs.delete(job)
        images.publish(job)
        assert _rows(postgres_url, job) == 0 and not (tmp_path / job).exists()


def test_nodes_migrate_once_and_a_newer_schema_is_refused(postgres_url: str, tmp_path: Path) -> None:
    with PostgresJobStore(postgres_url) as jobs:
        PgImageStore(jobs.database, staging=tmp_path)
        PgImageStore(jobs.database, staging=tmp_path)  # a second node: nothing to do
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            assert conn.execute("SELECT version FROM image_schema_version ORDER BY version").fetchall() == [(1,), (2,)]
            conn.execute("INSERT INTO image_schema_version VALUES (3, 0)")
        with pytest.raises(ImageStoreError, match="image schema version 3; this sdrest knows only up to 2"):
            PgImageStore(jobs.database, staging=tmp_path)


# --- the setting ---------------------------------------------------------------------------------


def test_auto_follows_the_store_and_files_stay_the_default(postgres_url: str, tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path)
    with SqliteJobStore(tmp_path / "jobs.sqlite3") as jobs:
        files = open_image_store(local, jobs)
        assert isinstance(files, FileImageStore) and files.root == tmp_path / "outputs"
    shared = Settings(data_dir=tmp_path, store=postgres_url)
    with PostgresJobStore(postgres_url) as jobs:
        assert isinstance(open_image_store(shared, jobs), PgImageStore)
        forced = Settings(data_dir=tmp_path, store=postgres_url, image_store="files")
        assert isinstance(open_image_store(forced, jobs), FileImageStore)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"image_store": "database"}, "image_store: database needs a postgresql:// --store"),
        ({"image_store": "database", "store": "sqlite:///jobs.db"}, "image_store: database needs a postgresql://"),
        ({"image_store": "s3"}, "image_store: must be one of auto, files, database"),
    ],
)
def test_bad_image_store_settings_are_refused_by_name(values: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}"):
        Settings(**values).validate()  # type: ignore[arg-type]
