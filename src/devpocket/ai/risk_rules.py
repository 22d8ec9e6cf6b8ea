"""The rule table: each program the classifier knows, and the rule that judges its arguments.

The rules themselves live by subject, in `risk_system.py` (files, disks, the machine) and
`risk_tools.py` (git, containers, clusters, packages, databases); the table is separate so that
one look shows every program that has a rule.
"""

from __future__ import annotations

from devpocket.ai.risk_builders import (
    Rule,
    _always,
    _combine,
    _dispatch,
    _each,
    _if_any,
    _unless_any,
)
from devpocket.ai.risk_findings import _caution, _danger
from devpocket.ai.risk_system import (
    _PARTITION_EDITOR,
    _PARTITIONS,
    _POWER,
    _SGDISK_WRITES,
    _chmod,
    _copy,
    _crontab,
    _dd,
    _find,
    _iptables,
    _kill,
    _move,
    _ownership,
    _parted,
    _rm,
    _systemctl_stop,
    _tee,
    _truncate,
)
from devpocket.ai.risk_tools import (
    _COMPOSE,
    _COMPOSE_VALUES,
    _DOCKER,
    _GIT,
    _HELM,
    _INSTALLS,
    _KUBECTL,
    _KUBECTL_VALUES,
    _PACKAGE_VERBS,
    _SQL_CLIENTS,
    _TERRAFORM,
    _sql_client,
)

_RULES: dict[str, Rule] = {
    "rm": _rm,
    "rmdir": _always(_caution("removes directories")),
    "shred": _always(_danger("destroys file contents beyond recovery")),
    "wipefs": _if_any("-a --all -o --offset", _danger("erases filesystem signatures")),
    **_each("mkfs mkswap", _always(_danger("formats a filesystem (erases the device)"))),
    "dd": _dd,
    **_each("fdisk gdisk cfdisk", _unless_any("-l --list", _PARTITION_EDITOR)),
    "sfdisk": _unless_any("-l --list -d --dump", _PARTITIONS),
    "sgdisk": _if_any(_SGDISK_WRITES, _PARTITIONS),
    "parted": _parted,
    "chmod": _chmod,
    **_each("chown chgrp", _ownership("ownership")),
    "tee": _tee,
    "truncate": _truncate,
    "cp": _copy,
    "mv": _move,
    "find": _find,
    **_each("shutdown reboot poweroff halt", _POWER),
    "systemctl": _dispatch(
        {
            **_each("stop disable mask kill", _systemctl_stop),
            **_each("poweroff reboot halt kexec suspend hibernate rescue emergency", _POWER),
            "restart": _always(_caution("restarts a service")),
        }
    ),
    "kill": _kill,
    **_each("killall pkill", _always(_caution("kills processes by name"))),
    **_each("iptables ip6tables", _iptables),
    "nft": _dispatch({"flush": _always(_danger("flushes firewall rules"))}),
    "ufw": _dispatch(
        _each("disable reset deny delete", _always(_caution("changes firewall rules")))
    ),
    **_each("userdel deluser", _always(_danger("deletes a user account"))),
    "passwd": _always(_caution("changes a password")),
    "su": _always(_caution("switches user (su)")),
    "crontab": _crontab,
    "git": _dispatch(_GIT, "-C -c --git-dir --work-tree --namespace"),
    "kubectl": _dispatch(_KUBECTL, _KUBECTL_VALUES),
    "helm": _dispatch(_HELM, "-n --namespace --kube-context --kubeconfig"),
    **_each("terraform tofu", _dispatch(_TERRAFORM)),
    **_each("docker podman", _dispatch(_DOCKER, "-H --host -c --context --config -l --log-level")),
    "docker-compose": _dispatch(_COMPOSE, _COMPOSE_VALUES),
    **_each(
        "apt apt-get aptitude apk brew snap pip pip3 pipx npm pnpm yarn gem cargo conda",
        _dispatch(_PACKAGE_VERBS),
    ),
    # yum, dnf and zypper upgrade packages on `update`; apt only refreshes its lists.
    **_each("yum dnf zypper", _dispatch({**_PACKAGE_VERBS, "update": _INSTALLS})),
    **{name: _sql_client(name) for name in _SQL_CLIENTS},
    "dropdb": _always(_danger("drops a database")),
    "mysqladmin": _if_any("drop", _danger("drops a database")),
    "redis-cli": lambda args: (
        [_danger("wipes a Redis database")]
        if {"FLUSHALL", "FLUSHDB"} & {a.upper() for a in args}
        else []
    ),
    "pg_restore": _combine(
        _always(_caution("restores a database dump")),
        _if_any("-c --clean", _danger("drops database objects before restoring")),
    ),
    "mongorestore": _combine(
        _always(_caution("restores a database dump")),
        _if_any("--drop", _danger("drops collections before restoring")),
    ),
}
