"""``kubectl port-forward`` to a Service for as long as a ``with`` block runs, on a free local port.

kubectl picks the local port (``:<remote>``) and prints ``Forwarding from 127.0.0.1:<port> -> <remote>``
(kubernetes/kubectl ``pkg/cmd/portforward`` via client-go ``tools/portforward/portforward.go``,
``fmt.Fprintf(pf.out, "Forwarding from %s -> %d\\n", ...)``); that line is read to learn the port.
The process is stopped when the block ends, whatever happens in it: nothing is left running.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from coldstart.ops.errors import OperatorError
from coldstart.ops.kubectl import Kubectl, first_line

_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) -> \d+")


@contextmanager
def forwarded(kubectl: Kubectl, namespace: str, service: str, remote_port: int, *, ready_timeout: float = 30.0) -> Iterator[str]:
    """Yields ``http://127.0.0.1:<local port>`` while ``kubectl port-forward svc/<service>`` runs."""
    argv = kubectl.command("port-forward", "-n", namespace, f"svc/{service}", f":{remote_port}", "--address", "127.0.0.1")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:  # kubectl keeps stdout open while it forwards: read it in a thread, stop at the port line
        assert proc.stdout is not None
        for line in proc.stdout:
            match = _FORWARDING.search(line)
            if match:
                found.append(match.group(1))
                break
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # bounded: a kubectl that neither forwards nor exits must not hang the operator
        ready.wait(ready_timeout)
        if not found:
            proc.kill()
            _, stderr = proc.communicate(timeout=10)
            reason = first_line(stderr) if stderr and stderr.strip() else f"no 'Forwarding from' line within {ready_timeout:g} s"
            raise OperatorError(f"kubectl port-forward -n {namespace} svc/{service} failed: {reason}; "
                                f"check `kubectl get svc -n {namespace} {service}` and that its pods are Running")
        yield f"http://127.0.0.1:{found[0]}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
