"""Serve the test API server by hand: ``python -m tests.kubeapi --port 0 --kubeconfig PATH``."""

from __future__ import annotations

import argparse
import signal
import threading

from .server import KubeAPIServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.kubeapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the server here")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM stop it even when started from a shell that ignores SIGINT (a background job).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.default_int_handler)
    with KubeAPIServer(host=args.host, port=args.port) as server:
        try:
            print(f"serving Kubernetes API at {server.url}", flush=True)
            if args.kubeconfig:
                print(f"kubeconfig written to {server.write_kubeconfig(args.kubeconfig)}", flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
