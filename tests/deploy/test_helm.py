"""The Helm chart deploy/helm/pearls: `helm lint`, and the rendered manifests valid
against Kubernetes' JSON schemas (kubeconform -strict) for the default values and a
production-like values file (SASL_SSL, TLS, Ingress), plus what the chart promises."""

from __future__ import annotations

import importlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    CHART,
    K8S_SCHEMAS,
    KUBERNETES_VERSION,
    PRODUCTION_VALUES,
    SERVICES,
    load_settings,
    run,
    tool,
    unknown_env,
)

pytestmark = pytest.mark.deploy

Manifest = dict[str, Any]
VALUES = {"default": [], "production": ["-f", str(PRODUCTION_VALUES)]}
# No Kubernetes schema exists for the Prometheus Operator's CRD; checked below instead.
CRDS = "monitoring.coreos.com/v1/ServiceMonitor"


def schema_location() -> str:
    folder = K8S_SCHEMAS / f"v{KUBERNETES_VERSION}-standalone-strict"
    if not (folder / "deployment-apps-v1.json").is_file():
        pytest.fail(f"{folder} is missing: run `bash deploy/tools.sh`", pytrace=False)
    return str(folder / "{{.ResourceKind}}{{.KindSuffix}}.json")


def helm_template(*args: str, chart: Path = CHART) -> tuple[int, str]:
    done = run(
        [
            tool("helm"),
            "template",
            "pearls",
            str(chart),
            "--kube-version",
            KUBERNETES_VERSION,
            *args,
        ]
    )
    return done.returncode, done.stdout if done.returncode == 0 else done.stderr


def kubeconform(manifests: str) -> tuple[int, str]:
    done = run(
        [
            tool("kubeconform"),
            "-strict",
            "-summary",
            "-kubernetes-version",
            KUBERNETES_VERSION,
            "-schema-location",
            schema_location(),
            "-skip",
            CRDS,
            "-",
        ],
        stdin=manifests,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def rendered() -> Callable[[str], list[Manifest]]:
    cache: dict[str, list[Manifest]] = {}

    def render(name: str) -> list[Manifest]:
        if name not in cache:
            code, out = helm_template(*VALUES[name])
            assert code == 0, out
            cache[name] = [m for m in yaml.safe_load_all(out) if m]
        return cache[name]

    return render


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def component(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/component"])


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    spec: list[dict[str, Any]] = manifest["spec"]["template"]["spec"]["containers"]
    return spec


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


@pytest.mark.parametrize("values", list(VALUES))
def test_helm_lint(values: str) -> None:
    done = run(
        [
            tool("helm"),
            "lint",
            "--strict",
            "--kube-version",
            KUBERNETES_VERSION,
            str(CHART),
            *VALUES[values],
        ]
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", list(VALUES))
def test_manifests_match_the_kubernetes_schemas(values: str) -> None:
    code, out = helm_template(*VALUES[values])
    assert code == 0, out
    code, report = kubeconform(out)
    assert code == 0, report
    assert "Invalid: 0, Errors: 0" in report
    skipped = 1 if values == "production" else 0
    assert f"Skipped: {skipped}" in report, report


def test_a_template_rendering_an_invalid_field_fails(tmp_path: Path) -> None:
    broken = tmp_path / "pearls"
    shutil.copytree(CHART, broken)
    template = broken / "templates" / "deployments.yaml"
    text = template.read_text()
    assert "  revisionHistoryLimit: 5\n" in text
    template.write_text(text.replace("  revisionHistoryLimit: 5\n", "  revisionHistoryLimt: 5\n"))
    code, out = helm_template(chart=broken)
    assert code == 0, out
    code, report = kubeconform(out)
    assert code != 0
    assert "additional properties 'revisionHistoryLimt' not allowed" in report
    assert "Invalid: 4" in report


def test_a_value_of_the_wrong_type_fails() -> None:
    code, out = helm_template("--set", "services.applications.replicaCount=two")
    assert code == 0, out
    code, report = kubeconform(out)
    assert code != 0
    assert "/spec/replicas" in report and "Invalid: 1" in report


def test_sasl_without_credentials_is_refused() -> None:
    code, out = helm_template("--set", "kafka.securityProtocol=SASL_SSL")
    assert code != 0
    assert "kafka.sasl.existingSecret" in out


@pytest.mark.parametrize("values", list(VALUES))
def test_every_service_runs_replicated_with_probes_and_resources(
    values: str, rendered: Callable[[str], list[Manifest]]
) -> None:
    deployments = of_kind(rendered(values), "Deployment")
    assert sorted(component(d) for d in deployments.values()) == sorted(SERVICES)
    for name, deployment in deployments.items():
        assert deployment["spec"]["replicas"] >= 2, name
        [container] = containers(deployment)
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["image"].endswith(f"-{component(deployment)}:0.1.0")


@pytest.mark.parametrize("values", list(VALUES))
def test_a_service_and_a_disruption_budget_select_each_deployment(
    values: str, rendered: Callable[[str], list[Manifest]]
) -> None:
    manifests = rendered(values)
    services = of_kind(manifests, "Service")
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for name, deployment in of_kind(manifests, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert services[name]["spec"]["ports"][0]["targetPort"] == "http"
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("values", list(VALUES))
def test_prepare_jobs_are_hooks_that_run_after_the_secrets(
    values: str, rendered: Callable[[str], list[Manifest]]
) -> None:
    manifests = rendered(values)
    jobs = of_kind(manifests, "Job")
    assert len(jobs) == len(SERVICES)
    secret_weights = {
        int(s["metadata"]["annotations"]["helm.sh/hook-weight"])
        for s in of_kind(manifests, "Secret").values()
    }
    for name, job in jobs.items():
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"] == "pre-install,pre-upgrade", name
        assert all(w < int(notes["helm.sh/hook-weight"]) for w in secret_weights), name
        [container] = containers(job)
        service = container["command"][-1]
        assert container["command"] == ["python", "/app/prepare.py", service]
        assert component(job) == f"{service}-prepare"


@pytest.mark.parametrize("values", list(VALUES))
def test_every_variable_is_one_the_settings_know(
    values: str, rendered: Callable[[str], list[Manifest]]
) -> None:
    manifests = rendered(values)
    secrets = of_kind(manifests, "Secret")
    for workload in [
        *of_kind(manifests, "Deployment").values(),
        *of_kind(manifests, "Job").values(),
    ]:
        service = component(workload).removesuffix("-prepare")
        [container] = containers(workload)
        names = {e["name"] for e in container["env"]}
        for source in container["envFrom"]:
            secret = secrets.get(source["secretRef"]["name"])
            names |= set(secret["stringData"]) if secret else set()
        assert not unknown_env(service, names), workload["metadata"]["name"]


def test_the_default_values_are_accepted_by_the_settings(
    rendered: Callable[[str], list[Manifest]],
) -> None:
    manifests = rendered("default")
    secrets = of_kind(manifests, "Secret")
    for deployment in of_kind(manifests, "Deployment").values():
        service = component(deployment)
        [container] = containers(deployment)
        env = plain_env(container)
        [source] = container["envFrom"]
        env.update(secrets[source["secretRef"]["name"]]["stringData"])
        settings = load_settings(service, env)[0]
        # No setting: the service finds the migrations in its own package.
        assert (
            settings.migrations_dir
            == importlib.import_module(f"pearls_{service}.config").MIGRATIONS_DIR
        )
        assert "CHANGE-ME" in settings.database_url.get_secret_value()


def test_production_values_use_sasl_scram_over_tls(
    rendered: Callable[[str], list[Manifest]],
) -> None:
    manifests = rendered("production")
    assert not of_kind(manifests, "Secret"), "every secret comes from an existing Secret"
    for workload in [
        *of_kind(manifests, "Deployment").values(),
        *of_kind(manifests, "Job").values(),
    ]:
        service = component(workload).removesuffix("-prepare")
        [container] = containers(workload)
        env = plain_env(container)
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
        }
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert refs["KAFKA_SASL_USERNAME"]["name"] == "pearls-kafka-credentials"
        assert refs["KAFKA_SASL_PASSWORD"]["name"] == "pearls-kafka-credentials"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        ca = Path(env["KAFKA_SSL_CAFILE"])
        assert volumes[mounts[str(ca.parent)]]["secret"]["secretName"] == "pearls-kafka-ca"
        assert container["envFrom"] == [{"secretRef": {"name": f"pearls-{service}"}}]
        # The settings accept the values (the secrets' values are the operator's).
        secret_values = dict.fromkeys(refs, "from-a-secret")
        kafka = load_settings(service, {**env, **secret_values})[1]
        assert (kafka.security_protocol, kafka.ssl_cafile) == ("SASL_SSL", str(ca))
        assert kafka.topic_replication_factor == 3 and kafka.topic_min_insync_replicas == 2


def test_ingress_is_off_by_default_and_routes_to_the_apis(
    rendered: Callable[[str], list[Manifest]],
) -> None:
    assert not of_kind(rendered("default"), "Ingress")
    assert not of_kind(rendered("default"), "ServiceMonitor")
    manifests = rendered("production")
    services = of_kind(manifests, "Service")
    [ingress] = of_kind(manifests, "Ingress").values()
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == set(services)
    assert ingress["spec"]["tls"][0]["secretName"] == "pearls-tls"
    [monitor] = of_kind(manifests, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    for service in services.values():
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )


# Maps whose keys are the operator's (settings, Kubernetes objects): documented whole.
FREE_FORM = {
    "env",
    "secretEnv",
    "resources",
    "delivery",
    "commonEnv",
    "podAnnotations",
    "nodeSelector",
    "affinity",
    "podSecurityContext",
    "securityContext",
    "annotations",
    "labels",
    "podDisruptionBudget",
}


def value_keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in values.items():
        key = prefix + name
        if prefix == "services.":
            key = "services.<name>"
        if isinstance(value, dict) and value and name not in FREE_FORM:
            keys |= value_keys(value, key + ".")
        else:
            keys.add(key)
    return keys


def test_the_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["services"]) == set(SERVICES)
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))
    assert documented == value_keys(values)
    for service, block in values["services"].items():
        assert not unknown_env(service, set(block["secretEnv"]) | set(block["env"])), service


def test_a_missing_tool_fails_the_checks_rather_than_skipping() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"deploy/tools\.sh"):
        tool("no-such-tool")
