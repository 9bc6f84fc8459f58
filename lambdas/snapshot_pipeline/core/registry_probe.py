"""Can an image outside ECR be pulled anonymously? (Docker Registry HTTP API v2 token flow.)

``HEAD /v2/<repo>/manifests/<digest>``; on 401 with a Bearer challenge, ask the realm for an
anonymous token with ``repository:<repo>:pull`` scope and try again. 200 = pullable without a
credential. Runs in the resolve Lambda (which has internet egress, no VPC). The HTTP function is a
parameter so tests need no network.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable

# (method, url, headers) -> (status, headers, body)
Http = Callable[[str, str, dict[str, str]], tuple[int, dict[str, str], bytes]]

_ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
# Docker Hub's API host differs from the name used in references.
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}


def urllib_http(method: str, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    # imported here, not at the top: urllib.request costs more than the rest of the handler's import
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - https URLs built above
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, b""


def anonymous_pull_problem(registry: str, repository: str, digest: str, http: Http = urllib_http) -> str | None:
    """None if the manifest can be fetched without credentials, else a short reason."""
    host = _API_HOSTS.get(registry, registry)
    if host == "registry-1.docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    url = f"https://{host}/v2/{repository}/manifests/{digest}"
    try:
        status, headers, _ = http("HEAD", url, {"Accept": _ACCEPT})
        if status == 401:
            token = _anonymous_token(headers.get("www-authenticate", ""), repository, http)
            if token is None:
                return "the registry offers no anonymous token"
            status, _, _ = http("HEAD", url, {"Accept": _ACCEPT, "Authorization": f"Bearer {token}"})
    except OSError as exc:
        return f"registry {host} unreachable: {exc}"
    if status == 200:
        return None
    return f"registry {host} answered HTTP {status} for the manifest"


def _anonymous_token(challenge: str, repository: str, http: Http) -> str | None:
    if not challenge.lower().startswith("bearer "):
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    realm = params.pop("realm", None)
    if not realm:
        return None
    params.setdefault("scope", f"repository:{repository}:pull")
    status, _, body = http("GET", f"{realm}?{urllib.parse.urlencode(params)}", {})
    if status != 200:
        return None
    data = json.loads(body or b"{}")
    return data.get("token") or data.get("access_token")
