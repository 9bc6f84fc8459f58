"""`python -m apps.chat`: validate the environment, then serve with uvicorn.

Exit status 2 with one line per bad variable when the configuration is invalid (before listening).
`python -m apps.chat --help-env` lists the variables and their defaults.
"""

from __future__ import annotations

import os
import sys

from apps.chat.config import ConfigError, describe_env, load_settings


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--help-env"], ["-h"], ["--help"]):
        print("python -m apps.chat: the demo chat app. Settings come from these environment variables:\n")
        print(describe_env())
        return 0
    if args:
        print(f"chat: unexpected arguments {args!r}; settings come from the environment (see --help-env)", file=sys.stderr)
        return 2
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        print(f"chat: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from apps.chat.app import create_app
    from apps.chat.logs import setup_logging

    setup_logging(settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False,
                server_header=False, proxy_headers=False, timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
