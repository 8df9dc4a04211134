#!/usr/bin/env python3
"""Example cl2 out-of-process measurement plugin: counts pods at start and gather.

cl2 starts this program once per measurement instance and keeps it running for the whole
test. Each action arrives as one JSON line on stdin; the plugin answers each with exactly one
JSON line on stdout (log to stderr). See docs/plugins.md for the protocol.

Params (all optional):
  namespace      count pods of this namespace only (default: all namespaces)
  labelSelector  count only matching pods
  maxPods        SLO: fail the verdict when more pods than this exist at gather

Pods are counted with `kubectl` against the kubeconfig cl2 passes; without a kubeconfig (or
without kubectl) the count is reported as -1 and no verdict is given.
"""
import json
import shutil
import subprocess
import sys

state = {}


def log(msg):
    print(f"pod-counter: {msg}", file=sys.stderr, flush=True)


def count_pods(req):
    kubeconfig = req.get("kubeconfig")
    kubectl = shutil.which("kubectl")
    if not kubeconfig or not kubectl:
        return -1
    params = req.get("params", {})
    cmd = [kubectl, "--kubeconfig", kubeconfig, "get", "pods", "-o", "name"]
    ns = params.get("namespace")
    cmd += ["-n", ns] if ns else ["--all-namespaces"]
    if params.get("labelSelector"):
        cmd += ["-l", params["labelSelector"]]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl failed: {out.stderr.strip()}")
    return len([line for line in out.stdout.splitlines() if line.strip()])


def handle(req):
    if req.get("protocolVersion") != 1:
        return {"error": f"unsupported protocolVersion {req.get('protocolVersion')}"}
    action = req.get("action")
    ident = req.get("identifier", "")
    params = req.get("params", {})
    unknown = set(params) - {"namespace", "labelSelector", "maxPods"}
    if unknown:
        return {"error": f"unknown params: {', '.join(sorted(unknown))}"}
    if action == "start":
        state[ident] = count_pods(req)
        return {"summaries": []}
    if action == "gather":
        if ident not in state:
            return {"error": "measurement has not been started"}
        start = state.pop(ident)
        end = count_pods(req)
        summary = {
            "name": f"PodCounter_{ident}",
            "content": {
                "version": "v1",
                "dataItems": [{
                    "data": {"start": start, "end": end, "delta": end - start},
                    "unit": "pods",
                    "labels": {"Metric": "pod_count"},
                }],
            },
            "verdict": "none",
            "violations": [],
            "keyNumbers": [{"name": "pods", "value": end, "unit": ""}],
        }
        max_pods = params.get("maxPods")
        if max_pods is not None and end >= 0:
            summary["slo"] = f"pods <= {max_pods}"
            if end > max_pods:
                summary["verdict"] = "fail"
                summary["violations"] = [f"{end} pods exist, at most {max_pods} allowed"]
            else:
                summary["verdict"] = "pass"
        return {"summaries": [summary]}
    return {"error": f"unknown action {action!r} (expected start or gather)"}


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            print(json.dumps({"error": f"invalid request: {e}"}), flush=True)
            continue
        if req.get("action") == "dispose":
            log("dispose: exiting")
            return
        try:
            resp = handle(req)
        except Exception as e:  # report, never crash mid-protocol
            resp = {"error": str(e)}
        print(json.dumps(resp), flush=True)


if __name__ == "__main__":
    main()
