"""A cluster without a shared image folder: an API node (``serve --no-worker``) and a worker node
(``sdrest worker``) on one PostgreSQL database, each with its own data and outputs folder. The
worker's images reach the database (``--image-store auto``), and clients of the API node get
them: the file, a thumbnail, base64 in the native, A1111 and OpenAI answers; deleting the job
deletes its rows. Input images (img2img, inpainting) travel the other way, through the database
too: the worker node reads them from no folder the API node wrote."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from harness import FAST, link_models
from helpers import test_image
from postgres_helpers import PostgresCluster
from server_helpers import Server, WorkerNode, png_base64

pytestmark = pytest.mark.slow


class Cluster:
    def __init__(self, url: str, api: Server, worker_data: Path) -> None:
        self.url = url
        self.api = api
        self.worker_data = worker_data
        self.worker_outputs = worker_data / "outputs"

    def rows(self, job_id: str) -> list[str]:
        with psycopg.connect(self.url) as conn:
            found = conn.execute("SELECT name FROM job_files WHERE job_id = %s ORDER BY name", (job_id,)).fetchall()
        return [name for (name,) in found]

    def inputs_folder(self, job_id: str) -> str:
        """The job's inputs folder (``_inputs``, relative to a data folder)."""
        with psycopg.connect(self.url) as conn:
            row = conn.execute("SELECT params FROM jobs WHERE id = %s", (job_id,)).fetchone()
        assert row is not None
        return str(json.loads(row[0])["_inputs"])

    def input_rows(self, folder: str | None = None) -> list[str]:
        """The names of the rows of ``input_files`` (of ``folder``, or of every folder)."""
        query, args = "SELECT name FROM input_files ORDER BY name", ()
        if folder is not None:
            query, args = "SELECT name FROM input_files WHERE folder = %s ORDER BY name", (folder,)
        with psycopg.connect(self.url) as conn:
            return [name for (name,) in conn.execute(query, args).fetchall()]

    def no_folder_holds(self, job_id: str) -> bool:
        return not (self.api.data_dir / "outputs" / job_id).exists() and not (self.worker_outputs / job_id).exists()


@pytest.fixture(scope="module")
def cluster(models, postgres: PostgresCluster, tmp_path_factory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("no-shared-folder")
    url = postgres.create_database()
    models_dir = link_models(models, root / "models")
    (root / "api").mkdir()
    api = Server(root / "api", models_dir, "--no-worker", "--model", "sd1", "--store", url)
    node = WorkerNode(root, models_dir, "img-w", "--data-dir", str(root / "worker"), "--store", url, "--model", "sd1")
    try:
        api.start(wait_for_worker=False)
        node.start().wait_live(api)
        yield Cluster(url, api, root / "worker")
    finally:
        node.stop()
        api.stop()
        postgres.drop_database(url)


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_the_api_node_serves_an_image_the_worker_node_made(cluster: Cluster) -> None:
    api = cluster.api
    job = api.submit(seed=21, wait=True)
    assert (job["status"], job["worker"]) == ("completed", "img-w"), job
    response = api.get(job["images"][0]["url"])
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
    image = _png(response.content)
    assert (image.format, image.size) == ("PNG", (64, 64))
    assert "Seed: 21" in image.info["parameters"]  # the file as written, parameters included
    assert cluster.rows(job["job_id"]) == ["0.json", "0.png"]
    assert cluster.no_folder_holds(job["job_id"])
    # Caches revalidate it: the same bytes never change.
    again = api.get(job["images"][0]["url"], headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    head = api.get(job["images"][0]["url"], headers={"Range": "bytes=0-7"})
    assert head.status_code == 206 and head.content == b"\x89PNG\r\n\x1a\n"
    thumb = api.get(job["images"][0]["url"], params={"size": 32})
    assert thumb.status_code == 200 and _png(thumb.content).size == (32, 32)
    assert ".thumbnails/32-0.png.jpg" in cluster.rows(job["job_id"])
    with_data = api.get(f"/api/v1/generate/{job['job_id']}", params={"base64": "true"}).json()
    assert base64.b64decode(with_data["images"][0]["data"]) == response.content


def test_a1111_and_openai_answers_carry_the_images_from_the_database(cluster: Cluster) -> None:
    api = cluster.api
    fields = {"prompt": "a red apple", "width": 64, "height": 64, "steps": 1, "sampler_name": "Euler", "seed": 22}
    answer = api.post("/sdapi/v1/txt2img", json=fields)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    image = _png(base64.b64decode(body["images"][0]))
    assert (image.format, image.size) == ("PNG", (64, 64))
    assert "Seed: 22" in body["info"]  # the infotext read back from the stored image
    openai = api.post("/v1/images/generations", json={"prompt": "x", "size": "64x64", "steps": 1})
    assert openai.status_code == 200, openai.text
    assert _png(base64.b64decode(openai.json()["data"][0]["b64_json"])).size == (64, 64)


def test_deleting_the_job_on_the_api_node_deletes_its_rows(cluster: Cluster) -> None:
    api = cluster.api
    job = api.submit(**{**FAST, "seed": 23, "batch_count": 2}, wait=True)
    assert job["status"] == "completed" and len(cluster.rows(job["job_id"])) == 4
    assert api.delete(f"/api/v1/jobs/{job['job_id']}").status_code == 204
    assert cluster.rows(job["job_id"]) == []
    assert api.get(job["images"][0]["url"]).status_code == 404


def test_bad_image_requests_name_their_field(cluster: Cluster) -> None:
    api = cluster.api
    job = api.submit(seed=24, wait=True)
    missing = api.get(f"/api/v1/jobs/{job['job_id']}/images/3")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "index"
    bad_size = api.get(f"/api/v1/jobs/{job['job_id']}/images/0", params={"size": "big"})
    assert bad_size.status_code == 400 and bad_size.json()["error"]["field"] == "size"
    unknown = api.get("/api/v1/jobs/..etc/images/0")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "job_id"


def test_img2img_and_inpaint_inputs_reach_the_worker_node_through_the_database(cluster: Cluster) -> None:
    api = cluster.api
    plain = api.submit(seed=31, wait=True)
    init = png_base64(test_image(64))
    img2img = api.submit(seed=31, init_image=init, strength=0.5, wait=True)
    assert (img2img["status"], img2img["mode"], img2img["worker"]) == ("completed", "img2img", "img-w"), img2img
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    inpaint = api.submit(seed=31, init_image=init, mask_image=png_base64(mask), wait=True)
    assert (inpaint["status"], inpaint["mode"]) == ("completed", "inpaint"), inpaint
    pixels = [api.get(job["images"][0]["url"]).content for job in (plain, img2img, inpaint)]
    assert len(set(pixels)) == 3  # the init image (and the mask) changed what the seed makes
    # The inputs are rows; neither node keeps a copy once the job ran.
    folders = [cluster.inputs_folder(job["job_id"]) for job in (img2img, inpaint)]
    assert [cluster.input_rows(f) for f in folders] == [["init_image.png"], ["init_image.png", "mask_image.png"]]
    for folder in folders:
        assert not (api.data_dir / folder).exists() and not (cluster.worker_data / folder).exists()
    # They go with their job.
    for job, folder in zip((img2img, inpaint), folders, strict=True):
        assert api.delete(f"/api/v1/jobs/{job['job_id']}").status_code == 204
        assert cluster.input_rows(folder) == []


def test_a_bad_input_image_is_refused_by_field_and_stores_nothing(cluster: Cluster) -> None:
    before = cluster.input_rows()
    response = cluster.api.post(
        "/api/v1/generate", json={**FAST, "init_image": png_base64(test_image(64)), "mask_image": "not an image"}
    )
    assert response.status_code in (400, 422) and response.json()["error"]["field"] == "mask_image", response.text
    assert cluster.input_rows() == before
    assert not any((cluster.api.data_dir / "inputs").glob("*"))  # the saved init image went again
