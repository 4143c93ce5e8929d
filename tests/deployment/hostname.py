"""`[core] hostname_callable` of the test deployment: the machine's name and the component's
(AISTACK_DEPLOYMENT_COMPONENT), as each pod of a cluster has a name of its own, so that a task
instance's hostname tells which of the workers on this one machine ran it."""

from __future__ import annotations

import os
import socket


def component() -> str:
    name = os.environ.get("AISTACK_DEPLOYMENT_COMPONENT")
    return f"{name}.{socket.gethostname()}" if name else socket.getfqdn()
