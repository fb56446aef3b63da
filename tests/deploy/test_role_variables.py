"""The semafore_appliance role has one variable per appliance setting, and renders them right.

Not marked ``deploy``: it needs no root and no hosts. Ansible itself renders the role's real
template on the control node (connection ``local``), once for an inventory that sets nothing and
once for one that sets a value of every kind; the appliance's own ``check-config`` then accepts
the file, and every value comes back from the TOML exactly as the inventory gave it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hosts import REPO, VENV_BIN

from semafore.config import SECTIONS, documented_keys, settings_from_dict

ROLE = REPO / "roles" / "semafore_appliance"
PREFIX = "semafore_appliance_"
SETTING_VARIABLE = re.compile(rf"{PREFIX}({'|'.join(SECTIONS)})_(\w+)")

# What an inventory that sets nothing gets today: the 14 settings the role has always written,
# byte for byte, so that a second run of site.yml (and an upgrade of the role) changes nothing.
DEFAULT_FILE = """\
# Ansible managed
# SemaFore appliance settings (docs/configuration.md). Change them through the inventory
# variables semafore_appliance_*, not here.

[server]
host = "0.0.0.0"
port = 443
tls_certificate = "/etc/semafore/tls/server.crt"
tls_private_key = "/etc/semafore/tls/server.key"
tls_ca_certificate = "/etc/semafore/tls/ca.crt"
max_request_bytes = 1048576
shutdown_timeout_seconds = 10.0

[storage]
data_dir = "/var/lib/semafore"
busy_timeout_ms = 5000
reader_connections = 4
max_batch_units = 1000

[logging]
level = "info"
access_log = true
"""

# A site's non-default values as its inventory writes them, one or more of each kind;
# ("section", "key") -> value. Strings holding the appliance's own templates are !unsafe there.
SAMPLE: dict[tuple[str, str], object] = {
    ("server", "port"): 8443,
    ("server", "public_url"): "https://semafore.example.internal",
    ("server", "shutdown_timeout_seconds"): 2.5,
    ("logging", "access_log"): False,
    ("otp", "provider"): "http",
    ("otp", "code_ttl_seconds"): 300,
    ("otp", "message"): "Dein Code: {{ code }} – gültig {{ minutes }} Min. \U0001f510",
    ("otp", "http_url"): "https://sms.example.internal/send?to={{ number_digits }}",
    ("otp", "http_method"): "PUT",
    ("otp", "http_headers"): {
        "Content-Type": "application/json",
        "Authorization": "Bearer {{ vault_sample_sms_token }}",
        "X-Note": 'say "hi" \\ bye\x7f',
    },
    ("otp", "http_body"): '{"to": {{ number|tojson }},\n "text": {{ message|tojson }}}\t\\',
    ("otp", "http_timeout_seconds"): 2.5,
    ("otp", "smtp_port"): 2525,
    ("otp", "smtp_security"): "tls",
    ("otp", "smtp_username"): "",
    ("otp", "smtp_password_file"): "/etc/semafore/smtp-password",
    ("auth", "issuer"): 'semafore "lab" \\ one',
    ("orgs", "self_service_signup"): True,
    ("admin", "totp_issuer"): "Example Org",
    ("audit", "checkpoint_interval_seconds"): 600.0,
    ("relay", "queue_max_messages"): 5000,
    ("relay", "message_ttl_days"): 7,
    ("relay", "heartbeat_seconds"): 45.5,
    ("push", "enabled"): False,
    ("push", "allowed_hosts"): ["push.example.internal", "ntfy.example.internal"],
    ("files", "max_upload_bytes"): 1 << 30,
    ("files", "org_quota_bytes"): 1 << 40,
}
# A secret from the site's vault, referenced in a mapping: Ansible resolves it.
VAULT_TOKEN = "t0k3n"
# Given through semafore_appliance_settings_extra, which is merged last and wins; a null there
# drops a key the role writes by default.
SAMPLE_EXTRA = {"relay": {"message_ttl_days": 14}, "storage": {"max_batch_units": None}}


@dataclass(frozen=True)
class Rendered:
    defaults: Path  # the file for a host whose inventory sets nothing
    sample: Path  # the file for a host whose inventory sets sample_values
    sample_values: dict[tuple[str, str], object]


def variable(section: str, key: str) -> str:
    return f"{PREFIX}{section}_{key}"


def role_defaults() -> dict:
    return yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def yaml_value(value: object) -> str:
    """A YAML value for the inventory; strings with templates for the appliance are !unsafe.

    JSON is YAML, except that YAML wants DEL escaped.
    """
    text = json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    return f"!unsafe {text}" if isinstance(value, str) and "{{" in value else text


def as_written(value: object) -> object:
    """What the file should hold for a sample value: mappings have the vault token resolved."""
    if isinstance(value, dict):
        return {k: v.replace("{{ vault_sample_sms_token }}", VAULT_TOKEN) for k, v in value.items()}
    return value


def test_every_setting_has_a_variable_and_every_variable_a_setting():
    defaults = role_defaults()
    variables = {(m[1], m[2]) for name in defaults if (m := SETTING_VARIABLE.fullmatch(name))}
    keys = {tuple(key.split(".", 1)) for key in documented_keys()}
    assert sorted(keys - variables) == [], "settings without a variable"
    assert sorted(variables - keys) == [], "variables without a setting"
    mapping = defaults[f"{PREFIX}settings"]
    mapped = {(section, key) for section, values in mapping.items() for key in values}
    assert sorted(mapped ^ keys) == [], "semafore_appliance_settings differs from the settings"
    for section, key in keys:
        assert re.fullmatch(
            rf"\{{\{{ {variable(section, key)}( \| \w+)? \}}\}}", mapping[section][key]
        ), f"{section}.{key} is not mapped to its own variable"


def test_only_the_settings_written_before_have_a_default():
    defaults = role_defaults()
    written = {
        variable(section, key): value
        for section, values in tomllib.loads(DEFAULT_FILE).items()
        for key, value in values.items()
    }
    written[variable("server", "public_url")] = ""
    for section, key in (key.split(".", 1) for key in documented_keys()):
        name = variable(section, key)
        assert defaults[name] == written.get(name), name


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, appliance_template) -> Rendered:
    """semafore.toml as the role renders it for two hosts: ``defaults`` and ``sample``."""
    work = tmp_path_factory.mktemp("role-variables")
    data_dir = appliance_template.data_dir
    token = work / "metrics.token"
    token.write_text("t" * 40 + "\n")
    paths = {
        ("storage", "data_dir"): str(data_dir),
        ("server", "tls_certificate"): str(data_dir / "tls" / "server.crt"),
        ("server", "tls_private_key"): str(data_dir / "tls" / "server.key"),
        ("server", "tls_ca_certificate"): str(data_dir / "tls" / "ca.crt"),
        ("metrics", "token_file"): str(token),
    }
    lines = [f"{variable(*k)}: {yaml_value(v)}" for k, v in {**SAMPLE, **paths}.items()]
    lines.append(f"{PREFIX}settings_extra: {json.dumps(SAMPLE_EXTRA)}")
    lines.append(f"vault_sample_sms_token: {VAULT_TOKEN}")
    (work / "host_vars").mkdir()
    (work / "host_vars" / "sample.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (work / "hosts.yml").write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {"defaults": None, "sample": None},
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    },
                }
            }
        )
    )
    (work / "render.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Render semafore.toml from the role's variables",
                    "hosts": "all",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "Load the role's variables",
                            "ansible.builtin.include_role": {
                                "name": "semafore_appliance",
                                "tasks_from": "noop",
                                "public": True,
                            },
                        },
                        {
                            "name": "Render the role's template",
                            "ansible.builtin.template": {
                                "src": str(ROLE / "templates" / "semafore.toml.j2"),
                                "dest": str(work / "{{ inventory_hostname }}.toml"),
                                "mode": "0640",
                            },
                        },
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_LOCAL_TEMP=str(work / "tmp"),
        ANSIBLE_REMOTE_TEMP=str(work / "tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    result = subprocess.run(
        [tool("ansible-playbook"), "-i", str(work / "hosts.yml"), str(work / "render.yml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return Rendered(work / "defaults.toml", work / "sample.toml", {**SAMPLE, **paths})


def tool(name: str) -> str:
    path = VENV_BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (pip install -e '.[deploy]')")
    return found


@pytest.mark.timeout(300)
def test_an_inventory_that_sets_nothing_gets_the_same_file_as_before(rendered):
    text = rendered.defaults.read_text()
    assert text == DEFAULT_FILE
    settings_from_dict(tomllib.loads(text))  # types and ranges, without the host's files


@pytest.mark.timeout(300)
def test_every_kind_of_value_round_trips_and_the_appliance_accepts_it(rendered):
    result = subprocess.run(
        [tool("semafore"), "check-config", "--config", str(rendered.sample)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    expected = tomllib.loads(DEFAULT_FILE)
    for (section, key), value in rendered.sample_values.items():
        expected.setdefault(section, {})[key] = as_written(value)
    for section, values in SAMPLE_EXTRA.items():
        for key, value in values.items():
            if value is None:
                del expected[section][key]
            else:
                expected[section][key] = value
    assert tomllib.loads(rendered.sample.read_text(encoding="utf-8")) == expected
