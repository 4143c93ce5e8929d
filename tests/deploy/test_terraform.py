"""Offline checks of infra/cluster-iac, the Terraform for the EKS cluster.

`terraform init` cannot download providers or modules on these machines, so `terraform validate`
cannot run. What runs instead: `terraform fmt -check`; `terraform plan` on a copy of variables.tf
alone, which needs no provider and so exercises the variable validations for real; and static
checks on the configuration, read by the small HCL reader below. Each check has a negative test
that breaks a copy of the configuration and expects the check to say so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from aistack.models.build_pod import BuildPodSettings

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "infra" / "cluster-iac"
TERRAFORM = shutil.which("terraform") or "/usr/local/bin/terraform"
needs_terraform = pytest.mark.skipif(
    not Path(TERRAFORM).exists(),
    reason="the terraform binary is not installed (CI's image has /usr/local/bin/terraform)",
)

# --- A small HCL reader -------------------------------------------------------------------------
#
# Enough HCL for these checks, not a full parser. `mask` returns the text with comments and the
# literal parts of strings and heredocs blanked out (offsets unchanged; template interpolations
# `${...}` kept, as they are code). On the masked text braces, `=` and `var.x` can only be code,
# so plain scanning finds blocks (`type "label" { ... }`), attributes (`key = expr`, also inside
# object values `{ key = expr }`, keys bare or quoted) and references; literal values are then
# read from the original text at the same offsets. Unsupported: `key: value` object syntax and
# attribute values that span lines without an open bracket (neither is produced by terraform fmt
# for this configuration). Malformed input raises HclError rather than guessing.


class HclError(ValueError):
    pass


_HEREDOC = re.compile(r"<<-?([A-Za-z_][\w-]*)[ \t]*\n")
_IDENT = re.compile(r"[A-Za-z_][\w-]*")


class _Masker:
    def __init__(self, text: str):
        self.text, self.out, self.n = text, list(text), len(text)

    def blank(self, a: int, b: int, newlines: bool = False) -> None:
        for k in range(a, min(b, self.n)):
            if newlines or self.out[k] != "\n":
                self.out[k] = " "

    def code(self, i: int, until_brace: bool = False) -> int:
        """Scan code from i; with until_brace, return the index of the unmatched `}`."""
        depth, t = 0, self.text
        while i < self.n:
            if t[i] == "#" or t.startswith("//", i):
                j = t.find("\n", i)
                j = self.n if j < 0 else j
                self.blank(i, j)
                i = j
            elif t.startswith("/*", i):
                j = t.find("*/", i + 2)
                if j < 0:
                    raise HclError("unterminated /* comment")
                self.blank(i, j + 2)
                i = j + 2
            elif t[i] == '"':
                i = self.template(i + 1, quoted=True)
            elif (m := _HEREDOC.match(t, i)) is not None:
                end = re.compile(rf"^[ \t]*{re.escape(m.group(1))}[ \t]*$", re.M).search(t, m.end())
                if end is None:
                    raise HclError(f"unterminated heredoc {m.group(1)}")
                # Its newlines go too: a heredoc is one value, not several lines of code.
                self.blank(m.end() - 1, m.end(), newlines=True)
                self.template(m.end(), quoted=False, stop=end.start(), newlines=True)
                self.blank(end.start(), end.end(), newlines=True)
                i = end.end()
            elif t[i] == "{":
                depth += 1
                i += 1
            elif t[i] == "}":
                if until_brace and depth == 0:
                    return i
                depth -= 1
                i += 1
            else:
                i += 1
        if until_brace:
            raise HclError("unterminated interpolation")
        return i

    def template(self, i: int, quoted: bool, stop: int | None = None, newlines: bool = False) -> int:
        """Blank a string or heredoc body from i, keeping interpolations; return the end."""
        t, stop = self.text, self.n if stop is None else stop
        while i < stop:
            if quoted and t[i] == "\\":
                self.blank(i, i + 2)
                i += 2
            elif t.startswith(("$${", "%%{"), i):  # escaped, literal
                self.blank(i, i + 3)
                i += 3
            elif t.startswith(("${", "%{"), i):
                i = self.code(i + 2, until_brace=True) + 1
            elif quoted and t[i] == '"':
                return i + 1
            elif quoted and t[i] == "\n":
                raise HclError("newline in a quoted string")
            else:
                self.blank(i, i + 1, newlines)
                i += 1
        if quoted:
            raise HclError("unterminated string")
        return i


def mask(text: str) -> str:
    m = _Masker(text)
    m.code(0)
    return "".join(m.out)


@dataclass
class Doc:
    path: Path
    text: str
    masked: str

    @classmethod
    def load(cls, path: Path) -> Doc:
        text = path.read_text()
        return cls(path, text, mask(text))

    def where(self, offset: int) -> str:
        return f"{self.path.name}:{self.text.count(chr(10), 0, offset) + 1}"

    def match_brace(self, i: int) -> int:
        depth = 0
        for k in range(i, len(self.masked)):
            depth += {"{": 1, "}": -1}.get(self.masked[k], 0)
            if depth == 0:
                return k
        raise HclError(f"{self.where(i)}: unbalanced braces")


@dataclass
class Attr:
    doc: Doc
    key: str
    start: int
    end: int

    @property
    def code(self) -> str:
        return self.doc.masked[self.start : self.end].strip()

    @property
    def source(self) -> str:
        return self.doc.text[self.start : self.end].strip()

    def literal(self):
        """The value when it is a plain string, number or bool; None for any expression."""
        src = self.source
        if src in ("true", "false"):
            return src == "true"
        if re.fullmatch(r"-?\d+(\.\d+)?", src):
            return json.loads(src)
        if src.startswith('"') and src.endswith('"') and "${" not in src and "%{" not in src:
            return json.loads(src)
        return None

    def object(self) -> Body | None:
        """The value's items when it is an object constructor `{ ... }`."""
        if not self.code.startswith("{"):
            return None
        open_ = self.doc.masked.index("{", self.start)
        return Body(self.doc, open_ + 1, self.doc.match_brace(open_))


@dataclass
class Block:
    doc: Doc
    type: str
    labels: list[str]
    start: int  # offset of the header, for messages
    body: Body


class Body:
    """The items of a file, a block body or an object value, in order."""

    def __init__(self, doc: Doc, start: int, end: int):
        self.doc, self.start, self.end = doc, start, end
        self.items: list[Attr | Block] = []
        m, i = doc.masked, start
        while True:
            while i < end and m[i] in " \t\r\n,":
                i += 1
            if i >= end:
                return
            head = i
            key, i = self._name(i)
            j = i
            while j < end and m[j] in " \t":
                j += 1
            if j + 1 < end and m[j] == "=" and m[j + 1] != "=":
                v0 = j + 1
                i = self._value_end(v0, end)
                self.items.append(Attr(doc, key, v0, i))
                continue
            labels = []
            while True:
                while j < end and m[j] in " \t":
                    j += 1
                if j >= end:
                    raise HclError(f"{doc.where(head)}: {key} is neither an attribute nor a block")
                if m[j] == "{":
                    break
                label, j = self._name(j)
                labels.append(label)
            close = doc.match_brace(j)
            self.items.append(Block(doc, key, labels, head, Body(doc, j + 1, close)))
            i = close + 1

    def _name(self, i: int) -> tuple[str, int]:
        m = self.doc.masked
        if m[i] == '"':
            j = m.index('"', i + 1)  # the masked string holds only spaces up to its closing quote
            return json.loads(self.doc.text[i : j + 1]), j + 1
        ident = _IDENT.match(m, i)
        if ident is None:
            raise HclError(f"{self.doc.where(i)}: expected a name, found {m[i]!r}")
        return ident.group(), ident.end()

    def _value_end(self, i: int, end: int) -> int:
        """An attribute value ends at a newline or comma outside brackets."""
        m, depth = self.doc.masked, 0
        while i < end:
            c = m[i]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c in "\n," and depth == 0:
                return i
            i += 1
        return end

    def attr(self, key: str) -> Attr | None:
        return next((x for x in self.items if isinstance(x, Attr) and x.key == key), None)

    def attrs(self) -> list[Attr]:
        return [x for x in self.items if isinstance(x, Attr)]

    def blocks(self, type_: str) -> list[Block]:
        return [x for x in self.items if isinstance(x, Block) and x.type == type_]

    def get(self, *path: str):
        """Follow keys through nested blocks or object values; None where one is missing."""
        node: Body | None = self
        for key in path:
            if node is None:
                return None
            blocks = node.blocks(key)
            if blocks:
                node = blocks[0].body
                continue
            a = node.attr(key)
            if a is None:
                return None
            node = a.object() if key != path[-1] else a
        return node


class Config:
    def __init__(self, folder: Path, pattern: str = "*.tf"):
        self.docs = [Doc.load(p) for p in sorted(folder.glob(pattern))]
        self.files = {d.path.name: Body(d, 0, len(d.text)) for d in self.docs}

    def blocks(self, type_: str, *labels: str) -> list[Block]:
        found = [b for body in self.files.values() for b in body.blocks(type_)]
        return [b for b in found if b.labels[: len(labels)] == list(labels)]


# --- Checks: each returns a list of problems, empty when the configuration passes ----------------

# Module inputs this configuration may use, with the module major they belong to. Read from the
# modules' variables.tf for terraform-aws-modules/eks v21 and terraform-aws-modules/vpc v6 (EKS
# v21 renamed the v20 cluster_* inputs: cluster_name -> name, cluster_version ->
# kubernetes_version, cluster_addons -> addons, ...). A name outside the list fails the check, so
# a v20-style input is caught before anyone runs `terraform init`.
MODULE_INPUTS = {
    "terraform-aws-modules/eks/aws": (
        "21.",
        {
            "name",
            "kubernetes_version",
            "vpc_id",
            "subnet_ids",
            "control_plane_subnet_ids",
            "endpoint_private_access",
            "endpoint_public_access",
            "endpoint_public_access_cidrs",
            "enabled_log_types",
            "authentication_mode",
            "access_entries",
            "enable_cluster_creator_admin_permissions",
            "enable_irsa",
            "addons",
            "eks_managed_node_groups",
            "encryption_config",
            "create_kms_key",
            "cloudwatch_log_group_retention_in_days",
            "tags",
        },
    ),
    "terraform-aws-modules/vpc/aws": (
        "6.",
        {
            "name",
            "cidr",
            "azs",
            "private_subnets",
            "public_subnets",
            "intra_subnets",
            "enable_nat_gateway",
            "single_nat_gateway",
            "one_nat_gateway_per_az",
            "enable_dns_hostnames",
            "enable_dns_support",
            "public_subnet_tags",
            "private_subnet_tags",
            "intra_subnet_tags",
            "tags",
        },
    ),
}
# Attributes of one entry of eks_managed_node_groups (the v21 object type).
NODE_GROUP_INPUTS = {
    "name",
    "ami_type",
    "instance_types",
    "capacity_type",
    "min_size",
    "max_size",
    "desired_size",
    "labels",
    "taints",
    "block_device_mappings",
    "subnet_ids",
    "update_config",
    "kubernetes_version",
    "iam_role_additional_policies",
    "use_latest_ami_release_version",
}
META_ARGUMENTS = {"source", "version", "providers", "count", "for_each", "depends_on"}
EKS_TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
_VAR_REF = re.compile(r"(?<![\w.])var\.([A-Za-z_][\w-]*)")


def check_variables(cfg: Config) -> list[str]:
    problems = []
    for v in cfg.blocks("variable"):
        name, where = v.labels[0], v.doc.where(v.start)
        description = v.body.attr("description")
        if description is None or not isinstance(description.literal(), str) or not description.literal().strip():
            problems.append(f"{where}: variable {name} has no description (a non-empty string)")
        if v.body.attr("type") is None:
            problems.append(f"{where}: variable {name} has no type")
    return problems


def check_variable_references(cfg: Config) -> list[str]:
    declared = {v.labels[0] for v in cfg.blocks("variable")}
    referenced, used = {}, set()
    for doc in cfg.docs:
        spans = [(v.body.start, v.body.end) for v in cfg.files[doc.path.name].blocks("variable")]
        for m in _VAR_REF.finditer(doc.masked):
            referenced.setdefault(m.group(1), doc.where(m.start()))
            # A use inside any variable block (its own validation, or since Terraform 1.9 another
            # variable's) does not count: the variable must feed the configuration itself.
            if not any(a <= m.start() < b for a, b in spans):
                used.add(m.group(1))
    undeclared = sorted((name, where) for name, where in referenced.items() if name not in declared)
    problems = [f"{where}: var.{name} is not declared" for name, where in undeclared]
    problems += [f"variable {name} is declared but never used" for name in sorted(declared - used)]
    return problems


def check_module_versions(cfg: Config) -> list[str]:
    problems = []
    for mod in cfg.blocks("module"):
        where, version = mod.doc.where(mod.start), mod.body.attr("version")
        value = version.literal() if version else None
        if not isinstance(value, str) or not re.fullmatch(r"\d+\.\d+\.\d+", value):
            found = version.source if version else "none"
            problems.append(f"{where}: module {mod.labels[0]} must pin an exact version, has {found}")
    return problems


def check_module_inputs(cfg: Config) -> list[str]:
    problems = []
    for mod in cfg.blocks("module"):
        source = mod.body.attr("source").literal()
        if source not in MODULE_INPUTS:
            continue
        major, known = MODULE_INPUTS[source]
        version = mod.body.attr("version").literal() if mod.body.attr("version") else ""
        if not str(version).startswith(major):
            problems.append(f"module {mod.labels[0]}: input names are checked for {major}x, version is {version}")
        for a in mod.body.attrs():
            if a.key not in known | META_ARGUMENTS:
                where = a.doc.where(a.start)
                problems.append(f"{where}: module {mod.labels[0]} ({source} {major}x) has no input {a.key}")
        groups = mod.body.get("eks_managed_node_groups")
        for group in groups.object().attrs() if groups is not None and groups.object() else []:
            for a in group.object().attrs():
                if a.key not in NODE_GROUP_INPUTS:
                    problems.append(f"{a.doc.where(a.start)}: node group {group.key} has no input {a.key}")
    return problems


def gpu_node_groups(cfg: Config) -> list[Attr]:
    """The entries of the EKS module's eks_managed_node_groups that use an NVIDIA/GPU AMI."""
    found = []
    for mod in cfg.blocks("module"):
        if mod.body.attr("source").literal() != "terraform-aws-modules/eks/aws":
            continue
        groups = mod.body.get("eks_managed_node_groups")
        for group in groups.object().attrs() if groups is not None and groups.object() else []:
            ami = group.object().attr("ami_type")
            if ami is not None and re.search(r"NVIDIA|GPU", str(ami.literal())):
                found.append(group)
    return found


def check_gpu_node_group(cfg: Config, build: BuildPodSettings | None = None) -> list[str]:
    """A GPU node group exists, is tainted nvidia.com/gpu NoSchedule, and build pods fit it."""
    build = build or BuildPodSettings()
    groups = gpu_node_groups(cfg)
    if not groups:
        return ["no EKS managed node group with an NVIDIA/GPU ami_type"]
    problems = []
    for group in groups:
        body, name = group.object(), f"node group {group.key}"
        taints = []
        for t in body.attr("taints").object().attrs() if body.attr("taints") and body.attr("taints").object() else []:
            fields = {a.key: a.literal() for a in t.object().attrs()}
            taints.append((fields.get("key"), fields.get("value"), EKS_TAINT_EFFECTS.get(fields.get("effect"))))
        if not any(key == "nvidia.com/gpu" and effect == "NoSchedule" for key, _, effect in taints):
            problems.append(f"{name} lacks the taint nvidia.com/gpu with effect NO_SCHEDULE (has {taints})")
        # Every taint must be tolerated by aistack's build pods, or no build lands there.
        for key, value, effect in taints:
            if not any(
                tol.get("key") == key and tol.get("effect") in (None, effect) and (tol.get("operator") == "Exists" or tol.get("value") == value)
                for tol in build.gpu_tolerations
            ):
                problems.append(f"{name}: build pods do not tolerate the taint {key}={value}:{effect}")
        labels_attr = body.attr("labels")
        label_items = labels_attr.object().attrs() if labels_attr and labels_attr.object() else []
        labels = {a.key: a.literal() for a in label_items}
        for key, value in build.gpu_node_selector.items():
            if labels.get(key) != value:
                problems.append(f"{name}: build pods select {key}={value}, the group labels it {labels.get(key)!r}")
    return problems


def check_outputs_bucket(cfg: Config) -> list[str]:
    """Every S3 bucket has versioning, encryption, a full public access block and no ACLs."""
    buckets = [b.labels[1] for b in cfg.blocks("resource", "aws_s3_bucket")]
    if not buckets:
        return ["no aws_s3_bucket resource"]

    def settings(type_: str, bucket: str) -> list[Body]:
        ref = re.compile(rf"aws_s3_bucket\.{re.escape(bucket)}\.(id|bucket)")
        return [b.body for b in cfg.blocks("resource", type_) if b.body.attr("bucket") and ref.fullmatch(b.body.attr("bucket").code)]

    problems = []
    for bucket in buckets:
        versioning = [s.get("versioning_configuration", "status") for s in settings("aws_s3_bucket_versioning", bucket)]
        if not any(v is not None and v.literal() == "Enabled" for v in versioning):
            problems.append(f"bucket {bucket}: versioning is not Enabled")
        algorithms = [
            s.get("rule", "apply_server_side_encryption_by_default", "sse_algorithm") for s in settings("aws_s3_bucket_server_side_encryption_configuration", bucket)
        ]
        if not any(a is not None and a.literal() in ("aws:kms", "aws:kms:dsse", "AES256") for a in algorithms):
            problems.append(f"bucket {bucket}: no server-side encryption (aws:kms or AES256)")
        flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        blocks = settings("aws_s3_bucket_public_access_block", bucket)
        if not any(all(s.attr(f) is not None and s.attr(f).literal() is True for f in flags) for s in blocks):
            problems.append(f"bucket {bucket}: the public access block does not set all of {', '.join(flags)} to true")
        ownership = [s.get("rule", "object_ownership") for s in settings("aws_s3_bucket_ownership_controls", bucket)]
        if not any(o is not None and o.literal() == "BucketOwnerEnforced" for o in ownership):
            problems.append(f"bucket {bucket}: object ownership is not BucketOwnerEnforced")
    return problems


def check_tfvars_example(cfg: Config, example: Path) -> list[str]:
    doc = Doc.load(example)
    keys = {a.key for a in Body(doc, 0, len(doc.text)).attrs()}
    variables = {v.labels[0]: v for v in cfg.blocks("variable")}
    problems = [f"{example.name} sets {k}, which is not a variable" for k in sorted(keys - set(variables))]
    required = {name for name, v in variables.items() if v.body.attr("default") is None}
    problems += [f"{example.name} leaves out the required variable {k}" for k in sorted(required - keys)]
    return problems


CHECKS = {
    "variables": check_variables,
    "references": check_variable_references,
    "module_versions": check_module_versions,
    "module_inputs": check_module_inputs,
    "gpu_node_group": check_gpu_node_group,
    "outputs_bucket": check_outputs_bucket,
}


# --- The configuration as committed -------------------------------------------------------------


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config(TF_DIR)


@pytest.mark.parametrize("check", list(CHECKS))
def test_configuration_passes_static_check(cfg: Config, check: str):
    assert CHECKS[check](cfg) == []


def test_reader_sees_the_whole_configuration(cfg: Config):
    # Guards the checks against passing vacuously because the reader found nothing.
    assert len(cfg.blocks("variable")) >= 20
    assert {m.labels[0] for m in cfg.blocks("module")} == {"vpc", "eks"}
    assert [g.key for g in gpu_node_groups(cfg)] == ["gpu"]
    assert [b.labels[1] for b in cfg.blocks("resource", "aws_s3_bucket")] == ["outputs"]


def test_tfvars_example_sets_declared_variables_and_the_required_ones(cfg: Config):
    assert check_tfvars_example(cfg, TF_DIR / "terraform.tfvars.example") == []


# --- Each check fails on a broken copy ----------------------------------------------------------

BREAKAGES = [
    # (check, file, text in the committed file, its replacement, the problem expected)
    (
        "variables",
        "variables.tf",
        '  description = "Number of availability zones to spread subnets and nodes over (EKS needs at least 2)."\n',
        "",
        "variable az_count has no description",
    ),
    (
        "variables",
        "variables.tf",
        "  type        = bool\n  default     = true\n}\n\n# --- Access",
        "  default     = true\n}\n\n# --- Access",
        "variable single_nat_gateway has no type",
    ),
    ("references", "cluster.tf", "var.gpu_disk_size_gib", "var.gpu_disk_gib", "var.gpu_disk_gib is not declared"),
    ("references", "cluster.tf", "var.gpu_disk_size_gib", "200", "variable gpu_disk_size_gib is declared but never used"),
    ("module_versions", "network.tf", 'version = "6.6.0"', 'version = "~> 6.6"', "module vpc must pin an exact version"),
    (
        "module_inputs",
        "cluster.tf",
        "  name               = var.cluster_name",
        "  cluster_name       = var.cluster_name",
        "has no input cluster_name",
    ),
    ("module_inputs", "cluster.tf", 'version = "21.24.2"', 'version = "20.37.2"', "input names are checked for 21.x"),
    (
        "gpu_node_group",
        "cluster.tf",
        'effect = "NO_SCHEDULE"',
        'effect = "PREFER_NO_SCHEDULE"',
        "lacks the taint nvidia.com/gpu",
    ),
    (
        "gpu_node_group",
        "cluster.tf",
        '"nvidia.com/gpu.present" = "true"',
        '"nvidia.com/gpu.present" = "false"',
        "build pods select nvidia.com/gpu.present=true",
    ),
    (
        "gpu_node_group",
        "cluster.tf",
        '"AL2023_x86_64_NVIDIA"',
        '"AL2023_x86_64_STANDARD"',
        "no EKS managed node group with an NVIDIA/GPU ami_type",
    ),
    ("outputs_bucket", "storage.tf", 'status = "Enabled"\n  }', 'status = "Suspended"\n  }', "versioning is not Enabled"),
    (
        "outputs_bucket",
        "storage.tf",
        "restrict_public_buckets = true",
        "restrict_public_buckets = false",
        "public access block does not set all",
    ),
    (
        "outputs_bucket",
        "storage.tf",
        '"outputs" {\n  bucket = aws_s3_bucket.outputs.id\n\n  rule {\n    apply_server_side',
        '"outputs" {\n  bucket = "some-other-bucket"\n\n  rule {\n    apply_server_side',
        "no server-side encryption",
    ),
    (
        "outputs_bucket",
        "storage.tf",
        'object_ownership = "BucketOwnerEnforced"',
        'object_ownership = "ObjectWriter"',
        "object ownership is not BucketOwnerEnforced",
    ),
]


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Config:
    shutil.copytree(TF_DIR, tmp_path / "iac")
    path = tmp_path / "iac" / file
    text = path.read_text()
    assert text.count(old) == 1, f"the breakage must match exactly once in {file}: {old!r}"
    path.write_text(text.replace(old, new))
    return Config(tmp_path / "iac")


@pytest.mark.parametrize(("check", "file", "old", "new", "expected"), BREAKAGES)
def test_check_reports_a_broken_copy(tmp_path: Path, check: str, file: str, old: str, new: str, expected: str):
    problems = CHECKS[check](broken_copy(tmp_path, file, old, new))
    assert any(expected in p for p in problems), problems


def test_tfvars_check_reports_unknown_and_missing_variables(cfg: Config, tmp_path: Path):
    example = tmp_path / "bad.tfvars"
    example.write_text('region = "us-east-1"\ngpu_count = 2\n')
    assert check_tfvars_example(cfg, example) == [
        "bad.tfvars sets gpu_count, which is not a variable",
        "bad.tfvars leaves out the required variable admin_role_arn",
    ]


def test_gpu_check_follows_the_build_pod_settings(cfg: Config):
    # If aistack's build pods changed their toleration, the node group would no longer fit them.
    other = BuildPodSettings(gpu_tolerations=[{"key": "example.com/accelerator", "operator": "Exists", "effect": "NoSchedule"}])
    assert check_gpu_node_group(cfg, other) == ["node group gpu: build pods do not tolerate the taint nvidia.com/gpu=present:NoSchedule"]


def test_reader_ignores_comments_and_string_contents_but_sees_interpolations():
    text = (
        "# var.in_comment { \n"
        'variable "a" {\n'
        '  description = "braces { and var.in_string and \\" quotes"\n'
        "  type        = string // var.in_line_comment\n"
        "}\n"
        "/* var.in_block_comment\n } */\n"
        "locals {\n"
        '  x = "${format("%s}", var.a)}-${var.b}"\n'
        "  y = <<-EOT\n"
        "    literal var.in_heredoc { and ${var.c}\n"
        "    EOT\n"
        '  "quoted.key/x" = { inner = [1, 2], other = "z" }\n'
        "}\n"
    )
    masked = mask(text)
    assert len(masked) == len(text)
    assert sorted(_VAR_REF.findall(masked)) == ["a", "b", "c"]
    doc = Doc(Path("t.tf"), text, masked)
    body = Body(doc, 0, len(text))
    assert [(b.type, b.labels) for b in body.items] == [("variable", ["a"]), ("locals", [])]
    assert body.blocks("variable")[0].body.attr("description").literal() == 'braces { and var.in_string and " quotes'
    local = body.blocks("locals")[0].body
    assert [a.key for a in local.attrs()] == ["x", "y", "quoted.key/x"]
    assert local.attr("x").literal() is None  # an expression, not a literal
    assert local.get("quoted.key/x", "other").literal() == "z"


def test_reader_refuses_malformed_input():
    with pytest.raises(HclError):
        mask('x = "unterminated\n')
    with pytest.raises(HclError):
        Body(Doc(Path("t.tf"), "a {\n", mask("a {\n")), 0, 4)


# --- terraform itself: fmt, and the variable validations -----------------------------------------


def terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    return subprocess.run([TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@needs_terraform
def test_terraform_fmt_is_clean():
    result = terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(TF_DIR), cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_terraform_fmt_check_catches_bad_formatting(tmp_path: Path):
    (tmp_path / "bad.tf").write_text('variable "x" {\ntype=string\n}\n')
    assert terraform("fmt", "-check", "-recursive", str(tmp_path), cwd=tmp_path).returncode != 0


@needs_terraform
def test_tfvars_example_is_formatted(tmp_path: Path):
    shutil.copy(TF_DIR / "terraform.tfvars.example", tmp_path / "example.tfvars")
    result = terraform("fmt", "-check", "-diff", "-no-color", str(tmp_path / "example.tfvars"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def variables_only(tmp_path_factory) -> Path:
    """variables.tf alone: no provider or module to download, so init and plan work offline and
    `terraform plan` evaluates every validation block against the values given."""
    if not Path(TERRAFORM).exists():
        pytest.skip("the terraform binary is not installed (CI's image has /usr/local/bin/terraform)")
    folder = tmp_path_factory.mktemp("variables-only")
    shutil.copy(TF_DIR / "variables.tf", folder)
    result = terraform("init", "-backend=false", "-no-color", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


def plan(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return terraform("plan", "-no-color", "-lock=false", "-refresh=false", *args, cwd=folder)


def test_variable_validations_accept_the_tfvars_example(variables_only: Path):
    result = plan(variables_only, f"-var-file={TF_DIR / 'terraform.tfvars.example'}")
    assert result.returncode == 0, result.stdout + result.stderr


REQUIRED = ("-var", "region=us-east-1", "-var", "admin_role_arn=arn:aws:iam::123456789012:role/platform-admin")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("region=US-East-1", "region must be an AWS region code"),
        ("cluster_name=AIStack_prod", "cluster_name must be 1-28"),
        ("cluster_name=a-cluster-name-that-is-far-too-long", "cluster_name must be 1-28"),
        ("kubernetes_version=1.35.2", "kubernetes_version must look like 1.35"),
        ("admin_role_arn=arn:aws:iam::123456789012:user/alice", "admin_role_arn must be an IAM role ARN"),
        ("gpu_instance_types=[]", "gpu_instance_types must list at least one"),
        ("gpu_node_count={min=2, desired=1, max=3}", "gpu_node_count needs 0 <= min <= desired <= max"),
        ("cpu_node_count={min=1, desired=5, max=3}", "cpu_node_count needs 1 <= min <= desired <= max"),
        ("gpu_capacity_type=RESERVED", "gpu_capacity_type must be ON_DEMAND or SPOT"),
        ("endpoint_public_access_cidrs=[]", "must not be empty while endpoint_public_access is true"),
        ("vpc_cidr=10.0.0.0/20", "vpc_cidr must be an IPv4 CIDR with a prefix length from /16 to /18"),
        ("az_count=1", "az_count must be a whole number from 2 to 4"),
        ("model_registry_namespace=aistack/models", "model_registry_namespace must be a single segment"),
        ('airflow_service_accounts=["aistack-airflow"]', "airflow_service_accounts must list namespace/name"),
    ],
)
def test_variable_validations_refuse_bad_values(variables_only: Path, value: str, message: str):
    result = plan(variables_only, *REQUIRED, "-var", value)
    # Terraform wraps long messages inside a box drawn with "│".
    output = " ".join((result.stdout + result.stderr).replace("│", " ").split())
    assert result.returncode != 0 and message in output, output
