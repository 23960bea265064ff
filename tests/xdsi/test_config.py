"""xdsi.config: defaults, the TOML file, XDSI_ variables, flags, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdsi.config import ConfigError, installation_oid_root, is_oid, load_config


def test_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.database.url == f"sqlite:///{tmp_path / 'xdsi.sqlite'}"
    assert config.repository.blob_dir == str(tmp_path / "blobs")


def test_oid_root_is_made_once_under_the_uuid_arc(tmp_path: Path) -> None:
    first = installation_oid_root(tmp_path)
    assert first.startswith("2.25.") and is_oid(first)
    assert installation_oid_root(tmp_path) == first


def test_identifiers_derive_from_the_oid_root(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.registry.affinity_domain == f"{config.oid_root}.1"
    assert config.registry.home_community_id == f"urn:oid:{config.oid_root}.2"
    assert config.repository.repository_unique_id == f"{config.oid_root}.3"


def test_toml_file_in_the_data_dir_is_read(tmp_path: Path) -> None:
    (tmp_path / "xdsi.toml").write_text(
        "[registry]\nmax_results = 7\n[connection.http]\nport = 9999\n"
    )
    config = load_config(tmp_path, environ={})
    assert (config.registry.max_results, config.connection.http.port) == (7, 9999)


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    (tmp_path / "xdsi.toml").write_text("[registry]\nmax_results = 7\n")
    config = load_config(tmp_path, environ={"XDSI_REGISTRY__MAX_RESULTS": "9"})
    assert config.registry.max_results == 9


def test_connection_environment_variable(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"XDSI_CONNECTION__MLLP__PORT": "3575"})
    assert config.connection.mllp.port == 3575


def test_flags_override_the_environment(tmp_path: Path) -> None:
    config = load_config(
        tmp_path,
        environ={"XDSI_DATABASE__URL": "sqlite:///env.db"},
        overrides={"database": {"url": "sqlite:///flag.db"}},
    )
    assert config.database.url == "sqlite:///flag.db"


def test_unset_flags_do_not_override(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={}, overrides={"connection.http": {"port": None}})
    assert config.connection.http.port == 8080


def test_other_xdsi_variables_are_ignored(tmp_path: Path) -> None:
    load_config(tmp_path, environ={"XDSI_REQUIRE_INTEROP": "1"})


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "xdsi.toml").write_text("[registry]\nmax_result = 7\n")
    with pytest.raises(ConfigError, match="max_result"):
        load_config(tmp_path, environ={})


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(tmp_path, environ={"XDSI_REGSTRY__MAX_RESULTS": "1"})


def test_bad_boolean_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="enabled"):
        load_config(tmp_path, environ={"XDSI_REGISTRY__ENABLED": "maybe"})


def test_repository_unique_id_must_be_an_oid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repository_unique_id"):
        load_config(tmp_path, environ={"XDSI_REPOSITORY__REPOSITORY_UNIQUE_ID": "1.02.3"})


def test_home_community_id_must_be_urn_oid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="home_community_id"):
        load_config(tmp_path, environ={"XDSI_REGISTRY__HOME_COMMUNITY_ID": "1.2.3"})


def test_port_out_of_range_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_config(tmp_path, overrides={"connection.http": {"port": 70000}}, environ={})


def test_audit_destinations_are_a_comma_list(tmp_path: Path) -> None:
    config = load_config(
        tmp_path, environ={"XDSI_AUDIT__DESTINATIONS": "tls://a:6514, udp://b:514"}
    )
    assert config.audit.destinations == ("tls://a:6514", "udp://b:514")


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path, tmp_path / "absent.toml", environ={})


PG = "postgresql://xdsi@db.example.org/xdsi"


def test_one_process_by_default(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).server.workers == 1


def test_workers_share_a_postgresql_database(tmp_path: Path) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"server": {"workers": 2}, "database": {"url": PG}}
    )
    assert config.server.workers == 2
    assert config.audit.spool_url == PG  # the spool is shared with it


def test_sendfile_is_auto_unless_set(tmp_path: Path) -> None:
    assert load_config(tmp_path, environ={}).server.sendfile == "auto"
    config = load_config(tmp_path, environ={"XDSI_SERVER__SENDFILE": "never"})
    assert config.server.sendfile == "never"
    with pytest.raises(ConfigError, match=r"\[server\] sendfile: 'sometimes'"):
        load_config(tmp_path, environ={"XDSI_SERVER__SENDFILE": "sometimes"})


@pytest.mark.parametrize("workers", ["0", "-1", "65"])
def test_workers_out_of_range_are_an_error(tmp_path: Path, workers: str) -> None:
    with pytest.raises(ConfigError, match=r"\[server\] workers"):
        load_config(tmp_path, environ={"XDSI_SERVER__WORKERS": workers})


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, "PostgreSQL \\[database\\] url"),
        ({"audit": {"spool_url": "sqlite:////tmp/spool.sqlite3"}}, "PostgreSQL \\[audit\\]"),
        ({"imaging_source": {"pacs_wado_rs": "http://pacs/dicom-web"}}, "backing PACS"),
    ],
)
def test_what_several_workers_cannot_share_is_refused(
    tmp_path: Path, overrides: dict, reason: str
) -> None:
    database = {} if not overrides else {"database": {"url": PG}}
    with pytest.raises(ConfigError, match=reason):
        load_config(
            tmp_path, environ={}, overrides={"server": {"workers": 2}, **database, **overrides}
        )


def test_several_workers_without_auditing_need_no_shared_spool(tmp_path: Path) -> None:
    config = load_config(
        tmp_path,
        environ={},
        overrides={
            "server": {"workers": 2},
            "database": {"url": PG},
            "audit": {"enabled": False, "spool_url": "sqlite:////tmp/spool.sqlite3"},
        },
    )
    assert config.server.workers == 2
