#!/usr/bin/env python3
"""Differential test: random kustomizations built by the oracle
(`kubectl kustomize`, kustomize v5.5.0) and by our kustomize-build; stops at
the first mismatch and prints the input tree and a unified diff.

  differential.py --bin build/bin/kustomize-build [--count 300] [--seed 1] [--keep DIR]
"""
import argparse, difflib, os, random, shutil, subprocess, sys, tempfile

WORDS = ["alpha", "beta", "gamma", "delta", "web", "api", "db", "cache", "worker", "front"]
TRICKY = ["yes", "no", "on", "true", "1.0", "0777", "1e3", "", " lead", "trail ", "a: b", "#x",
          "- x", "*star", "multi\nline", "tab\there", "é", "null", "~", "2024-01-01",
          "x" * 90, "long words " * 12, "it's", 'say "hi"', "{a}", "[b]", "12:30", "-1", "+1"]


def q(s):
    """A double-quoted YAML scalar for any string."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def scalar(r):
    return r.choice(TRICKY + WORDS)


def name(r):
    return r.choice(WORDS) + ("-" + str(r.randint(0, 3)) if r.random() < 0.3 else "")


def deployment(r, n, cm, secret, sa):
    env = "\n".join(f"        - name: E{i}\n          value: {q(scalar(r))}" for i in range(r.randint(0, 3)))
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
  labels:
    app: {n}
  annotations:
    note: {q(scalar(r))}
spec:
  replicas: {r.randint(1, 5)}
  selector:
    matchLabels:
      app: {n}
  template:
    metadata:
      labels:
        app: {n}
    spec:
      serviceAccountName: {sa}
      containers:
      - name: main
        image: {r.choice(['nginx', 'nginx:1.25', 'redis:7', 'ghcr.io/org/app:v1', 'busybox@sha256:abc'])}
        env:
{env if env else '        - name: X' + chr(10) + '          value: "1"'}
        envFrom:
        - configMapRef:
            name: {cm}
        - secretRef:
            name: {secret}
        ports:
        - containerPort: {r.choice([80, 8080, 9090])}
      volumes:
      - name: c
        configMap:
          name: {cm}
"""


def service(r, n):
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {n}
spec:
  selector:
    app: {n}
  ports:
  - port: {r.choice([80, 443])}
    targetPort: {r.choice(['http', 8080])}
"""


def configmap(r, n):
    data = "\n".join(f"  k{i}: {q(scalar(r))}" for i in range(r.randint(0, 4)))
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\n" + (f"data:\n{data}\n" if data else "")


def misc(r, n):
    return r.choice([
        f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {n}\nspec:\n  tls:\n  - secretName: {n}-tls\n  rules:\n  - http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n          service:\n            name: {n}\n            port:\n              number: 80\n",
        f"apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: {n}\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: {n}\n  maxReplicas: {r.randint(2, 9)}\n",
        f"apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {n}\nspec:\n  serviceName: {n}\n  selector:\n    matchLabels:\n      app: {n}\n  template:\n    metadata:\n      labels:\n        app: {n}\n    spec:\n      containers:\n      - name: main\n        image: redis:7\n  volumeClaimTemplates:\n  - metadata:\n      name: data\n    spec:\n      accessModes: [ReadWriteOnce]\n",
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}-text\ndata:\n  script: |\n    #!/bin/sh\n    echo {q(scalar(r))}\n  long: {q(' '.join(r.choice(WORDS) for _ in range(r.randint(5, 30))))}\n  num: {r.choice(['1', '1.50', '0x1F', '017', '1e3', 'true', '~', '2024-05-06'])}\n",
        f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {n}\n",
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {n}\ntype: Opaque\ndata:\n  a: YQ==\n",
        f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: {n}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: {n}\nsubjects:\n- kind: ServiceAccount\n  name: {n}\n",
        f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: {n}\nrules: []\n",
        f"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: {n}\nspec:\n  v: {q(scalar(r))}\n  n: {r.choice(['1', '1.5', 'true', 'null', '0x10'])}\n",
        f"apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {n}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - name: c\n            image: nginx\n",
    ])


def kustomization(r, resources, gens, allow_ns=True):
    k = "resources:\n" + "".join(f"- {x}\n" for x in resources)
    if allow_ns and r.random() < 0.4:
        k += f"namespace: {name(r)}\n"
    if r.random() < 0.4:
        k += f"namePrefix: {name(r)}-\n"
    if r.random() < 0.3:
        k += f"nameSuffix: -{name(r)}\n"
    if r.random() < 0.3:
        k += f"commonLabels:\n  {name(r)}: {q(r.choice(WORDS))}\n"
    if r.random() < 0.3:
        k += f"labels:\n- pairs:\n    l{r.randint(0, 9)}: {q(r.choice(WORDS))}\n  includeSelectors: {r.choice(['true', 'false'])}\n  includeTemplates: {r.choice(['true', 'false'])}\n"
    if r.random() < 0.3:
        k += f"commonAnnotations:\n  a{r.randint(0, 9)}: {q(scalar(r))}\n"
    if r.random() < 0.3:
        k += f"images:\n- name: nginx\n  newTag: {q(r.choice(['1.27', 'latest', 'v2']))}\n"
        if r.random() < 0.5:
            k += "  newName: my.registry/nginx\n"
    if gens:
        k += gens
    if r.random() < 0.25 and DEPLOYMENTS:
        k += f"""replacements:
- source:
    kind: Deployment
    name: {DEPLOYMENTS[0]}
    fieldPath: {r.choice(['metadata.name', 'metadata.labels.app', 'spec.replicas', 'metadata.annotations.note'])}
  targets:
  - select:
      kind: {r.choice(['Deployment', 'ConfigMap', 'Service'])}
    fieldPaths:
    - {r.choice(['metadata.annotations.copied', 'spec.template.spec.containers.[name=main].image', 'data.k1'])}
    options:
      create: true
"""
    if r.random() < 0.15:
        k += "sortOptions:\n  order: fifo\n"
    if r.random() < 0.3:
        k += f"patches:\n- target:\n    kind: Deployment\n  patch: |-\n    - op: add\n      path: /metadata/annotations/patched\n      value: {q(r.choice(WORDS))}\n"
    if r.random() < 0.15:
        k += ("patches:\n" if "patches:" not in k else "") + f"""- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: x
    spec:
      template:
        spec:
          volumes:
          - name: c
            $patch: delete
          containers:
          - name: main
            ports:
            - containerPort: {r.choice([80, 8080, 9090, 7000])}
              name: p{r.randint(0, 9)}
"""
    if r.random() < 0.3:
        k += ("patches:\n" if "patches:" not in k else "") + f"""- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: x
    spec:
      template:
        spec:
          containers:
          - name: {r.choice(['main', 'side'])}
            image: {r.choice(['envoy:1', 'nginx:2'])}
            env:
            - name: {r.choice(['E0', 'NEW'])}
              value: {q(scalar(r))}
"""
    return k


def generators(r):
    g = ""
    if r.random() < 0.5:
        g += "configMapGenerator:\n- name: gen-cm\n  literals:\n" + "".join(
            f"  - {q('K%d=%s' % (i, r.choice(WORDS)))}\n" for i in range(r.randint(1, 3)))
        if r.random() < 0.3:
            g += "  options:\n    disableNameSuffixHash: true\n"
    if r.random() < 0.4:
        g += "secretGenerator:\n- name: gen-secret\n  literals:\n  - " + q("token=" + r.choice(WORDS)) + "\n"
    return g


DEPLOYMENTS = []


def make_case(r, root):
    os.makedirs(os.path.join(root, "base"))
    DEPLOYMENTS.clear()
    res = []
    for i in range(r.randint(1, 4)):
        n = name(r) + str(i)
        cm = r.choice(["gen-cm", n + "-cm"])
        secret = r.choice(["gen-secret", n + "-secret"])
        docs = [deployment(r, n, cm, secret, n), service(r, n), configmap(r, n + "-cm"), misc(r, n)]
        r.shuffle(docs)
        fn = f"r{i}.yaml"
        chosen = docs[: r.randint(1, 4)]
        if any(x.startswith("apiVersion: apps/v1\nkind: Deployment") for x in chosen):
            DEPLOYMENTS.append(n)
        with open(os.path.join(root, "base", fn), "w") as f:
            f.write("---\n".join(chosen))
        res.append(fn)
    with open(os.path.join(root, "base", "kustomization.yaml"), "w") as f:
        f.write(kustomization(r, res, generators(r)))
    if r.random() < 0.3:
        os.makedirs(os.path.join(root, "comp"))
        with open(os.path.join(root, "comp", "kustomization.yaml"), "w") as f:
            f.write("apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n" +
                    kustomization(r, [], generators(r) if r.random() < 0.3 else "", allow_ns=False).replace("resources:\n", "resources: []\n", 1))
        with open(os.path.join(root, "base", "kustomization.yaml"), "a") as f:
            f.write("components:\n- ../comp\n")
    if r.random() < 0.6:
        os.makedirs(os.path.join(root, "overlay"))
        with open(os.path.join(root, "overlay", "kustomization.yaml"), "w") as f:
            f.write(kustomization(r, ["../base"], ""))
        return os.path.join(root, "overlay")
    return os.path.join(root, "base")


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", default="")
    a = ap.parse_args()
    ok = 0
    rejected = 0
    for i in range(a.count):
        r = random.Random(a.seed * 100003 + i)
        root = tempfile.mkdtemp(prefix="kz-diff-")
        target = make_case(r, root)
        rc1, out1, err1 = run(["kubectl", "kustomize", target])
        rc2, out2, err2 = run([a.bin, target])
        same = (rc1 == 0) == (rc2 == 0) and (rc1 != 0 or out1 == out2)
        if not same:
            print(f"MISMATCH in variation {i} (seed {a.seed}); input under {root}")
            for dp, _, fns in os.walk(root):
                for fn in sorted(fns):
                    p = os.path.join(dp, fn)
                    print(f"--- {os.path.relpath(p, root)}")
                    print(open(p).read())
            if rc1 != 0 or rc2 != 0:
                print(f"oracle rc={rc1} err={err1.strip()[:500]}")
                print(f"ours   rc={rc2} err={err2.strip()[:500]}")
            else:
                sys.stdout.writelines(difflib.unified_diff(
                    out1.splitlines(True), out2.splitlines(True), "kubectl kustomize", "kustomize-build", n=2))
            if a.keep:
                shutil.copytree(root, a.keep, dirs_exist_ok=True)
            shutil.rmtree(root)
            print(f"{ok} of {i + 1} variations matched before the mismatch")
            return 1
        ok += 1
        rejected += rc1 != 0
        shutil.rmtree(root)
    print(f"all {ok} variations identical (seed {a.seed}); {rejected} of them rejected by both")
    return 0


if __name__ == "__main__":
    sys.exit(main())
