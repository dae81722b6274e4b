"""Every endpoint declares its access rule, in one place."""

from __future__ import annotations

from sdrest.app import close_app, create_app
from sdrest.auth.rules import PUBLIC, ROLES, RULES
from sdrest.settings import Settings


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models"), start_worker=False)
    try:
        endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
        missing = sorted(endpoints - set(RULES))
        assert not missing, f"endpoints without an access rule: {missing}"
        stale = sorted(set(RULES) - endpoints)
        assert not stale, f"rules for endpoints that no longer exist: {stale}"
        assert all(rule in (PUBLIC, *ROLES) for rule in RULES.values())
    finally:
        close_app(app)


def test_state_changing_model_operations_are_admin_only() -> None:
    for endpoint in ("models.load", "models.unload", "models.scan", "auth.attempts", "system.system"):
        assert RULES[endpoint] == "admin"
    public = {endpoint for endpoint, rule in RULES.items() if rule == PUBLIC}
    assert public == {"auth.login", "auth.refresh", "system.openapi", "ui.home", "ui.ui", "static"}


def test_an_endpoint_without_a_rule_is_refused(tmp_path) -> None:
    app = create_app(
        Settings(data_dir=tmp_path / "data", models_dir=tmp_path / "models", auth="jwt"), start_worker=False
    )
    try:
        app.add_url_rule("/api/v1/forgotten", "forgotten", lambda: "secret")
        response = app.test_client().get("/api/v1/forgotten")
        assert response.status_code == 403 and b"secret" not in response.data
    finally:
        close_app(app)
