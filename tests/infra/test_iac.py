"""Static checks of the Azure infrastructure (infra/, azure.yaml) and the GitHub workflows. Nothing here can be
deployed from a test machine: checkov and actionlint run through scripts/iac-check.sh (they fail, never skip, when
missing), and the templates are read as text for what those scanners do not know about this app: Key Vault
references that name real secrets, no secret in outputs, the app settings that shared/config.py reads, the seed's
alerts, the azd and parameter files."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
WORKFLOWS = ROOT / ".github" / "workflows"


def _bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, INFRA / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _secure_params(text: str) -> set[str]:
    return set(re.findall(r"@secure\(\)\s*(?:@\w+\([^)]*\)\s*)*param\s+(\w+)", text))


# ---------------------------------------------------------------------------------------------- scanners


@pytest.mark.timeout(900)  # the first run installs checkov and actionlint into .venv-iac (about a minute)
def test_checkov_and_actionlint_are_clean() -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "iac-check.sh")], cwd=ROOT, capture_output=True, text=True, timeout=880
    )
    assert result.returncode == 0, f"scripts/iac-check.sh failed:\n{result.stdout}\n{result.stderr}"
    assert "all clean" in result.stderr


def test_every_checkov_skip_gives_a_reason() -> None:
    for path in _bicep_files():
        for line in _text(path).splitlines():
            if "checkov:skip=" in line:
                assert line.lstrip().startswith("// checkov:skip="), f"{path.name}: use a // comment: {line.strip()}"
                reason = line.split(":", 2)[-1] if line.count(":") >= 2 else ""
                assert len(reason.strip()) >= 20, f"{path.name}: a skip needs a reason: {line.strip()}"


# ---------------------------------------------------------------------------------------------- secrets


def _written_secrets() -> dict[str, str]:
    """Secret name -> how it gets its value: a @secure() parameter, or a value built in the template (Redis)."""
    written: dict[str, str] = {}
    for path in _bicep_files():
        text = _text(path)
        secure = _secure_params(text)
        for name, value in re.findall(r"secretName:\s*'([\w-]+)'\s*\n\s*secretValue:\s*(\w+)", text):
            assert value in secure, f"{path.name}: secret {name} is written from {value}, which is not @secure()"
            written[name] = value
        for block in re.findall(r"'Microsoft\.KeyVault/vaults/secrets@[^']+'\s*=\s*\{(.*?)\n\}", text, re.S):
            match = re.search(r"\n\s*name:\s*'([\w-]+)'", block)
            if match:
                written[match.group(1)] = "template"
    return written


def _key_vault_references() -> set[str]:
    names: set[str] = set()
    for path in _bicep_files():
        text = _text(path)
        names |= set(re.findall(r"@Microsoft\.KeyVault\(SecretUri=\$\{[^}]+\}secrets/([\w-]+)/?\)", text))
        names |= set(re.findall(r"keyVaultUrl:\s*'\$\{[^}]+\}secrets/([\w-]+)'", text))
    return names


def test_every_key_vault_reference_names_a_secret_the_templates_write() -> None:
    references = _key_vault_references()
    written = _written_secrets()
    assert {"Llama--ApiKey", "OpenAI--ApiKey", "AzureOpenAI--ApiKey", "CoinGecko--ApiKey"} <= references
    assert {"CustomMlAgent--ApiKey", "Api--AdminKey", "Redis--ConnectionString"} <= references
    assert references <= set(written), f"references to secrets nothing writes: {sorted(references - set(written))}"


def test_the_function_app_settings_hold_key_vault_references_not_values() -> None:
    main = _text(MAIN)
    expected = {
        "Llama__ApiKey": "Llama--ApiKey",
        "OpenAI__ApiKey": "OpenAI--ApiKey",
        "AzureOpenAI__ApiKey": "AzureOpenAI--ApiKey",
        "CoinGecko__ApiKey": "CoinGecko--ApiKey",
        "CustomMlAgent__ApiKey": "CustomMlAgent--ApiKey",
        "Api__AdminKey": "Api--AdminKey",
    }
    for setting, secret in expected.items():
        pattern = rf"{setting}: '@Microsoft\.KeyVault\(SecretUri=\$\{{kvUri\}}secrets/{secret}/\)'"
        assert re.search(pattern, main), f"{setting} is not a Key Vault reference to {secret}"
    # Each reference is guarded: emitted only when its secret is written now or listed as existing.
    for secret in expected.values():
        assert f"contains(existingSecretNames, '{secret}')" in main
    # The main template's secure parameters all reach the Key Vault module.
    for param in _secure_params(main):
        assert re.search(rf"\n\s*{param}: {param}\n", main), f"@secure() {param} is not passed to Key Vault"


SECRETISH_NAME = re.compile(
    r"(api_?key|secret(?!name)|password|token|connection_?string(?!secretname)|access_?key|shared_?key)", re.I
)
SECRETISH_VALUE = re.compile(r"(\blist\w*\(|\.primaryKey|\.secondaryKey|ConnectionString|sharedKey|password=)", re.I)


def test_no_output_carries_a_secret() -> None:
    for path in _bicep_files():
        text = _text(path)
        secure = _secure_params(text)
        for name, value in re.findall(r"^output\s+(\w+)\s+\w+\s*=\s*(.+)$", text, re.M):
            assert not SECRETISH_NAME.search(name), f"{path.name}: output {name} is named like a secret"
            assert not SECRETISH_VALUE.search(value), f"{path.name}: output {name} = {value}"
            assert not any(re.search(rf"\b{p}\b", value) for p in secure), f"{path.name}: {name} uses a secret"
    # The database URL is an output: it must never carry a credential.
    url = re.search(r"var tradingDbUrl = '([^']+)'", _text(MAIN))
    assert url is not None
    assert "mssql+pyodbc://@" in url.group(1)
    assert not re.search(r"(?i)(password|pwd|uid)=", url.group(1))
    assert "ODBC+Driver+18+for+SQL+Server" in url.group(1)


# ---------------------------------------------------------------------------------------------- transport


def _module(name: str) -> str:
    return _text(INFRA / "modules" / f"{name}.bicep")


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (
            "functionapp",
            [
                "httpsOnly: true",
                "minTlsVersion: '1.2'",
                "scmMinTlsVersion: '1.2'",
                "ftpsState: 'Disabled'",
                "tier: 'FlexConsumption'",
                "name: 'FC1'",
                "name: 'python'",
                "type: 'blobContainer'",
                "type: 'UserAssignedIdentity'",
                "AzureWebJobsStorage__accountName",
                "AzureWebJobsStorage__credential: 'managedidentity'",
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "keyVaultReferenceIdentity: identityId",
                "allowedOrigins: corsOrigins",
                "name: 'ftp'",
                "name: 'scm'",
            ],
        ),
        (
            "storage",
            [
                "minimumTlsVersion: 'TLS1_2'",
                "supportsHttpsTrafficOnly: true",
                "allowSharedKeyAccess: false",
                "allowBlobPublicAccess: false",
                "publicAccess: 'None'",
            ],
        ),
        (
            "keyvault",
            ["enableRbacAuthorization: true", "enableSoftDelete: true", "enablePurgeProtection: true"],
        ),
        (
            "sql",
            ["minimalTlsVersion: '1.2'", "azureADOnlyAuthentication: true", "administratorType: 'ActiveDirectory'"],
        ),
        ("redis", ["enableNonSslPort: false", "minimumTlsVersion: '1.2'"]),
        (
            "containerapp",
            [
                "allowInsecure: false",
                "targetPort: targetPort",
                "var targetPort = 8080",
                "path: '/health/live'",
                "path: '/health/ready'",
                "type: 'Liveness'",
                "type: 'Readiness'",
                "minReplicas: minReplicas",
                "maxReplicas: maxReplicas",
                "secretRef: 'ml-service-api-key'",
            ],
        ),
        ("registry", ["adminUserEnabled: false", "anonymousPullEnabled: false"]),
        ("monitoring", ["DisableLocalAuth: disableLocalAuth", "param disableLocalAuth bool = true"]),
    ],
)
def test_security_settings(module: str, expected: list[str]) -> None:
    text = _module(module)
    missing = [item for item in expected if item not in text]
    assert not missing, f"{module}.bicep lacks {missing}"


def test_no_secret_or_account_key_in_any_setting() -> None:
    function_app = _module("functionapp")
    assert "AccountKey=" not in function_app
    assert "listKeys" not in function_app
    assert "FUNCTIONS_WORKER_RUNTIME" not in function_app  # Flex takes the runtime from functionAppConfig
    assert "@maxValue(3)\nparam maxReplicas int = 3" in _module("containerapp")


def test_cors_is_the_dashboards_origin_only() -> None:
    main = _text(MAIN)
    assert re.search(r"var corsOrigins = concat\(\[\s*dashboard\.outputs\.origin\s*\], dashboardExtraOrigins\)", main)
    assert "Api__CorsOrigins: join(corsOrigins, ',')" in main
    assert "'*'" not in main
    assert "'*'" not in _module("functionapp")


# ---------------------------------------------------------------------------------------------- alerts

ALERTS = {
    "alert-error-rate": ["errorRatePercent > 5"],
    "alert-llm-failures": ["falls back to HOLD", "race.holds", '!= "voluntary"'],
    "alert-sql-connection-failures": ["40613", "08001"],
    "alert-function-failures": ["run_agents_timer", "success == false"],
    "alert-p95-latency": ["percentile(duration, 95)", "p95Ms > 5000", 'url !contains "/api/race?wait="'],
}


def test_the_seed_alerts_exist_with_their_thresholds() -> None:
    text = _module("alerts")
    blocks = re.split(r"\nresource ", text)
    for name, needles in ALERTS.items():
        block = next((b for b in blocks if f"name: '{name}-" in b), None)
        assert block is not None, f"no {name} rule"
        for needle in needles:
            assert needle in block, f"{name}: {needle!r} missing"
        assert "actionGroup.id" in block
    assert "emailAddress: alertEmail" in text
    assert re.search(r"module alerts 'modules/alerts\.bicep'", _text(MAIN))


# ---------------------------------------------------------------------------------------------- app settings

# Settings that deliberately stay out of Azure's app settings.
NOT_IN_AZURE = {
    "Local__SecondsPerSimulatedHour": "the local race's simulated clock",
    "Local__Host": "the local race's server",
    "Local__Port": "the local race's server",
    "Local__LocalLlm": "the local race's llama.cpp server",
    "Local__LocalLlmPort": "the local race's llama.cpp server",
    "MarketData__ReplayStart": "replay only; Azure runs MarketData__Provider=coingecko",
    "MarketData__ReplayDir": "replay only (your own candle files); Azure runs MarketData__Provider=coingecko",
    "MarketData__ReplayAssets": "replay only (assets chosen from the replay files)",
    "AzureOpenAI__BaseUrl": "unused by the azure_openai client, which calls AzureOpenAI__Endpoint",
}


def _config_setting_names() -> set[str]:
    names = {"LOG_LEVEL"}
    for section_field in Settings.model_fields.values():
        section_model = section_field.annotation
        if section_field.alias is None or not isinstance(section_model, type):
            continue
        for field in section_model.model_fields.values():  # type: ignore[attr-defined]
            if field.alias:
                names.add(f"{section_field.alias}__{field.alias}")
    return names


def _bicep_setting_names() -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Za-z]+__[A-Z][A-Za-z0-9]+|LOG_LEVEL):", _text(MAIN)))


def test_the_app_settings_cover_every_setting_azure_needs() -> None:
    config = _config_setting_names()
    assert "ConnectionStrings__TradingDb" in config
    assert "CoinGecko__ApiKey" in config
    bicep = _bicep_setting_names()
    missing = sorted(config - bicep - set(NOT_IN_AZURE))
    assert not missing, f"shared/config.py settings missing from infra/main.bicep's app settings: {missing}"
    unknown = sorted(bicep - config)
    assert not unknown, f"infra/main.bicep sets names shared/config.py does not read: {unknown}"
    assert not (set(NOT_IN_AZURE) & bicep), "an excepted setting is set after all: drop it from NOT_IN_AZURE"


def test_azure_specific_values() -> None:
    main = _text(MAIN)
    assert "MarketData__Provider: 'coingecko'" in main
    for name in ("Schedules__MarketData", "Schedules__RunAgents", "Schedules__EquitySnapshot"):
        assert re.search(rf"{name}: schedule\w+", main)
    assert "param scheduleRunAgents string = '0 5 * * * *'" in main
    assert "ConnectionStrings__TradingDb: tradingDbUrl" in main
    assert "CustomMlAgent__BaseUrl: mlService.outputs.url" in main


# ---------------------------------------------------------------------------------------------- parameters


def _declared_params(text: str) -> set[str]:
    return set(re.findall(r"^param\s+(\w+)\s", text, re.M))


def test_parameter_files_name_only_declared_parameters() -> None:
    declared = _declared_params(_text(MAIN))
    azd = json.loads(_text(INFRA / "main.parameters.json"))["parameters"]
    assert set(azd) <= declared, sorted(set(azd) - declared)
    assert azd["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert "secretOrRandomPassword" in azd["mlServiceApiKey"]["value"]
    secure = _secure_params(_text(MAIN))
    profiles: dict[str, dict[str, str]] = {}
    for profile in ("dev", "prod"):
        text = _text(INFRA / f"main.{profile}.bicepparam")
        assert text.splitlines()[next(i for i, line in enumerate(text.splitlines()) if line.startswith("using"))] == (
            "using './main.bicep'"
        )
        values = dict(re.findall(r"^param\s+(\w+)\s*=\s*(.+)$", text, re.M))
        assert set(values) <= declared, sorted(set(values) - declared)
        for name in secure:
            assert values.get(name, "").startswith("readEnvironmentVariable("), f"{profile}: {name} must come from env"
        profiles[profile] = values
    dev, prod = profiles["dev"], profiles["prod"]
    assert dev["deployRedis"] == "false"
    assert prod["deployRedis"] == "true"
    assert dev["mlMinReplicas"] == "0"
    assert dev["sqlTier"] == "'Basic'"
    assert dev["deployContainerRegistry"] == "false"


# ---------------------------------------------------------------------------------------------- azd, compose


def test_azure_yaml_declares_the_two_services_and_the_migration_hook() -> None:
    azure = yaml.safe_load(_text(ROOT / "azure.yaml"))
    assert azure["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    api, ml = azure["services"]["api"], azure["services"]["ml"]
    assert (api["language"], api["host"], api["project"]) == ("python", "function", ".")
    assert ml["host"] == "containerapp"
    assert ml["docker"]["path"] == "ml_service/Dockerfile"
    assert ml["docker"]["context"] == "."
    assert (ROOT / ml["project"] / ml["docker"]["path"]).is_file()
    hook = ROOT / azure["hooks"]["postprovision"]["run"]
    assert hook.is_file()
    assert hook.stat().st_mode & 0o111
    script = _text(hook)
    assert "python -m shared.adapters.db.migrate upgrade" in script.replace('"$PY"', "python")
    # azd finds the services' resources by these tags.
    assert "'azd-service-name': 'api'" in _module("functionapp")
    assert "'azd-service-name': 'ml'" in _module("containerapp")


def test_the_compose_file_is_still_valid_yaml() -> None:
    compose = yaml.safe_load(_text(ROOT / "ml_service" / "docker-compose.yml"))
    assert {"redis", "ml-service"} <= set(compose["services"])


# ---------------------------------------------------------------------------------------------- workflows


def _workflow(name: str) -> dict[Any, Any]:
    data = yaml.safe_load(_text(WORKFLOWS / name))
    assert isinstance(data, dict)
    return data


def test_every_action_is_pinned_to_a_version() -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for uses in re.findall(r"uses:\s*([^\s#]+)", _text(path)):
            assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", uses), f"{path.name}: {uses} is not pinned"


def test_ci_runs_the_tests_with_postgres_and_redis_and_the_iac_checks() -> None:
    ci = _workflow("ci.yml")
    test = ci["jobs"]["test"]
    assert {"postgres", "redis"} <= set(test["services"])
    assert test["env"]["TEST_REDIS_URL"].startswith("redis://127.0.0.1:6379")
    assert test["env"]["TEST_POSTGRES_URL"].startswith("postgresql+psycopg://")
    runs = " ".join(step.get("run", "") for step in test["steps"])
    assert "make test" in runs
    assert "make sql-script" in runs
    iac_runs = " ".join(step.get("run", "") for step in ci["jobs"]["iac"]["steps"])
    assert "scripts/iac-check.sh" in iac_runs
    # The names scripts/with-services.sh honours.
    services = _text(ROOT / "scripts" / "with-services.sh")
    assert "TEST_POSTGRES_URL:-" in services
    assert "TEST_REDIS_URL:-" in services


@pytest.mark.parametrize(
    "name", ["deploy-infra.yml", "deploy-functions.yml", "deploy-ml-service.yml", "deploy-web.yml"]
)
def test_deploy_workflows_sign_in_with_oidc(name: str) -> None:
    workflow = _workflow(name)
    assert workflow["permissions"]["id-token"] == "write"
    logins = [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("azure/login@")
    ]
    assert logins
    for step in logins:
        assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}  # no client secret
        assert all(value.startswith("${{ secrets.") for value in step["with"].values())


def test_infrastructure_deploys_after_a_what_if_behind_the_target_environment() -> None:
    workflow = _workflow("deploy-infra.yml")
    what_if, deploy = workflow["jobs"]["what-if"], workflow["jobs"]["deploy"]
    assert "az deployment sub what-if" in " ".join(s.get("run", "") for s in what_if["steps"])
    assert deploy["needs"] == "what-if"
    assert "inputs.environment" in deploy["environment"]
    assert "production" in workflow[True]["workflow_dispatch"]["inputs"]["environment"]["options"]


def test_function_deploy_packages_migrates_then_deploys_to_flex() -> None:
    deploy = _workflow("deploy-functions.yml")["jobs"]["deploy"]
    names = [step.get("name") or step.get("uses") for step in deploy["steps"]]
    migrate = names.index("Migrate the database (and give the app identity its user)")
    ship = names.index("Deploy to Flex Consumption")
    assert migrate < ship
    action = deploy["steps"][ship]
    assert action["uses"].startswith("Azure/functions-action@")
    assert action["with"]["sku"] == "flexconsumption"


# ---------------------------------------------------------------------------------------------- scripts


def test_the_package_is_what_funcignore_leaves(tmp_path: Path) -> None:
    package = _load_script("package_functions")
    files = {str(f) for f in package.package_files()}
    assert {"function_app.py", "host.json", "requirements.txt", "shared/__init__.py", "shared/config.py"} <= files
    for excluded in ("tests/", "infra/", "ml_service/", "docs/", ".venv/", ".github/", "bench/", "data/"):
        assert not any(f.startswith(excluded) for f in files), excluded
    assert not any(f.endswith((".pyc", ".db")) or "__pycache__" in f for f in files)
    count, size = package.build_zip(tmp_path / "app.zip")
    assert count >= 10
    assert size > 0


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "ignored"),
    [
        ("/tests/", "tests/unit/test_x.py", False, True),
        ("/tests/", "shared/tests/x.py", False, False),  # anchored: a package folder of the same name ships
        ("/tests/", "tests", False, False),  # a file named like the folder is not a folder
        ("/tests/", "tests", True, True),
        ("__pycache__/", "shared/a/__pycache__/x.pyc", False, True),
        ("*.pyc", "shared/a/b.pyc", False, True),
        ("*.pyc", "shared/a/b.py", False, False),
        ("/.git*", ".github/workflows/ci.yml", False, True),
        ("/.git*", "shared/.gitkeep", False, False),
        ("/local.settings.json", "local.settings.json", False, True),
        ("/local.settings.json", "local.settings.json.example", False, False),
    ],
)
def test_funcignore_matching(pattern: str, path: str, is_dir: bool, ignored: bool) -> None:
    package = _load_script("package_functions")
    rules = package.load_rules(pattern)
    assert package.is_ignored(package.PurePosixPath(path), rules, is_dir=is_dir) is ignored


def test_funcignore_refuses_what_it_does_not_support() -> None:
    package = _load_script("package_functions")
    with pytest.raises(ValueError, match="unsupported"):
        package.load_rules("!keep.py")


def test_the_app_identity_gets_a_contained_user_from_its_client_id() -> None:
    grant = _load_script("sql_grant_app_identity")
    assert grant.sid_literal("12345678-1234-5678-9abc-def012345678") == "0x78563412341278569ABCDEF012345678"
    statements = grant.grant_statements("id-func-abc", "12345678-1234-5678-9abc-def012345678")
    assert statements[0] == (
        "IF DATABASE_PRINCIPAL_ID(N'id-func-abc') IS NULL "
        "CREATE USER [id-func-abc] WITH SID = 0x78563412341278569ABCDEF012345678, TYPE = E;"
    )
    assert statements[1:] == [
        "ALTER ROLE db_datareader ADD MEMBER [id-func-abc];",
        "ALTER ROLE db_datawriter ADD MEMBER [id-func-abc];",
    ]
    assert "[we]]ird]" in grant.grant_statements("we]ird", "12345678-1234-5678-9abc-def012345678")[1]
    token = grant.token_struct("ab")
    assert token == b"\x04\x00\x00\x00a\x00b\x00"
    with pytest.raises(ValueError, match="hexadecimal"):
        grant.sid_literal("not-a-guid")


def test_deploy_web_builds_against_the_function_app_and_uploads_to_the_static_web_app() -> None:
    workflow = _workflow("deploy-web.yml")
    steps = workflow["jobs"]["deploy"]["steps"]
    build = next(step for step in steps if "vite build" in step.get("run", ""))
    assert build["env"]["VITE_API_URL"] == "${{ env.AZURE_FUNCTION_APP_URL }}"
    runs = " ".join(step.get("run", "") for step in steps)
    assert "STATIC_WEB_APP_NAME" in runs
    assert "::add-mask::" in runs
    assert "npm ci" in runs
