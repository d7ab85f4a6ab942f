"""`pipectl serve`: the HTTP API and the web view on uvicorn (the `web` extra)."""

from typing import Annotated

import typer

from pipectl.cli import common


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; another than 127.0.0.1 needs tokens.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Server processes (uvicorn workers).")
    ] = 1,
) -> None:
    """Serve the HTTP API (/api, OpenAPI at /docs) and the web health view.

    Example: PIPECTL_API_TOKENS='[{"name": "ops", "scope": "operate", "token": "…"}]' pipectl serve --host 0.0.0.0
    """
    import os
    import secrets
    import socket

    from pipectl.client import Client
    from pipectl.errors import InvalidInput

    current = common.settings()
    if current.api_tokens is None and not is_loopback(host):
        raise InvalidInput(
            f"refusing to serve on {host} without PIPECTL_API_TOKENS: anyone who can reach it "
            "could act on your jobs (set tokens, or keep the default --host 127.0.0.1)"
        )
    try:
        import uvicorn

        from pipectl.web.app import SESSION_KEY_ENV, create_app
    except ImportError as exc:
        raise InvalidInput(
            f"pipectl serve needs the web extra: pip install 'pipectl[web]' ({exc.name} is missing)"
        ) from None
    Client.from_url(current.database_url, current).close()  # unreachable store: exit 3 now
    try:  # a taken port: one line now, not uvicorn's log after start-up
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise InvalidInput(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    typer.echo(f"pipectl serve: http://{host}:{port}/ (API under /api, OpenAPI at /docs)", err=True)
    if workers == 1:
        uvicorn.run(create_app(current), host=host, port=port, log_level="info")
        return
    # Worker processes build the app from the environment: the same store, and without tokens
    # the same session key, so a session made by one process is good in every other.
    os.environ["PIPECTL_DATABASE_URL"] = current.database_url
    os.environ.setdefault(SESSION_KEY_ENV, secrets.token_hex(32))
    uvicorn.run(
        "pipectl.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
