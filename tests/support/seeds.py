"""Extract the Kubernetes manifests embedded in the seed documents (/work/shared/seeds/*.txt).

The seeds are scraped web pages. Their YAML comes in two forms:
- indented blocks, decorated with callout numbers (`storage: 5Gi 1`), `<placeholders>` and `...` elisions;
- "flattened" blocks, where the scraper joined every line of a manifest with spaces (sometimes with nothing),
  so the indentation is gone: `apiVersion: v1 kind: ClusterRole metadata: name: x rules: - apiGroups: [...]`.
Indented blocks are cleaned and handed to PyYAML. Flattened ones are re-nested with a small shape table of the
kinds the seeds use: each key is placed as deep as the shapes allow, backtracking when a later key fits nowhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _seed_dir() -> Path:
    """The seed documents: `shared/seeds` beside the checkout (as CI lays it out), else this workplace's copy."""
    beside = Path(__file__).resolve().parents[3] / "shared" / "seeds"
    return beside if beside.is_dir() else Path("/work/shared/seeds")


SEED_DIR = _seed_dir()

# ---- shapes: what may nest under what (only what the seeds need) -----------------------------------------
# A shape is "s" (scalar), "m" (map of scalars, any keys), ("list", shape) or a dict of field -> shape.
Shape = Any
SCALAR, STRMAP = "s", "m"


def listof(shape: Shape) -> tuple[str, Shape]:
    return ("list", shape)


META = {"name": SCALAR, "namespace": SCALAR, "generateName": SCALAR, "labels": STRMAP, "annotations": STRMAP,
        "finalizers": listof(SCALAR)}
SELECTOR_REQ = {"key": SCALAR, "operator": SCALAR, "values": listof(SCALAR)}
LABEL_SELECTOR = {"matchLabels": STRMAP, "matchExpressions": listof(SELECTOR_REQ)}
RESOURCES = {"requests": STRMAP, "limits": STRMAP}
TYPED_REF = {"apiGroup": SCALAR, "kind": SCALAR, "name": SCALAR, "namespace": SCALAR}
PVC_SPEC = {"accessModes": listof(SCALAR), "resources": RESOURCES, "storageClassName": SCALAR,
            "volumeMode": SCALAR, "volumeName": SCALAR, "selector": LABEL_SELECTOR, "dataSource": TYPED_REF,
            "dataSourceRef": TYPED_REF}
NODE_AFFINITY = {"required": {"nodeSelectorTerms": listof({"matchExpressions": listof(SELECTOR_REQ),
                                                            "matchFields": listof(SELECTOR_REQ)})}}
PV_SPEC = {"capacity": STRMAP, "accessModes": listof(SCALAR), "volumeMode": SCALAR, "storageClassName": SCALAR,
           "persistentVolumeReclaimPolicy": SCALAR, "local": {"path": SCALAR, "fsType": SCALAR},
           "hostPath": {"path": SCALAR, "type": SCALAR}, "nodeAffinity": NODE_AFFINITY,
           "mountOptions": listof(SCALAR)}
DV_SOURCE = {"http": {"url": SCALAR, "secretRef": SCALAR, "certConfigMap": SCALAR},
             "registry": {"url": SCALAR}, "s3": {"url": SCALAR}, "blank": STRMAP, "upload": STRMAP,
             "pvc": {"namespace": SCALAR, "name": SCALAR}}
DV_SPEC = {"source": DV_SOURCE, "pvc": PVC_SPEC, "storage": PVC_SPEC, "contentType": SCALAR,
           "preallocation": SCALAR}
VMI_SPEC = {"domain": {"devices": {"disks": listof({"name": SCALAR, "bootOrder": SCALAR,
                                                    "disk": {"bus": SCALAR}, "cdrom": {"bus": SCALAR}})},
                       "resources": RESOURCES},
            "volumes": listof({"name": SCALAR, "dataVolume": {"name": SCALAR},
                               "persistentVolumeClaim": {"claimName": SCALAR},
                               "containerDisk": {"image": SCALAR}})}
RULE = {"apiGroups": listof(SCALAR), "resources": listof(SCALAR), "verbs": listof(SCALAR),
        "resourceNames": listof(SCALAR), "nonResourceURLs": listof(SCALAR)}
TOP = {"apiVersion": SCALAR, "kind": SCALAR, "metadata": META}
KINDS: dict[str, dict[str, Shape]] = {
    "PersistentVolumeClaim": {"spec": PVC_SPEC},
    "PersistentVolume": {"spec": PV_SPEC},
    "DataVolume": {"spec": DV_SPEC},
    "ObjectTransfer": {"spec": {"source": {"kind": SCALAR, "namespace": SCALAR, "name": SCALAR,
                                           "apiVersion": SCALAR, "requiredAnnotations": STRMAP},
                                "target": {"namespace": SCALAR, "name": SCALAR}, "parentName": SCALAR}},
    "VirtualMachine": {"spec": {"running": SCALAR, "runStrategy": SCALAR,
                                "template": {"metadata": META, "spec": VMI_SPEC},
                                "dataVolumeTemplates": listof({"metadata": META, "spec": DV_SPEC})}},
    "ClusterRole": {"rules": listof(RULE)},
    "Role": {"rules": listof(RULE)},
    "RoleBinding": {"subjects": listof(TYPED_REF), "roleRef": TYPED_REF},
    "ClusterRoleBinding": {"subjects": listof(TYPED_REF), "roleRef": TYPED_REF},
}

CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
CALLOUTS = re.compile(r"(?<=[^\s:])(\s+\d{1,2})+\s*$")  # "storage: 5Gi 1 2" -> "storage: 5Gi"
PLACEHOLDER = re.compile(r"<([^<>\n]+)>")
DOC_START = re.compile(r"(?:kind:\s*\S+\s+)?apiVersion:\s*\S+")


@dataclass
class SeedDoc:
    """One manifest found in a seed: where, its cleaned text, and the object (None if it could not be parsed)."""

    seed: str
    index: int
    form: str  # "indented" or "flattened"
    text: str
    obj: dict[str, Any] | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        kind = (self.obj or {}).get("kind", "unparsed")
        name = ((self.obj or {}).get("metadata") or {}).get("name", "")
        return f"{self.seed[:3]}-{self.index}-{kind}-{name}"


def fill_placeholder(match: re.Match[str]) -> str:
    """`<2Gi>` -> `2Gi`, `</dev/loop10>` -> `/dev/loop10`, `<Source namespace>` -> `source-namespace`."""
    inner = match.group(1).strip()
    return re.sub(r"\s+", "-", inner.lower()) if " " in inner else inner


def clean_value(text: str) -> str:
    text = PLACEHOLDER.sub(fill_placeholder, text)
    return CALLOUTS.sub("", text).strip()


# ---- indented blocks -------------------------------------------------------------------------------------

YAML_LINE = re.compile(r"^(- |[\w\"'./<>-]+:(\s|$)|#)")


def indented_blocks(text: str) -> Iterator[str]:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)(apiVersion|kind):\s*\S+\s*$", line)
        if not m:
            i += 1
            continue
        base = len(m.group(1))
        block = [line[base:]]
        i += 1
        while i < len(lines):
            cur = lines[i]
            stripped = cur.strip()
            indent = len(cur) - len(cur.lstrip())
            if not stripped:
                block.append("")
            elif stripped == "...":
                pass  # an elision in the docs, not YAML's document end
            elif indent > base or (indent == base and YAML_LINE.match(stripped)):
                block.append(cur[base:])
            else:
                break
            i += 1
        yield "\n".join(block).rstrip() + "\n"


def parse_indented(block: str) -> dict[str, Any]:
    cleaned = "\n".join(PLACEHOLDER.sub(fill_placeholder, CALLOUTS.sub("", line)) for line in block.splitlines())
    obj = yaml.safe_load(cleaned)
    if not isinstance(obj, dict):
        raise ValueError("not a mapping")
    return obj


# ---- flattened blocks ------------------------------------------------------------------------------------

TOKEN = re.compile(r"(?P<dash>(?<!\S)-(?=\s))|(?P<key>(?<!\S)[A-Za-z_][\w./-]*:(?=\s|$))")


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split flattened YAML into ("key", name), ("dash", "-") and ("value", text) tokens."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    for m in TOKEN.finditer(text):
        between = text[pos:m.start()].strip()
        if between:
            tokens.append(("value", between))
        tokens.append(("key", m.group("key")[:-1]) if m.group("key") else ("dash", "-"))
        pos = m.end()
    rest = text[pos:].strip()
    if rest:
        tokens.append(("value", rest))
    return tokens


class Renester:
    """Backtracking placement of flattened tokens into the nesting a shape allows, longest mappings first."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t = tokens

    def at(self, i: int, kind: str) -> bool:
        return i < len(self.t) and self.t[i][0] == kind

    def value(self, shape: Shape, i: int) -> Iterator[tuple[Any, int]]:
        if self.at(i, "value"):
            parsed = yaml.safe_load(clean_value(self.t[i][1]))
            if shape == SCALAR or not isinstance(parsed, (str, int, float, bool)):
                yield parsed, i + 1
            return
        if shape == SCALAR:
            return
        if isinstance(shape, tuple):
            yield from self.items(shape[1], i)
        else:
            yield from self.mapping(shape, i, frozenset())
        yield None, i  # an empty value: `annotations:` with nothing under it

    def items(self, shape: Shape, i: int) -> Iterator[tuple[Any, int]]:
        if not self.at(i, "dash"):
            return
        for item, j in self.value(shape, i + 1):
            if item is None:
                continue
            for rest, k in self.items(shape, j):
                yield [item, *rest], k
            yield [item], j

    def mapping(self, shape: Shape, i: int, seen: frozenset[str]) -> Iterator[tuple[Any, int]]:
        # Typed mappings take as many keys as they can; free maps (labels, requests) as few as they can,
        # so that `labels: a: b name: x` leaves `name` to metadata unless nothing else fits.
        free = shape == STRMAP
        if seen and free:
            yield {}, i
        if self.at(i, "key"):
            key = self.t[i][1]
            child = SCALAR if shape == STRMAP else shape.get(key) if isinstance(shape, dict) else None
            if child is not None and key not in seen:
                for val, j in self.value(child, i + 1):
                    if shape == STRMAP and val is None:
                        continue
                    for rest, k in self.mapping(shape, j, seen | {key}):
                        yield {key: val, **rest}, k
        if seen and not free:
            yield {}, i


def parse_flattened(text: str) -> dict[str, Any]:
    tokens = tokenize(text)
    kind = next((tokens[i + 1][1] for i, t in enumerate(tokens[:-1]) if t == ("key", "kind")), None)
    if kind not in KINDS:
        raise ValueError(f"no shape for kind {kind!r}; cannot re-nest a flattened manifest of it")
    shape = {**TOP, **KINDS[kind]}
    renester = Renester(tokens)
    for obj, end in renester.mapping(shape, 0, frozenset()):
        if end == len(tokens):
            return dict(obj)
    stuck = max((end for _, end in renester.mapping(shape, 0, frozenset())), default=0)
    raise ValueError(f"no nesting fits; stuck at token {stuck}: {tokens[stuck:stuck + 3]}")


def flattened_blocks(text: str) -> Iterator[str]:
    for line in text.splitlines():
        # the scraper sometimes glued keys to the previous value: "v1kind:", "demo-namespacespec:"
        line = re.sub(r"(?<=[a-z0-9])(kind|metadata|spec):", r" \1:", line)
        starts = [m.start() for m in DOC_START.finditer(line)]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(line)
            chunk = line[start:end]
            first_value = re.match(r"\S+:\s*\S+", chunk)
            if not first_value or not re.search(r"(?<!\S)[A-Za-z_][\w./-]*:(\s|$)", chunk[first_value.end():]):
                continue  # a one-key line: the start of an indented block
            chunk = re.split(r"\s---(\s|$)", chunk)[0]
            cjk = CJK.search(chunk)
            chunk = chunk[:cjk.start()] if cjk else chunk
            chunk = re.split(r"\s#", chunk)[0]  # a trailing comment swallows the rest of the joined line
            yield chunk.strip()


# ---- all seeds -------------------------------------------------------------------------------------------


def seed_documents(seed_dir: Path = SEED_DIR) -> list[SeedDoc]:
    docs: list[SeedDoc] = []
    for path in sorted(seed_dir.glob("*.txt")):
        text = path.read_text(errors="replace")
        found = [("indented", b) for b in indented_blocks(text)] + [("flattened", b) for b in flattened_blocks(text)]
        for index, (form, block) in enumerate(found):
            doc = SeedDoc(path.name, index, form, block)
            try:
                obj = parse_indented(block) if form == "indented" else parse_flattened(block)
                if "apiVersion" not in obj or "kind" not in obj:
                    raise ValueError("apiVersion or kind missing")
                doc.obj = obj
            except (ValueError, yaml.YAMLError) as e:
                doc.error = str(e).splitlines()[0]
            docs.append(doc)
    return docs


if __name__ == "__main__":
    for d in seed_documents():
        print(d.id, d.form, "OK" if d.obj else f"ERROR {d.error}")
        if d.obj:
            print(yaml.safe_dump(d.obj, sort_keys=False))
