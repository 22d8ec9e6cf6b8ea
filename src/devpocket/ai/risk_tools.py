"""Risk rules for developer tools: git, containers, clusters, infrastructure, packages, databases.

Their judgement is mostly per subcommand (git push, docker volume rm, terraform apply), so most
rules here are tables for `_dispatch`. Files, disks and the machine itself are in
`risk_system.py`; the table mapping programs to these rules is `risk_rules.py`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from devpocket.ai.risk_builders import (
    Rule,
    _always,
    _combine,
    _dispatch,
    _each,
    _if_any,
    _unless_any,
)
from devpocket.ai.risk_findings import Finding, Risk, _caution, _danger
from devpocket.ai.shell import _flags, _operands, _option_values, _options

# Git -------------------------------------------------------------------------------------------

_PROTECTED_BRANCHES = frozenset({"main", "master"})


def _git_push(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    refspecs = _operands(args, _options("-o --push-option --repo --receive-pack"))[1:]
    if "--mirror" in flags:
        return [_danger("mirrors over every remote branch")]
    destinations = {r.lstrip("+").split(":")[-1].removeprefix("refs/heads/") for r in refspecs}
    on_main = bool(destinations & _PROTECTED_BRANCHES)
    level = Risk.DANGEROUS if on_main else Risk.CAUTION
    forces = {"-f", "--force", "--force-with-lease", "--force-if-includes"}
    if flags & forces or any(r.startswith("+") for r in refspecs):
        where = "to main/master" if on_main else "(rewrites remote history)"
        return [(level, f"force-pushes {where}")]
    if flags & {"-d", "--delete"} or any(r.startswith(":") for r in refspecs):
        return [(level, "deletes a remote branch")]
    return []


def _git_clean(args: Sequence[str]) -> list[Finding]:
    flags = _flags(args)
    if flags & {"-n", "--dry-run"} or not flags & {"-f", "--force"}:
        return []
    ignored = bool(flags & {"-x", "-X"})
    return [
        _caution("deletes untracked and ignored files" if ignored else "deletes untracked files")
    ]


_DISCARDS = _caution("discards uncommitted changes")
_GIT: dict[str, Rule] = {
    "push": _git_push,
    "reset": _if_any("--hard", _caution("discards uncommitted changes (reset --hard)")),
    "clean": _git_clean,
    "checkout": _if_any("-- . -f --force", _DISCARDS),
    "restore": _unless_any("--staged -S", _DISCARDS),
    "switch": _if_any("-f --force --discard-changes", _DISCARDS),
    "stash": _if_any("drop clear", _caution("deletes stashed changes")),
    "branch": _if_any("-D", _caution("force-deletes a branch")),
    "rebase": _unless_any(
        "--abort --continue --skip --quit", _caution("rewrites git history (rebase)")
    ),
    "commit": _if_any("--amend", _caution("rewrites the last commit")),
    "rm": _unless_any("--cached", _caution("deletes tracked files")),
    **_each("filter-branch filter-repo", _always(_danger("rewrites git history"))),
}


# Containers, clusters, infrastructure ----------------------------------------------------------

_CLUSTER_STATE = _always(_caution("changes cluster state"))
_KUBECTL_VALUES = (
    "-n --namespace --context --kubeconfig --cluster --user -s --server --as -l --selector "
    "-o --output -f --filename -c --container --field-selector --grace-period --timeout"
)
_NAMESPACE_KINDS = frozenset({"ns", "namespace", "namespaces"})
_CLUSTER_KINDS = frozenset(
    {"node", "nodes", "no", "pv", "persistentvolume", "persistentvolumes", "crd", "crds"}
)


def _kubectl_delete(args: Sequence[str]) -> list[Finding]:
    operands = _operands(args, _options(_KUBECTL_VALUES))
    kinds = set(operands[0].split("/")[0].split(",")) if operands else set()
    if kinds & _NAMESPACE_KINDS:
        return [_danger("deletes a Kubernetes namespace")]
    if "all" in kinds or _flags(args) & {"--all", "-A", "--all-namespaces"}:
        return [_danger("deletes every resource of a kind (--all)")]
    if kinds & _CLUSTER_KINDS:
        return [_danger("deletes cluster-wide Kubernetes resources")]
    return [_caution("deletes Kubernetes resources")]


_KUBECTL = {
    "delete": _kubectl_delete,
    **_each(
        "apply create replace patch edit scale autoscale rollout set label annotate", _CLUSTER_STATE
    ),
    **_each("taint cordon drain expose run", _CLUSTER_STATE),
}
_HELM = {
    **_each(
        "uninstall delete del un",
        _always(_danger("uninstalls a Helm release (deletes its resources)")),
    ),
    **_each("install upgrade rollback", _CLUSTER_STATE),
}


def _terraform_apply(args: Sequence[str]) -> list[Finding]:
    if "-destroy" in args:
        return [_danger("destroys infrastructure")]
    if {"-auto-approve", "--auto-approve"} & set(args):
        return [_danger("applies infrastructure changes without review (-auto-approve)")]
    return [_caution("applies infrastructure changes")]


_STATE_EDIT = _always(_caution("edits infrastructure state"))
_TERRAFORM = {
    "destroy": _always(_danger("destroys infrastructure")),
    "apply": _terraform_apply,
    **_each("import taint untaint force-unlock", _STATE_EDIT),
    "state": _dispatch(_each("rm mv push replace-provider", _STATE_EDIT)),
}

_VOLUMES_GONE = _danger("deletes Docker volumes (their data)")
_STOPS_CONTAINERS = _always(_caution("stops containers"))


def _docker_rm(args: Sequence[str]) -> list[Finding]:
    forced = bool(_flags(args) & {"-f", "--force"})
    return [
        _caution("force-removes containers, running or not" if forced else "removes containers")
    ]


_CONTAINER = {
    "rm": _docker_rm,
    **_each("kill stop", _STOPS_CONTAINERS),
    "prune": _always(_caution("deletes stopped containers")),
}
_IMAGE = {
    "rm": _always(_caution("removes images")),
    "prune": _always(_caution("deletes unused images")),
}
_COMPOSE = {
    "down": _combine(
        _always(_caution("stops and removes containers")), _if_any("-v --volumes", _VOLUMES_GONE)
    ),
    "rm": _always(_caution("removes containers")),
}
_COMPOSE_VALUES = "-f --file -p --project-name --env-file --profile"
_DOCKER = {
    **_CONTAINER,
    "rmi": _IMAGE["rm"],
    "container": _dispatch(_CONTAINER),
    "image": _dispatch(_IMAGE),
    "volume": _dispatch(_each("rm prune", _always(_VOLUMES_GONE))),
    "network": _dispatch(_each("rm prune", _always(_caution("removes networks")))),
    "system": _dispatch(
        {
            "prune": _combine(
                _always(_caution("deletes unused Docker data (prune)")),
                _if_any("-a --all", _danger("deletes every unused Docker image")),
                _if_any("--volumes", _VOLUMES_GONE),
            )
        }
    ),
    "compose": _dispatch(_COMPOSE, _COMPOSE_VALUES),
}


# Packages and databases ------------------------------------------------------------------------

_REMOVES = _always(_caution("removes packages"))
_INSTALLS = _always(_caution("installs or upgrades packages (changes the system)"))
_PACKAGE_VERBS = {
    **_each("remove purge autoremove erase uninstall rm un del", _REMOVES),
    **_each("install i add ci upgrade dist-upgrade full-upgrade reinstall", _INSTALLS),
}
_SQL_OPTIONS = {
    "psql": ("-c", "--command"),
    "mysql": ("-e", "--execute"),
    "mariadb": ("-e", "--execute"),
}
_SQL_CLIENTS = frozenset({*_SQL_OPTIONS, "sqlite3"})
_SQL_SCRIPT = _caution("runs a SQL script against a database (restore)")
_SQL_WORD = re.compile(r"[A-Za-z]+")


def _inline_sql(name: str, args: Sequence[str]) -> str:
    if name == "sqlite3":
        return " ".join(_operands(args)[1:])  # sqlite3 DATABASE [SQL …]
    return " ".join(_option_values(args, *_SQL_OPTIONS[name]))


def _sql_findings(sql: str) -> list[Finding]:
    """Judge statements by their keywords; DELETE or UPDATE without WHERE hits every row."""
    words = {word.upper() for word in _SQL_WORD.findall(sql)}
    if words & {"DROP", "TRUNCATE"}:
        return [_danger("drops or truncates database data")]
    changes = words & {"DELETE", "UPDATE"}
    if changes and "WHERE" not in words:
        return [_danger("changes every row of a table")]
    return [_caution("modifies database data")] if changes or words & {"ALTER", "INSERT"} else []


def _sql_client(name: str) -> Rule:
    def rule(args: Sequence[str]) -> list[Finding]:
        findings = _sql_findings(_inline_sql(name, args))
        if name == "psql" and _option_values(args, "-f", "--file"):
            findings.append(_SQL_SCRIPT)
        return findings

    return rule
