"""Two real ``sdrest serve`` nodes on one PostgreSQL database (each with its own data folder) and
``sdrest users|keys`` run as a separate process: a user, a token or an API key made through one
is accepted by the other, and a revocation through one is refused by the other at once.

No job runs here: two nodes that both run jobs on one database are issue 15's next step."""

from __future__ import annotations

from pathlib import Path

from auth_helpers import PASSWORD, add_user_with_key, sdrest
from server_helpers import Server


def _who(node: Server, headers: dict[str, str]) -> tuple[int, str | None]:
    response = node.get("/api/v1/auth/profile", headers=headers)
    return response.status_code, response.json().get("username") if response.status_code == 200 else None


def test_tokens_and_keys_from_one_node_work_on_another_until_revoked(tmp_path: Path, postgres_url: str) -> None:
    models = tmp_path / "models"  # none: no job runs
    for folder in (models, tmp_path / "node-a", tmp_path / "node-b"):
        folder.mkdir()
    # Each node its own worker id (the host name is the default): a live one cannot be taken twice.
    nodes = [
        Server(tmp_path / name, models, "--auth", "jwt", "--store", postgres_url, env={"SDREST_WORKER_ID": name})
        for name in ("node-a", "node-b")
    ]
    node_a, node_b = nodes
    try:
        node_a.start()
        cli = tmp_path / "admin"  # the admin's own machine: no server, no shared folder
        key = {"X-API-Key": add_user_with_key(postgres_url, cli)}
        node_b.start()

        login = node_a.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = {"Authorization": f"Bearer {login.json()['access_token']}"}
        refresh = {"Authorization": f"Bearer {login.json()['refresh_token']}"}
        for node in nodes:
            assert _who(node, token) == (200, "alice")
            assert _who(node, key) == (200, "alice")
        renewed = node_b.post("/api/v1/auth/refresh", headers=refresh)  # A's refresh token, on B
        assert renewed.status_code == 200, renewed.text
        fresh = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
        assert _who(node_a, fresh) == (200, "alice")

        # Logging out on B revokes the token on A too; the renewed one is not touched.
        assert node_b.post("/api/v1/auth/logout", headers=token).status_code == 200
        assert _who(node_a, token) == (401, None)
        assert _who(node_a, fresh) == (200, "alice")

        # An admin revokes the key from the command line: both nodes refuse it at once.
        assert sdrest("keys", "revoke", key["X-API-Key"][:8], "--store", postgres_url, data_dir=cli).returncode == 0
        for node in nodes:
            assert _who(node, key) == (401, None)

        # Disabling alice ends her sessions and her logins on every node.
        assert sdrest("users", "disable", "alice", "--store", postgres_url, data_dir=cli).returncode == 0
        for node in nodes:
            assert _who(node, fresh) == (401, None)
            assert node.post("/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}).status_code == 401
    finally:
        for node in nodes:
            node.stop()
    for node in nodes:  # neither node kept auth or a signing secret of its own
        assert not (node.data_dir / "auth.sqlite3").exists()
        assert not (node.data_dir / "jwt_secret").exists()
