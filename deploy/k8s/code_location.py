"""The code location as deployed on Kubernetes: the service's Definitions, run with Dagster's
``k8s_job_executor`` (each step of a run in its own pod), SliceGAN training steps on a GPU node.

The Helm chart's gRPC server loads this file (``dagsterApiGrpcArgs: [--python-file,
/opt/progral/deploy/k8s/code_location.py]``, deploy/helm/values.yaml); the image has
``dagster-k8s`` (deploy/Dockerfile). The run itself is a pod started by the chart's
``K8sRunLauncher``; the executor then starts one Kubernetes Job per step, so the ingestion of a
ranged run, the feature tables and each model train in pods sized for them, and a step that
trains SliceGAN asks for ``nvidia.com/gpu: 1`` on a node matching ``GPU_NODE_SELECTOR``
(``PROGRAL_K8S_GPU_NODE_SELECTOR``, JSON; the GPU nodes' taint is tolerated).

Which steps need a GPU is decided from the assets, not from a list of step names kept by hand:
an asset in a group, or with a key, that names SliceGAN (``GPU_WORDS``). Nothing here is a
scheduler: Dagster's executor and Kubernetes do the placing.
"""

from __future__ import annotations

import json
import os

import dagster as dg

GPU_WORDS = ("slicegan",)
GPU_NODE_SELECTOR: dict[str, str] = json.loads(
    os.environ.get("PROGRAL_K8S_GPU_NODE_SELECTOR", '{"progral.lab/node-pool": "gpu"}')
)
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
# every step: enough for ingestion ranges and the CPU models (DESIGN.md budgets: < 8 GB per training asset)
STEP_RESOURCES = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "8Gi"}}
GPU_RESOURCES = {
    "requests": {"cpu": "4", "memory": "16Gi"},
    "limits": {"memory": "32Gi", "nvidia.com/gpu": 1},
}


def needs_gpu(assets_def: dg.AssetsDefinition) -> bool:
    """Whether a step of these assets trains or runs SliceGAN (its group or key names it)."""
    names = [k.to_user_string().lower() for k in assets_def.keys]
    names += [str(g).lower() for g in assets_def.group_names_by_key.values()]
    return any(w in n for n in names for w in GPU_WORDS)


def per_step_k8s_config(assets) -> dict[str, dict]:
    """``per_step_k8s_config`` of the executor: a GPU, the GPU node pool and its toleration for
    every step (op name) of a SliceGAN asset."""
    out: dict[str, dict] = {}
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and a.is_executable and needs_gpu(a):
            out[a.op.name] = {
                "container_config": {"resources": GPU_RESOURCES},
                "pod_spec_config": {
                    "node_selector": dict(GPU_NODE_SELECTOR),
                    "tolerations": GPU_TOLERATIONS,
                },
            }
    return out


def k8s_definitions(service_defs: dg.Definitions | None = None) -> dg.Definitions:
    """The service's Definitions with the Kubernetes job executor."""
    from dagster_k8s import k8s_job_executor

    if service_defs is None:
        from progral_dagster.definitions import defs as service_defs
    executor = k8s_job_executor.configured(
        {
            "max_concurrent": int(os.environ.get("PROGRAL_K8S_MAX_CONCURRENT_STEPS", "4")),
            "step_k8s_config": {"container_config": {"resources": STEP_RESOURCES}},
            "per_step_k8s_config": per_step_k8s_config(service_defs.assets or []),
        }
    )
    return dg.Definitions.merge(service_defs, dg.Definitions(executor=executor))


@dg.definitions
def defs() -> dg.Definitions:
    return k8s_definitions()
