"""The stack overlays (configs/stacks/*.yaml): each merges onto the GPU recipes, puts every GPU step on a GPU
the way its flavor reads it, and validates against that flavor's own settings classes shipped in ZenML.

ZenML itself only warns about (and drops) a setting it does not know, and the nested models drop them
silently, so these tests walk every key: a misspelt key fails here, not on a cloud run. The settings
classes import without the cloud SDKs; the Kubernetes objects inside pod settings (volumes, resources,
tolerations) are checked by ZenML's own Kubernetes deserializer, against the `kubernetes` client's models
when it is installed, else against a stand-in that declares the fields of the objects the overlay uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import typing
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.helpers import ROOT
from twinsft.cli.config_file import deep_merge, load_run_config
from twinsft.pipelines.steps_table import SFT_STEPS

CONFIGS = ROOT / "configs"
STACKS = sorted(p.stem for p in (CONFIGS / "stacks").glob("*.yaml"))
GPU_STEPS = tuple(step.name for step in SFT_STEPS if step.gpu)
MIN_DISK_GB = 100  # the Hub download (~16 GB) and the merged copy (~16 GB) of an 8B model, with room to spare

# The settings key each overlay uses -> the flavors' settings classes (module, class) it must validate against.
SETTINGS_CLASSES = {
    "orchestrator.kubernetes": [("kubernetes.flavors.kubernetes_orchestrator_flavor",
                                 "KubernetesOrchestratorSettings")],
    "step_operator.kubernetes": [("kubernetes.flavors.kubernetes_step_operator_flavor",
                                  "KubernetesStepOperatorSettings")],
    "orchestrator.vertex": [("gcp.flavors.vertex_orchestrator_flavor", "VertexOrchestratorSettings")],
    "step_operator.vertex": [("gcp.flavors.vertex_step_operator_flavor", "VertexStepOperatorSettings")],
    "orchestrator.sagemaker": [("aws.flavors.sagemaker_orchestrator_flavor", "SagemakerOrchestratorSettings")],
    "step_operator.sagemaker": [("aws.flavors.sagemaker_step_operator_flavor", "SagemakerStepOperatorSettings")],
    "orchestrator.ssh": [("ssh.flavors.ssh_orchestrator_flavor", "SSHOrchestratorSettings")],
    # skypilot.yaml's `orchestrator` key resolves to whichever SkyPilot VM orchestrator the stack has.
    "orchestrator": [
        ("skypilot_aws.flavors.skypilot_orchestrator_aws_vm_flavor", "SkypilotAWSOrchestratorSettings"),
        ("skypilot_gcp.flavors.skypilot_orchestrator_gcp_vm_flavor", "SkypilotGCPOrchestratorSettings"),
        ("skypilot_azure.flavors.skypilot_orchestrator_azure_vm_flavor", "SkypilotAzureOrchestratorSettings"),
    ],
}
# Pod-settings fields that hold Kubernetes API objects, and the class of each element.
K8S_OBJECTS = {"volumes": "V1Volume", "volume_mounts": "V1VolumeMount", "tolerations": "V1Toleration",
               "resources": "V1ResourceRequirements"}


def settings_class(module: str, name: str) -> type[BaseModel]:
    return getattr(importlib.import_module(f"zenml.integrations.{module}"), name)


def overlay(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / "stacks" / f"{name}.yaml").read_text())


def component_settings(document: dict[str, Any]) -> list[tuple[str, str, dict]]:
    """(where, key, value) of every stack-component setting, run-level and per step."""
    found = [(f"settings.{k}", k, v) for k, v in (document.get("settings") or {}).items()]
    for step, conf in (document.get("steps") or {}).items():
        found += [(f"steps.{step}.settings.{k}", k, v) for k, v in ((conf or {}).get("settings") or {}).items()]
    return [(where, key, value) for where, key, value in found if key not in ("docker", "resources")]


def _model_type(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...] / Union[...], if any."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def unknown_keys(model: type[BaseModel], data: dict[str, Any], where: str) -> list[str]:
    """Keys of `data` (recursively into nested models) that `model` does not declare."""
    unknown = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            unknown.append(f"{where}.{key}")
            continue
        nested = _model_type(field.annotation)
        if nested is not None and isinstance(value, dict):
            unknown += unknown_keys(nested, value, f"{where}.{key}")
    return unknown


def k8s_stand_in() -> types.ModuleType:
    """`kubernetes.client.models` with the fields (Kubernetes API names) of the objects the overlay uses."""

    def model(name: str, fields: dict[str, tuple[str, str]]) -> type:
        return type(name, (), {
            "openapi_types": {attr: kind for attr, (_, kind) in fields.items()},
            "attribute_map": {attr: key for attr, (key, _) in fields.items()},
            "__init__": lambda self, **kwargs: self.__dict__.update(kwargs),
        })

    models = types.ModuleType("kubernetes.client.models")
    specs = {
        "V1Volume": {"name": ("name", "str"), "empty_dir": ("emptyDir", "V1EmptyDirVolumeSource"),
                     "host_path": ("hostPath", "object"), "config_map": ("configMap", "object"),
                     "secret": ("secret", "object"), "persistent_volume_claim": ("persistentVolumeClaim", "object")},
        "V1EmptyDirVolumeSource": {"medium": ("medium", "str"), "size_limit": ("sizeLimit", "str")},
        "V1VolumeMount": {"mount_path": ("mountPath", "str"), "mount_propagation": ("mountPropagation", "str"),
                          "name": ("name", "str"), "read_only": ("readOnly", "bool"),
                          "recursive_read_only": ("recursiveReadOnly", "str"), "sub_path": ("subPath", "str"),
                          "sub_path_expr": ("subPathExpr", "str")},
        "V1ResourceRequirements": {"claims": ("claims", "list[object]"), "limits": ("limits", "dict(str, str)"),
                                   "requests": ("requests", "dict(str, str)")},
        "V1Toleration": {"effect": ("effect", "str"), "key": ("key", "str"), "operator": ("operator", "str"),
                         "toleration_seconds": ("tolerationSeconds", "int"), "value": ("value", "str")},
    }
    for name, fields in specs.items():
        setattr(models, name, model(name, fields))
    for name in ("V1Affinity", "V1EnvVar", "V1EnvFromSource"):  # imported by the pod settings' validators
        setattr(models, name, model(name, {}))
    return models


@pytest.fixture
def kubernetes_models(monkeypatch):
    if importlib.util.find_spec("kubernetes") is None:
        models = k8s_stand_in()
        client = types.ModuleType("kubernetes.client")
        client.models = models
        root = types.ModuleType("kubernetes")
        root.client = client
        for name, module in (("kubernetes", root), ("kubernetes.client", client),
                             ("kubernetes.client.models", models)):
            monkeypatch.setitem(sys.modules, name, module)


def settings_problems(document: dict[str, Any]) -> list[str]:
    """Every unknown key or invalid value in the document's stack-component settings."""
    from zenml.integrations.kubernetes import serialization_utils

    problems = []
    for where, key, value in component_settings(document):
        if key not in SETTINGS_CLASSES:
            problems.append(f"{where}: no settings class known for key '{key}'")
            continue
        for module, name in SETTINGS_CLASSES[key]:
            cls = settings_class(module, name)
            problems += [f"{path} (not a field of {name})" for path in unknown_keys(cls, value, where)]
            try:
                cls.model_validate(value)
            except Exception as exc:  # pydantic's ValidationError, or a K8s object's own
                problems.append(f"{where}: {name}: {exc}")
        for pod_key in ("pod_settings", "orchestrator_pod_settings"):
            for field, k8s_class in K8S_OBJECTS.items():
                items = (value.get(pod_key) or {}).get(field)
                for item in (items if isinstance(items, list) else [items] if items else []):
                    try:
                        serialization_utils.deserialize_kubernetes_model(item, k8s_class)
                    except KeyError as exc:
                        problems.append(f"{where}.{pod_key}.{field}: {exc}")
    return problems


def test_every_flavor_has_an_overlay():
    assert {"kubernetes", "vertex", "sagemaker", "skypilot", "kubernetes-step-operator", "vertex-step-operator",
            "sagemaker-step-operator"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("recipe", ["lora.yaml", "qlora.yaml"])
def test_overlay_merges_onto_the_recipe(recipe, stack):
    path, cfg = load_run_config(recipe, config_dir=CONFIGS, stack=stack)
    _, alone = load_run_config(recipe, config_dir=CONFIGS)
    assert cfg == alone  # the overlay changes where steps run, not what they compute
    merged = yaml.safe_load(path.read_text())
    assert merged == deep_merge(yaml.safe_load((CONFIGS / recipe).read_text()), overlay(stack))
    assert merged["secrets"] == ["hf", "comet"]


@pytest.mark.parametrize("stack", STACKS)
def test_overlay_validates_against_its_flavors_settings(stack, kubernetes_models):
    assert settings_problems(overlay(stack)) == []


@pytest.mark.parametrize(
    ("stack", "edit", "expected"),
    [
        ("kubernetes", lambda d: d["steps"]["train_sft"]["settings"]["orchestrator.kubernetes"].update(pod_setting={}),
         "orchestrator.kubernetes.pod_setting (not a field of KubernetesOrchestratorSettings)"),
        ("kubernetes", lambda d: d["steps"]["train_sft"]["settings"]["orchestrator.kubernetes"]["pod_settings"]
         ["volume_mounts"].append({"name": "x", "mountPth": "/x"}), "mountPth"),
        ("vertex", lambda d: d["steps"]["push_merged"]["settings"]["orchestrator.vertex"]["custom_job_parameters"]
         .update(accelerator_typ="NVIDIA_L4"), "custom_job_parameters.accelerator_typ"),
        ("sagemaker", lambda d: d["steps"]["smoke_generate"]["settings"]["orchestrator.sagemaker"]
         .update(instance_typ="ml.g5.2xlarge"), "orchestrator.sagemaker.instance_typ"),
        ("sagemaker", lambda d: d["steps"]["smoke_generate"]["settings"]["orchestrator.sagemaker"]
         .update(volume_size_in_gb="big"), "volume_size_in_gb"),
        ("skypilot", lambda d: d["settings"]["orchestrator"].update(accelerator="L4:1"),
         "settings.orchestrator.accelerator"),
        ("vertex-step-operator", lambda d: d["steps"]["train_sft"]["settings"]["step_operator.vertex"]
         .update(accelerator_cout=1), "step_operator.vertex.accelerator_cout"),
        ("ssh", lambda d: d["steps"]["train_sft"]["settings"]["orchestrator.ssh"].update(gpu_index=[0]),
         "orchestrator.ssh.gpu_index"),
    ],
)
def test_a_misspelt_key_fails(stack, edit, expected, kubernetes_models):
    document = yaml.safe_load(yaml.safe_dump(overlay(stack)))  # a deep copy: the anchors become separate dicts
    edit(document)
    problems = settings_problems(document)
    assert any(expected in p for p in problems), problems


def step_settings(document: dict[str, Any], step: str, key: str) -> dict[str, Any]:
    """The settings under `key` that apply to `step`: the step's own over the run-level ones."""
    run_level = (document.get("settings") or {}).get(key) or {}
    own = (((document.get("steps") or {}).get(step) or {}).get("settings") or {}).get(key) or {}
    return deep_merge(run_level, own)


def gibibytes(quantity: str) -> float:
    units = {"Gi": 1, "G": 1e9 / 2**30, "Ti": 1024, "Mi": 1 / 1024}
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if quantity.endswith(suffix):
            return float(quantity.removesuffix(suffix)) * factor
    return float(quantity) / 2**30


@pytest.mark.parametrize("step", GPU_STEPS)
@pytest.mark.parametrize(("stack", "key"), [("kubernetes", "orchestrator.kubernetes"),
                                            ("kubernetes-step-operator", "step_operator.kubernetes")])
def test_kubernetes_puts_each_gpu_step_on_a_gpu_with_shm_and_disk(step, stack, key):
    pod = step_settings(overlay(stack), step, key)["pod_settings"]
    limits, requests = pod["resources"]["limits"], pod["resources"]["requests"]
    assert int(limits["nvidia.com/gpu"]) >= 1 and requests["nvidia.com/gpu"] == limits["nvidia.com/gpu"]
    assert gibibytes(requests["ephemeral-storage"]) >= MIN_DISK_GB
    shm = {v["name"] for v in pod["volumes"] if (v.get("emptyDir") or {}).get("medium") == "Memory"}
    assert any(m["mountPath"] == "/dev/shm" and m["name"] in shm for m in pod["volume_mounts"])
    size = next(gibibytes(v["emptyDir"]["sizeLimit"]) for v in pod["volumes"] if v["name"] in shm)
    assert size + 32 <= gibibytes(limits["memory"])  # shm counts against the memory limit: leave room for the step


@pytest.mark.parametrize("step", GPU_STEPS)
def test_vertex_sagemaker_and_skypilot_put_each_gpu_step_on_a_gpu_with_disk(step):
    job = step_settings(overlay("vertex"), step, "orchestrator.vertex")["custom_job_parameters"]
    assert job["accelerator_type"].startswith("NVIDIA_") and job["accelerator_count"] >= 1
    assert job["boot_disk_size_gb"] >= MIN_DISK_GB
    sagemaker = step_settings(overlay("sagemaker"), step, "orchestrator.sagemaker")
    assert sagemaker["instance_type"].startswith(("ml.g", "ml.p")) and sagemaker["volume_size_in_gb"] >= MIN_DISK_GB
    sky = step_settings(overlay("skypilot"), step, "orchestrator")
    assert sky["accelerators"] and sky["disk_size"] >= MIN_DISK_GB
    assert "--gpus=all" in sky["docker_run_args"] and any(a.startswith("--shm-size=") for a in sky["docker_run_args"])


@pytest.mark.parametrize("step", GPU_STEPS)
def test_step_operator_overlays_send_each_gpu_step_to_the_step_operator_on_a_gpu(step):
    for stack in ("kubernetes-step-operator", "vertex-step-operator", "sagemaker-step-operator"):
        assert overlay(stack)["steps"][step]["step_operator"] is True, stack  # the stack's step operator
    job = step_settings(overlay("vertex-step-operator"), step, "step_operator.vertex")
    assert job["accelerator_type"].startswith("NVIDIA_") and job["accelerator_count"] >= 1
    assert job["boot_disk_size_gb"] >= MIN_DISK_GB
    sagemaker = step_settings(overlay("sagemaker-step-operator"), step, "step_operator.sagemaker")
    assert sagemaker["instance_type"].startswith(("ml.g", "ml.p"))
    assert sagemaker["estimator_args"]["volume_size"] >= MIN_DISK_GB


@pytest.mark.parametrize("step", GPU_STEPS)
def test_ssh_puts_each_gpu_step_on_a_gpu_with_shared_memory(step):
    settings = overlay("ssh")["steps"][step]["settings"]["orchestrator.ssh"]
    assert settings["gpu_indices"]  # compose's `deploy.resources.reservations.devices` for these GPUs
    assert settings["mounts"]["/dev/shm"] == "/dev/shm"  # compose services ignore docker_run_args' --shm-size
