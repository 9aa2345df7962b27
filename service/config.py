"""The draft-check service's settings: command-line options, each with an environment variable.

    python -m service --help
    NEAR_DUP_ES_URL=http://es:9200 NEAR_DUP_API_KEYS=k1,k2 python -m service

An option on the command line wins over its variable; an option the service does not know is an
error. API keys are never options (they would show in `ps`): NEAR_DUP_API_KEYS (comma-separated) or
NEAR_DUP_API_KEYS_SECRET (a Secret Manager version, `projects/P/secrets/S/versions/V`, holding one key
per line). Without any key the service refuses to start unless --allow_no_keys is given (local trials).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Optional

from transforms.io.elasticsearch import EsConnection, resolve_secret
from transforms.records import ConfigError

ENV_PREFIX = "NEAR_DUP_"
MIN_KEY_CHARS = 16


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    es_url: str = "http://127.0.0.1:9200"
    es_index: str = "dedup-documents"      # the alias the job maintains (its --es_index)
    es_api_key_env: str = ""               # name of the env var holding an Elasticsearch API key
    es_api_key_secret: str = ""
    es_username: str = ""
    es_password_env: str = ""
    es_ca_certs: str = ""
    es_timeout_s: float = 5.0              # per Elasticsearch request
    model: str = ""                        # the model this service loads (default: the run's)
    torch_threads: int = 0
    max_body_bytes: int = 2 << 20
    max_draft_chars: int = 200_000
    allow_no_keys: bool = False
    log_level: str = "info"

    def es_connection(self) -> EsConnection:
        return EsConnection(url=self.es_url, api_key_env=self.es_api_key_env or None,
                            api_key_secret=self.es_api_key_secret or None, username=self.es_username or None,
                            password_env=self.es_password_env or None, ca_certs=self.es_ca_certs or None,
                            request_timeout_s=self.es_timeout_s)

    def api_keys(self) -> tuple[str, ...]:
        """The accepted API keys (from the environment or Secret Manager); ConfigError when none are
        configured (unless allow_no_keys: then no request is accepted but /healthz)."""
        text = os.environ.get(ENV_PREFIX + "API_KEYS", "")
        secret = os.environ.get(ENV_PREFIX + "API_KEYS_SECRET", "")
        if secret:
            text = resolve_secret(None, secret)
        keys = tuple(k.strip() for k in text.replace("\n", ",").split(",") if k.strip())
        short = [k for k in keys if len(k) < MIN_KEY_CHARS]
        if short:
            raise ConfigError(f"{len(short)} API key(s) shorter than {MIN_KEY_CHARS} characters: use random keys "
                              "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)")
        if not keys and not self.allow_no_keys:
            raise ConfigError(f"no API keys: set {ENV_PREFIX}API_KEYS (comma-separated) or {ENV_PREFIX}API_KEYS_SECRET "
                              "(a Secret Manager version)")
        return keys


def _env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m service", description=(
        "Draft-check API over the index the near-duplicate job builds. Every option can also be set with "
        f"the environment variable {ENV_PREFIX}<OPTION> (upper case); API keys only from {ENV_PREFIX}API_KEYS "
        f"or {ENV_PREFIX}API_KEYS_SECRET."), allow_abbrev=False)
    help_text = {
        "host": "address to listen on", "port": "port to listen on",
        "es_url": "Elasticsearch URL", "es_index": "the alias the job maintains (its --es_index)",
        "es_api_key_env": "name of the env var holding an Elasticsearch API key",
        "es_api_key_secret": "Secret Manager version holding an Elasticsearch API key",
        "es_username": "Elasticsearch user (basic auth)", "es_password_env": "name of the env var holding its password",
        "es_ca_certs": "CA bundle for Elasticsearch TLS", "es_timeout_s": "timeout of each Elasticsearch request",
        "model": "model to load (default: the run's; it must have the run's fingerprint)",
        "torch_threads": "CPU threads for the encoder (0: all)", "max_body_bytes": "largest request body accepted",
        "max_draft_chars": "longest draft checked", "allow_no_keys": "start without API keys (only /healthz answers)",
        "log_level": "log level",
    }
    for f in dataclasses.fields(ServiceConfig):
        env = os.environ.get(_env_name(f.name))
        default = f.default
        if env is not None:
            default = env.lower() in ("1", "true", "yes") if f.type == "bool" else type(f.default)(env)
        if f.type == "bool":
            p.add_argument(f"--{f.name}", action="store_true", default=default, help=help_text[f.name])
        else:
            p.add_argument(f"--{f.name}", type=type(f.default), default=default,
                           help=f"{help_text[f.name]} (default: {default}; env {_env_name(f.name)})")
    return p


def from_args(argv: Optional[list[str]] = None) -> ServiceConfig:
    """Options and environment -> ServiceConfig (argparse exits 2 on an unknown option)."""
    args = parser().parse_args(argv)
    return ServiceConfig(**vars(args))
