"""A local host: the process of `plumbline up`, running an app behind HAProxy and answering
its private control socket until it is stopped.

Today a host runs one app (its name is the host's); the control API, the state file and
the HAProxy configuration already address apps by name so that one host can later run
several side by side.
"""
from __future__ import annotations

import os
from collections.abc import Callable

from plumbline.platform.local.cluster import MAX_REPLICAS, LocalCluster, Settings
from plumbline.platform.local.control import ControlError, HostRecord
from plumbline.platform.local.control_server import ControlServer
from plumbline.platform.spec.appspec import AppSpec
from plumbline.platform.spec.codec import spec_from_json


class LocalHost:
    def __init__(self, spec: AppSpec, settings: Settings, *, say: Callable[[str], None]):
        if spec.replicas > MAX_REPLICAS:
            raise ControlError(f"replicas {spec.replicas}: the local backend runs at most "
                               f"{MAX_REPLICAS}")
        for other in HostRecord.running():
            if spec.name in other.apps:
                raise ControlError(f"a local cluster named {spec.name!r} is already running at "
                                   f"{other.url} (pid {other.pid}); stop it with "
                                   "`plumbline down` or give --name")
        self.cluster = LocalCluster(spec, settings, say=say)
        self.control = ControlServer(self.cluster, HostRecord.socket_for(spec.name),
                                     load_spec=spec_from_json, max_replicas=MAX_REPLICAS)
        self.record = HostRecord(spec.name, self.cluster.url, str(self.control.path),
                                 os.getpid(), (spec.name,))

    def run(self) -> int:
        """Serve until stopped (request_stop, or `plumbline down`); the cluster's exit code."""
        self.control.start()
        self.record.write()
        try:
            return self.cluster.run()
        finally:
            self.record.remove()
            self.control.stop()

    def request_stop(self, reason: str) -> None:
        self.cluster.request_stop(reason)
