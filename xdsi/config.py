"""xdsi configuration: one TOML file, ``XDSI_`` environment variables, command-line flags.

The shape follows the DICOM configuration model (PS3.15 Annex H, as dcm4che spells it):
one *device* (``[device]``) offers network *connections* (``[connection.http]``,
``[connection.mllp]``, ``[connection.dicom]``: host and port each) on which its
applications listen - the XDS registry, the repository and the imaging document
source with its DICOM application entity title (``[imaging_source]``).

Sources, lowest precedence first: built-in defaults, the TOML file, the environment,
``xdsi serve`` flags.  Every key ``[section] key`` has the environment variable
``XDSI_SECTION__KEY`` (``XDSI_REGISTRY__MAX_RESULTS=500``), connection keys have
``XDSI_CONNECTION__NAME__KEY`` (``XDSI_CONNECTION__HTTP__PORT=8080``), and the data
directory is ``XDSI_DATA_DIR``.  Booleans are ``true``/``false`` (also ``1``/``0``,
``yes``/``no``); lists are comma separated.  Unknown keys are errors.

Identifiers not configured are derived from a per-installation OID root under the
ISO/IEC 9834-8 UUID arc (``2.25.<uuid as integer>``), made once at first start and kept
in ``<data-dir>/oid-root``:

=================  ===========================================================
``<root>.1``       affinity domain: assigning authority of patient ids
``<root>.2``       home community id (as ``urn:oid:<root>.2``)
``<root>.3``       repositoryUniqueId
``<root>.4``       submission sourceId of the client commands
``<root>.5.<n>``   DocumentEntry uniqueIds made by the client commands
``<root>.6.<n>``   SubmissionSet uniqueIds made by the client commands
``<root>.7``       the Imaging Document Source's repositoryUniqueId
``<root>.8.<n>``   manifest (KOS) Series and SOP Instance UIDs, SubmissionSet uniqueIds
=================  ===========================================================

Everything is made by :func:`load_config`; nothing is read at import.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from soap.limits import Limits

CONFIG_FILE_NAME = "xdsi.toml"
AUDIT_SPOOL_FILE_NAME = "audit-spool.sqlite3"
DH_PARAMS_FILE_NAME = "dhparams.pem"
OID_ROOT_FILE_NAME = "oid-root"
ENV_PREFIX = "XDSI_"
ENV_SEPARATOR = "__"

# Arcs below the installation root (see the module docstring).
ARC_AFFINITY_DOMAIN = 1
ARC_HOME_COMMUNITY = 2
ARC_REPOSITORY = 3
ARC_SOURCE = 4
ARC_DOCUMENT = 5
ARC_SUBMISSION_SET = 6
ARC_IMAGING_SOURCE = 7
ARC_MANIFEST = 8

# ISO/IEC 9834-8 / ITU-T X.667: an OID made from a UUID is 2.25.<its 128-bit integer>
UUID_OID_ARC = "2.25"

# ITI TF-3 4.2.3.2.26 / DICOM PS3.5 9.1: an OID of digits and dots, no leading zeros
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
OID_MAX_LENGTH = 64
MAX_WORKERS = 64  # [server] workers: processes, not threads
SENDFILE_MODES = ("auto", "always", "never")  # [server] sendfile
# DICOM PS3.5 Table 6.2-1 (AE): 16 characters, no backslash or control characters
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")
# ITI TF-2 3.20.4: syslog over TLS (RFC 5425) or UDP (RFC 5426); the port may be left out
# a DICOM peer: AET@HOST:PORT, an IPv6 host in brackets
_DICOM_PEER = re.compile(r"[^@]{1,16}@(\[[0-9A-Fa-f:.]+\]|[^:@\[\]\s]+):\d{1,5}")
_AUDIT_DESTINATION = re.compile(r"^(tls|udp)://(\[[0-9A-Fa-f:.]+\]|[^/:\[\]\s]+)(:\d{1,5})?$")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; names the key."""


# --- sections -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Device:
    """PS3.15 Annex H dicomDevice: the one process xdsi runs as."""

    name: str = "xdsi"
    description: str = "xdsi XDS-I.b registry, repository and imaging document source"


@dataclass(frozen=True, slots=True)
class Connection:
    """PS3.15 Annex H dicomNetworkConnection: where one protocol listens."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False  # reserved: ITI-19 mutual TLS arrives with the ATNA milestone


@dataclass(frozen=True, slots=True)
class Connections:
    http: Connection = Connection(port=8080)
    mllp: Connection = Connection(port=2575)
    dicom: Connection = Connection(port=11112)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """The XDS Document Registry actor (ITI TF-1 10.1)."""

    enabled: bool = True
    affinity_domain: str = ""  # OID of the patient id assigning authority; "" = <root>.1
    home_community_id: str = ""  # urn:oid:...; "" = urn:oid:<root>.2
    max_results: int = 1000  # ITI-18 answers XDSTooManyResults above this
    accept_unvalidated_wsse_security: bool = False
    # the affinity domain's code set (the NIST codes.xml format); "" = codes not checked
    code_set_file: str = ""
    multi_patient_query: bool = False  # ITI-51 Multi-Patient Stored Query
    on_demand: bool = True  # ITI-61 Register On-Demand Document Entry
    remove_metadata: bool = True  # ITI-62 Remove Metadata (RMD)
    hl7v3_feed: bool = True  # ITI-44 Patient Identity Feed HL7 V3
    metadata_update: bool = True  # ITI-57 Update Document Set (Metadata Update option)


@dataclass(frozen=True, slots=True)
class RepositorySettings:
    """The XDS Document Repository actor (ITI TF-1 10.1)."""

    enabled: bool = True
    repository_unique_id: str = ""  # "" = <root>.3
    registry_url: str = ""  # "" = the registry in this process
    blob_dir: str = ""  # "" = <data-dir>/blobs
    remove_documents: bool = True  # ITI-86 Remove Documents (RMD)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = ""  # an SQLAlchemy URL; "" = sqlite:///<data-dir>/xdsi.sqlite


@dataclass(frozen=True, slots=True)
class ImagingSourceSettings:
    """The Imaging Document Source (RAD TF-1 18, XDS-I.b) and its DICOM application entity.

    Its images are its own (received by C-STORE on ``[connection.dicom]`` and STOW-RS)
    or, with ``pacs_wado_rs`` or ``pacs_dimse`` set, those of a backing PACS, fetched on
    demand into a cache of at most ``cache_max_bytes``.  The affinity-domain codes of
    the manifest's DocumentEntry are written ``code^codingScheme^displayName``.
    """

    enabled: bool = True
    ae_title: str = "XDSI"
    # RAD TF-3 4.68.4.1.2.3: the Imaging Document Source's own id; "" = <root>.7
    repository_unique_id: str = ""
    storage_dir: str = ""  # "" = <data-dir>/dicom
    peers: tuple[str, ...] = ()  # known DICOM peers, "AET@HOST:PORT"
    # AE titles (of peers, or the pacs_dimse PACS) that xdsi's own associations reach
    # over TLS, as [tls]'s node (ITI-19, PS3.15 B.1)
    tls_peers: tuple[str, ...] = ()
    # "AET=FILE": CA certificates one of tls_peers is authenticated against, in place
    # of [tls] ca and trusted_certs (a modality vendor's CA, say); repeat for more
    peer_ca: tuple[str, ...] = ()
    allow_unknown_callers: bool = True  # false: only the peers may associate
    pacs_wado_rs: str = ""  # the backing PACS's DICOMweb root URL
    pacs_dimse: str = ""  # the backing PACS as AET@HOST:PORT (C-FIND, C-MOVE to us)
    cache_max_bytes: int = 10 * 1024**3
    # seconds to connect to the WADO-RS PACS, and to wait for each of its bytes
    pacs_timeout: float = 60.0
    # CA certificates an https PACS is authenticated against; () = [tls] ca and
    # trusted_certs when [tls] is on, else the system's store (xdsi.imaging.pacs_ssl_context)
    pacs_ca: tuple[str, ...] = ()
    wado_rs_base_url: str = ""  # Retrieve URL in manifests; "" = <http listener>/dicomweb
    auto_publish: bool = True  # RAD-68 for studies received by C-STORE / STOW-RS
    stability_delay: float = 60.0  # seconds without new instances before publishing
    publish_interval: float = 5.0  # seconds between two looks for stable studies
    # the affinity domain's codes for the manifest (RAD TF-3 Table 4.68.4.1.2.3-1)
    class_code: str = "IMAGES^1.3.6.1.4.1.19376.1.2.6.1^Images"
    type_code: str = "18748-4^2.16.840.1.113883.6.1^Diagnostic imaging study"
    confidentiality_codes: tuple[str, ...] = ("N^2.16.840.1.113883.5.25^Normal",)
    healthcare_facility_type_code: str = (
        "RADDX^2.16.840.1.113883.5.11^Radiology diagnostics or therapeutics unit"
    )
    practice_setting_code: str = "R-3027B^SRT^Radiology"
    content_type_code: str = "18748-4^2.16.840.1.113883.6.1^Diagnostic imaging study"
    # CX.4 of the accession number when the images name no issuer (ITI TF-3 4.2.3.2.28)
    accession_issuer_oid: str = ""
    # CX.4 of sourcePatientId when the images name no Issuer of Patient ID; "" = the
    # affinity domain (the PACS's Patient IDs are the domain's)
    patient_id_issuer_oid: str = ""
    # zone of Study Date/Time when the images carry no Timezone Offset From UTC
    default_timezone: str = "UTC"

    @property
    def backing_pacs(self) -> bool:
        return bool(self.pacs_wado_rs or self.pacs_dimse)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How ``xdsi serve`` runs: ``workers`` processes share the HTTP listener, its
    connections dealt to them in turn by a supervisor (``xdsi.workers``).  The first
    worker also runs the MLLP and DICOM listeners and the automatic RAD-68.  More than
    one needs a PostgreSQL ``[database] url`` (and audit spool) that all of them share,
    and no backing PACS: its cache is kept by one process."""

    workers: int = 1
    # how attachment files leave on plain TCP (TLS always reads and writes them):
    # "auto" - by sendfile, except a file of up to 16 MiB to a client on this host,
    # which is copied (the reader would copy it out of the page cache itself, slower
    # than xdsi copies it); "always" - by sendfile; "never" - read and written by xdsi,
    # for a file system on which sendfile is not to be trusted (xdsi.zero_copy)
    sendfile: str = "auto"


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """ATNA: the audit record repositories (ITI-20) and this node's audit identity.

    Every event is spooled first (``spool_url``) and shipped from there; with no
    destination the events stay in the spool, so nothing is lost until one is set.
    The TLS keys are the client certificate (mutual authentication, RFC 5425 5.1) and
    the CA the repositories' certificates chain to; ``tls://`` destinations need all
    three.
    """

    # false: no auditing at all - not IHE ATNA conformant; for measurements and for
    # deployments that are not an ATNA Secure Node
    enabled: bool = True
    destinations: tuple[str, ...] = ()  # e.g. "tls://arr.example.org:6514", "udp://host:514"
    source_id: str = ""  # AuditSourceID; "" = the device name
    enterprise_site_id: str = ""  # AuditEnterpriseSiteID; "" = the device name
    # "" = the PostgreSQL --database when there is one (shared by every process),
    # else sqlite:///<data-dir>/audit-spool.sqlite3
    spool_url: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # events waiting for a destination beyond which new SOAP transactions are refused
    # with XDSRegistryBusy / XDSRepositoryBusy and a Security Alert is raised (records
    # are never dropped); 0 = no limit.  At ~3 KiB an event, the default is ~3 GiB.
    spool_limit: int = 1_000_000
    # "full": every spool commit is durable on disk (a record survives a power loss);
    # "normal" survives any crash of xdsi, and a power loss may take the last commits -
    # as the embedded registry's own registrations (atna.spool.SPOOL_SYNC; on a
    # PostgreSQL spool synchronous_commit off for the spool's connections)
    spool_sync: str = "full"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """ITI-19 Authenticate Node (``xdsi.tls``): with ``cert`` set, every listener
    (HTTP, MLLP, DICOM) speaks TLS and requires a client certificate that chains to one
    of ``ca`` or is one of ``trusted_certs`` (PEM, DER or BER files).  The client
    commands offer the same certificate and trust the same CAs."""

    cert: str = ""
    key: str = ""  # "" = the key is in the cert file
    ca: tuple[str, ...] = ()
    trusted_certs: tuple[str, ...] = ()
    dh_params: str = ""  # "" = <data-dir>/dhparams.pem, written at first start

    @property
    def enabled(self) -> bool:
        return bool(self.cert)


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    oid_root: str
    device: Device = Device()
    connection: Connections = Connections()
    registry: RegistrySettings = RegistrySettings()
    repository: RepositorySettings = RepositorySettings()
    database: DatabaseSettings = DatabaseSettings()
    limits: Limits = field(default_factory=Limits)
    imaging_source: ImagingSourceSettings = ImagingSourceSettings()
    audit: AuditSettings = AuditSettings()
    tls: TlsSettings = TlsSettings()
    server: ServerSettings = ServerSettings()
    source_file: Path | None = None

    def http_base_url(self) -> str:
        http = self.connection.http
        host = "127.0.0.1" if http.host in ("0.0.0.0", "::", "") else http.host
        scheme = "https" if self.tls.enabled else "http"
        return f"{scheme}://{host}:{http.port}"

    @property
    def registry_endpoint(self) -> str:
        return f"{self.http_base_url()}{REGISTRY_PATH}"

    @property
    def repository_endpoint(self) -> str:
        return f"{self.http_base_url()}{REPOSITORY_PATH}"

    @property
    def source_id(self) -> str:
        return f"{self.oid_root}.{ARC_SOURCE}"


REGISTRY_PATH = "/xds/registry"
REPOSITORY_PATH = "/xds/repository"
IMAGING_SOURCE_PATH = "/xdsi/imaging-source"
DICOMWEB_PATH = "/dicomweb"
HEALTH_PATH = "/health"

# The TOML sections and the dataclass each becomes.
SECTIONS: dict[str, type] = {
    "device": Device,
    "registry": RegistrySettings,
    "repository": RepositorySettings,
    "database": DatabaseSettings,
    "limits": Limits,
    "imaging_source": ImagingSourceSettings,
    "audit": AuditSettings,
    "tls": TlsSettings,
    "server": ServerSettings,
}
CONNECTION_NAMES = ("http", "mllp", "dicom")


# --- value conversion (table driven, by the field's type) -----------------------------

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    return int(str(value).strip())


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    return float(value)


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def _to_str_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"not a list of strings: {value!r}")


def _to_path(value: Any) -> Path:
    return Path(_to_str(value)).expanduser()


_CONVERTERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    Path: _to_path,
    tuple[str, ...]: _to_str_tuple,
}


def _converter(hint: Any) -> tuple[Callable[[Any], Any], bool]:
    """The converter for a field's type hint and whether the field may be None."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    return _CONVERTERS[hint], optional


def _build_section(cls: type, values: Mapping[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"[{where}]: unknown key(s) {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, raw in values.items():
        convert, optional = _converter(hints[name])
        try:
            kwargs[name] = None if optional and raw in ("", None) else convert(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[{where}] {name}: {exc}") from None
    return cls(**kwargs)


# --- gathering raw values: file, environment, overrides -------------------------------

Raw = dict[str, dict[str, Any]]  # section (or "connection.http") -> key -> raw value


def _merge(into: Raw, other: Mapping[str, Mapping[str, Any]]) -> None:
    for section, values in other.items():
        into.setdefault(section, {}).update(values)


def _from_toml(document: Mapping[str, Any], path: Path) -> Raw:
    raw: Raw = {}
    for section, values in document.items():
        if section == "connection":
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: [connection] must be a table of tables")
            for name, conn in values.items():
                raw[f"connection.{name}"] = dict(conn)
        elif section == "data_dir":
            raw.setdefault("", {})["data_dir"] = values
        elif isinstance(values, dict):
            raw[section] = dict(values)
        else:
            raise ConfigError(f"{path}: unknown top-level key {section!r}")
    return raw


def _from_environment(environ: Mapping[str, str]) -> Raw:
    """``XDSI_SECTION__KEY`` and ``XDSI_CONNECTION__NAME__KEY``; ``XDSI_DATA_DIR``.

    Other ``XDSI_`` variables without the ``__`` separator (``XDSI_REQUIRE_INTEROP``,
    ``XDSI_CONFIG``) are not configuration keys and are left alone.
    """
    raw: Raw = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        if rest == "data_dir":
            raw.setdefault("", {})["data_dir"] = value
            continue
        parts = rest.split(ENV_SEPARATOR)
        if len(parts) == 2:
            raw.setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 3 and parts[0] == "connection":
            raw.setdefault(f"connection.{parts[1]}", {})[parts[2]] = value
        elif len(parts) > 1:
            raise ConfigError(f"{name}: not a configuration key")
    return raw


# --- the installation OID root ---------------------------------------------------------


def installation_oid_root(data_dir: Path) -> str:
    """The OID root kept in ``<data-dir>/oid-root``, made at first use (2.25 arc).

    Written to a temp file and linked into place, so two processes starting at once
    agree on one root.
    """
    path = data_dir / OID_ROOT_FILE_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        temp = data_dir / f".{OID_ROOT_FILE_NAME}.{uuid.uuid4().hex}"
        temp.write_text(f"{UUID_OID_ARC}.{uuid.uuid4().int}\n", encoding="ascii")
        try:
            os.link(temp, path)  # fails if another process was first
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    root = path.read_text(encoding="ascii").strip()
    if not is_oid(root):
        raise ConfigError(f"{path}: not an OID: {root!r}")
    return root


def is_oid(value: str) -> bool:
    return len(value) <= OID_MAX_LENGTH and _OID.match(value) is not None


# --- load, derive, validate ---------------------------------------------------------------


def load_config(
    data_dir: Path | str | None = None,
    config_file: Path | str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read defaults, the TOML file, the environment and ``overrides`` (flags).

    ``overrides`` uses the raw shape ``{"registry": {"max_results": 10},
    "connection.http": {"port": 8080}}``; None values are ignored.
    ``config_file`` None means ``$XDSI_CONFIG`` or else ``<data-dir>/xdsi.toml`` if
    present.  ``data_dir`` None means ``$XDSI_DATA_DIR``, else the file's ``data_dir``,
    else ``./data``.
    """
    env = dict(os.environ if environ is None else environ)
    env_raw = _from_environment(env)
    flag_raw: Raw = {}
    for section, values in (overrides or {}).items():
        flag_raw[section] = {k: v for k, v in values.items() if v is not None}

    early_dir = data_dir or env_raw.get("", {}).get("data_dir")
    if config_file is None:
        config_file = env.get("XDSI_CONFIG") or None
    if config_file is None:
        candidate = Path(early_dir or "data") / CONFIG_FILE_NAME
        config_file = candidate if candidate.is_file() else None
    file_raw: Raw = {}
    source_file: Path | None = None
    if config_file is not None:
        source_file = Path(config_file)
        try:
            with source_file.open("rb") as fh:
                file_raw = _from_toml(tomllib.load(fh), source_file)
        except FileNotFoundError:
            raise ConfigError(f"configuration file not found: {source_file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source_file}: {exc}") from None

    raw: Raw = {}
    for layer in (file_raw, env_raw, flag_raw):
        _merge(raw, layer)
    top = raw.pop("", {})
    chosen_dir = data_dir or env_raw.get("", {}).get("data_dir") or top.get("data_dir") or "data"
    resolved_dir = Path(chosen_dir).expanduser().absolute()
    return _assemble(resolved_dir, raw, source_file)


def _assemble(data_dir: Path, raw: Raw, source_file: Path | None) -> Config:
    sections: dict[str, Any] = {}
    connections: dict[str, Connection] = {}
    for key, values in raw.items():
        if key.startswith("connection."):
            name = key.split(".", 1)[1]
            if name not in CONNECTION_NAMES:
                raise ConfigError(f"[connection.{name}]: unknown connection")
            base = dataclasses.asdict(getattr(Connections(), name))
            connections[name] = _build_section(Connection, base | values, key)
        elif key in SECTIONS:
            sections[key] = _build_section(SECTIONS[key], values, key)
        else:
            raise ConfigError(f"unknown section [{key}]")
    oid_root = installation_oid_root(data_dir)
    config = Config(
        data_dir=data_dir,
        oid_root=oid_root,
        connection=dataclasses.replace(Connections(), **connections),
        source_file=source_file,
        **sections,
    )
    config = _derive(config)
    validate(config)
    return config


def _derive(config: Config) -> Config:
    """Fill the keys left empty with values under the data dir and the OID root."""
    root = config.oid_root
    registry = config.registry
    registry = dataclasses.replace(
        registry,
        affinity_domain=registry.affinity_domain or f"{root}.{ARC_AFFINITY_DOMAIN}",
        home_community_id=registry.home_community_id or f"urn:oid:{root}.{ARC_HOME_COMMUNITY}",
    )
    repository = config.repository
    repository = dataclasses.replace(
        repository,
        repository_unique_id=repository.repository_unique_id or f"{root}.{ARC_REPOSITORY}",
        blob_dir=repository.blob_dir or str(config.data_dir / "blobs"),
    )
    database = DatabaseSettings(
        url=config.database.url or f"sqlite:///{config.data_dir / 'xdsi.sqlite'}"
    )
    audit = dataclasses.replace(
        config.audit,
        source_id=config.audit.source_id or config.device.name,
        enterprise_site_id=config.audit.enterprise_site_id or config.device.name,
        spool_url=config.audit.spool_url or _audit_spool_url(config.data_dir, database.url),
    )
    tls = config.tls
    if tls.enabled:
        tls = dataclasses.replace(
            tls,
            key=tls.key or tls.cert,
            dh_params=tls.dh_params or str(config.data_dir / DH_PARAMS_FILE_NAME),
        )
    imaging = config.imaging_source
    imaging = dataclasses.replace(
        imaging,
        ae_title=imaging.ae_title.strip(" "),
        repository_unique_id=imaging.repository_unique_id or f"{root}.{ARC_IMAGING_SOURCE}",
        storage_dir=imaging.storage_dir or str(config.data_dir / "dicom"),
        wado_rs_base_url=imaging.wado_rs_base_url or f"{config.http_base_url()}{DICOMWEB_PATH}",
    )
    limits = config.limits
    if limits.spool_dir is None:
        limits = dataclasses.replace(limits, spool_dir=config.data_dir / "spool")
    return dataclasses.replace(
        config,
        registry=registry,
        repository=repository,
        database=database,
        audit=audit,
        limits=limits,
        imaging_source=imaging,
        tls=tls,
    )


def _audit_spool_url(data_dir: Path, database_url: str) -> str:
    """PostgreSQL: the spool shares the database, so no process strands it; otherwise
    an SQLite file of its own next to the data (the audit's own durability)."""
    if database_url.startswith(("postgresql", "postgres:")):
        return database_url
    return f"sqlite:///{data_dir / AUDIT_SPOOL_FILE_NAME}"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _is_postgresql(url: str) -> bool:
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def _validate_server(config: Config) -> None:
    sendfile = config.server.sendfile
    _check(
        sendfile in SENDFILE_MODES,
        f"[server] sendfile: {sendfile!r} is not one of {', '.join(SENDFILE_MODES)}",
    )
    workers = config.server.workers
    _check(1 <= workers <= MAX_WORKERS, f"[server] workers: {workers} is not 1..{MAX_WORKERS}")
    if workers == 1:
        return
    _check(
        _is_postgresql(config.database.url),
        f"[server] workers: {workers} processes need a PostgreSQL [database] url to share",
    )
    _check(
        not config.audit.enabled or _is_postgresql(config.audit.spool_url),
        f"[server] workers: {workers} processes need a PostgreSQL [audit] spool_url to share",
    )
    _check(
        not (config.imaging_source.enabled and config.imaging_source.backing_pacs),
        f"[server] workers: {workers} processes cannot share the cache of a backing PACS",
    )


def validate(config: Config) -> None:
    """Raise ConfigError naming the first key out of range."""
    for name in CONNECTION_NAMES:
        conn: Connection = getattr(config.connection, name)
        _check(0 <= conn.port <= 65535, f"[connection.{name}] port: {conn.port} is not 0..65535")
        _check(bool(conn.host), f"[connection.{name}] host: empty")
    _check(bool(config.device.name), "[device] name: empty")
    registry = config.registry
    _check(
        is_oid(registry.affinity_domain),
        f"[registry] affinity_domain: not an OID: {registry.affinity_domain!r}",
    )
    # ITI TF-3 4.2.3.2.12 / ITI TF-2 3.18.4.1.2.3.8: homeCommunityId is urn:oid:<OID>
    hcid = registry.home_community_id
    _check(
        hcid.startswith("urn:oid:") and is_oid(hcid[len("urn:oid:") :]),
        f"[registry] home_community_id: not urn:oid:<OID>: {hcid!r}",
    )
    _check(registry.max_results >= 1, f"[registry] max_results: {registry.max_results} < 1")
    repository = config.repository
    _check(
        is_oid(repository.repository_unique_id),
        f"[repository] repository_unique_id: not an OID: {repository.repository_unique_id!r}",
    )
    _check(
        repository.registry_url == ""
        or repository.registry_url.startswith(("http://", "https://")),
        f"[repository] registry_url: not an http(s) URL: {repository.registry_url!r}",
    )
    _check(
        "://" in config.database.url,
        f"[database] url: not an SQLAlchemy URL: {config.database.url!r}",
    )
    _validate_imaging_source(config)
    _validate_server(config)
    tls = config.tls
    _check(not (tls.key and not tls.cert), "[tls] key: set without [tls] cert")
    _check(
        not tls.enabled or bool(tls.ca or tls.trusted_certs),
        "[tls] ca / trusted_certs: mutual TLS needs at least one CA or trusted certificate",
    )
    audit = config.audit
    for destination in audit.destinations:
        _check(
            _AUDIT_DESTINATION.match(destination) is not None,
            f"[audit] destinations: not tls://HOST:PORT or udp://HOST:PORT: {destination!r}",
        )
    _check(
        "://" in audit.spool_url, f"[audit] spool_url: not an SQLAlchemy URL: {audit.spool_url!r}"
    )
    _check(
        audit.spool_sync in ("full", "normal"),
        f'[audit] spool_sync: {audit.spool_sync!r} is not "full" or "normal"',
    )
    _check(audit.spool_limit >= 0, f"[audit] spool_limit: {audit.spool_limit} < 0 (0: none)")
    for name in (
        "max_envelope_bytes",
        "max_attachments",
        "max_request_bytes",
        "max_inline_binary_bytes",
        "read_timeout",
        "header_timeout",
    ):
        value = getattr(config.limits, name, 1)
        _check(value > 0, f"[limits] {name}: {value} must be positive")
    bound = config.limits.max_concurrent_requests
    _check(bound >= 0, f"[limits] max_concurrent_requests: {bound} < 0 (0: no bound)")


def _validate_imaging_source(config: Config) -> None:
    imaging = config.imaging_source
    where = "[imaging_source]"
    _check(
        _AE_TITLE.fullmatch(imaging.ae_title) is not None,
        f"{where} ae_title: not a DICOM AE title (PS3.5 6.2): {imaging.ae_title!r}",
    )
    _check(
        is_oid(imaging.repository_unique_id),
        f"{where} repository_unique_id: not an OID: {imaging.repository_unique_id!r}",
    )
    # RAD TF-3 4.68.4.1.2.3: the source's id, which a consumer sends RAD-69 with
    _check(
        not imaging.enabled
        or imaging.repository_unique_id != config.repository.repository_unique_id,
        f"{where} repository_unique_id: equal to [repository] repository_unique_id; the "
        "Imaging Document Source needs its own",
    )
    for peer in (*imaging.peers, *((imaging.pacs_dimse,) if imaging.pacs_dimse else ())):
        _check(
            _DICOM_PEER.fullmatch(peer.strip()) is not None,
            f"{where} peers / pacs_dimse: not AET@HOST:PORT: {peer!r}",
        )
    known = {
        peer.strip().split("@", 1)[0].strip(" ")
        for peer in (*imaging.peers, imaging.pacs_dimse)
        if _DICOM_PEER.fullmatch(peer.strip()) is not None
    }
    for title in imaging.tls_peers:
        _check(
            title.strip(" ") in known,
            f"{where} tls_peers: {title!r} is neither one of peers nor pacs_dimse",
        )
    _check(
        not imaging.tls_peers or config.tls.enabled,
        f"{where} tls_peers: TLS to peers needs this node's certificate ([tls] cert)",
    )
    tls_titles = {title.strip(" ") for title in imaging.tls_peers}
    for entry in imaging.peer_ca:
        title, _, path = entry.partition("=")
        _check(
            bool(path.strip()) and title.strip(" ") in tls_titles,
            f"{where} peer_ca: {entry!r} is not AET=FILE with AET one of tls_peers",
        )
    _check(
        not (imaging.pacs_wado_rs and imaging.pacs_dimse),
        f"{where} pacs_wado_rs and pacs_dimse: one backing PACS, not both",
    )
    for key in ("pacs_wado_rs", "wado_rs_base_url"):
        value = getattr(imaging, key)
        _check(
            value == "" or value.startswith(("http://", "https://")),
            f"{where} {key}: not an http(s) URL: {value!r}",
        )
    _check(
        not imaging.pacs_ca or imaging.pacs_wado_rs.startswith("https://"),
        f"{where} pacs_ca: CAs of an https pacs_wado_rs, which is {imaging.pacs_wado_rs!r}",
    )
    _check(
        imaging.cache_max_bytes > 0,
        f"{where} cache_max_bytes: {imaging.cache_max_bytes} must be positive",
    )
    _check(
        imaging.pacs_timeout > 0,
        f"{where} pacs_timeout: {imaging.pacs_timeout} must be positive",
    )
    _check(
        imaging.stability_delay >= 0,
        f"{where} stability_delay: {imaging.stability_delay} is negative",
    )
    _check(
        imaging.publish_interval > 0,
        f"{where} publish_interval: {imaging.publish_interval} must be positive",
    )
    for key in (
        "class_code",
        "type_code",
        "healthcare_facility_type_code",
        "practice_setting_code",
        "content_type_code",
    ):
        _check(_is_code(getattr(imaging, key)), f"{where} {key}: not code^scheme^display")
    _check(
        bool(imaging.confidentiality_codes) and all(map(_is_code, imaging.confidentiality_codes)),
        f"{where} confidentiality_codes: not a list of code^scheme^display",
    )
    for key in ("accession_issuer_oid", "patient_id_issuer_oid"):
        value = getattr(imaging, key)
        _check(value == "" or is_oid(value), f"{where} {key}: not an OID: {value!r}")
    try:
        ZoneInfo(imaging.default_timezone)
    except (ValueError, ZoneInfoNotFoundError):
        raise ConfigError(
            f"{where} default_timezone: not an IANA time zone: {imaging.default_timezone!r}"
        ) from None


def _is_code(text: str) -> bool:
    parts = text.split("^")
    return len(parts) in (2, 3) and all(p.strip() for p in parts[:2])


def describe_keys() -> list[tuple[str, str, str, str]]:
    """(TOML key, default, environment variable, type) for every key: the reference table."""
    rows: list[tuple[str, str, str, str]] = [("data_dir", "./data", "XDSI_DATA_DIR", "path")]
    for name in CONNECTION_NAMES:
        conn = getattr(Connections(), name)
        for f in dataclasses.fields(Connection):
            rows.append(
                (
                    f"connection.{name}.{f.name}",
                    repr(getattr(conn, f.name)),
                    f"XDSI_CONNECTION__{name.upper()}__{f.name.upper()}",
                    str(f.type),
                )
            )
    for section, cls in SECTIONS.items():
        default = cls()
        for f in dataclasses.fields(cls):
            rows.append(
                (
                    f"{section}.{f.name}",
                    repr(getattr(default, f.name)),
                    f"XDSI_{section.upper()}{ENV_SEPARATOR}{f.name.upper()}",
                    str(f.type),
                )
            )
    return rows


__all__ = [
    "ARC_AFFINITY_DOMAIN",
    "ARC_DOCUMENT",
    "ARC_HOME_COMMUNITY",
    "ARC_IMAGING_SOURCE",
    "ARC_MANIFEST",
    "ARC_REPOSITORY",
    "ARC_SOURCE",
    "ARC_SUBMISSION_SET",
    "AUDIT_SPOOL_FILE_NAME",
    "AuditSettings",
    "CONFIG_FILE_NAME",
    "Config",
    "ConfigError",
    "Connection",
    "Connections",
    "DatabaseSettings",
    "DICOMWEB_PATH",
    "Device",
    "HEALTH_PATH",
    "IMAGING_SOURCE_PATH",
    "ImagingSourceSettings",
    "REGISTRY_PATH",
    "REPOSITORY_PATH",
    "RegistrySettings",
    "RepositorySettings",
    "ServerSettings",
    "TlsSettings",
    "describe_keys",
    "installation_oid_root",
    "is_oid",
    "load_config",
    "validate",
]
