"""The table of every route and its URLs that `fogbank up` prints."""

from __future__ import annotations

from rich.table import Table

from fogbank.model import DEFAULT_ROUTE, DEFAULT_STAGE, ApiKind, App, IntegrationType, Route


def _target(route: Route, app: App) -> str:
    integration = route.integration
    if integration.type is IntegrationType.AWS_PROXY:
        name = integration.function_name or "?"
        return f"λ {name}" + (f":{integration.qualifier}" if integration.qualifier else "")
    if integration.cloud_map_service is not None:
        return f"⇄ {_cloud_map_name(app, integration.cloud_map_service)} (Cloud Map)"
    if integration.type is IntegrationType.HTTP_PROXY:
        return f"→ {integration.uri}"
    return "mock"


def _cloud_map_name(app: App, service_id: str) -> str:
    """`service.namespace` of a template's discovery service, else its id."""
    for spec in app.discovery_services.values():
        namespace = app.namespaces.get(spec.namespace_logical_id)
        if spec.service_id == service_id and namespace is not None:
            return f"{spec.name}.{namespace.name}"
    return service_id


def routes_table(app: App, port: int, host: str = "127.0.0.1") -> Table:
    """One row per route, with every URL that reaches it on the node's host."""
    table = Table(title="Routes", show_lines=False)
    for column in ("API", "Method", "URLs", "Target"):
        table.add_column(column, overflow="fold")
    base = f"http://{host}:{port}"
    for api in app.apis.values():
        kind = "REST" if api.kind is ApiKind.REST else "HTTP"
        label = f"{api.name} ({kind})\n{api.api_id}.execute-api.localhost"
        for route in sorted(api.routes, key=lambda r: (r.path, r.method)):
            path = "/*" if route.path == DEFAULT_ROUTE else route.path
            urls = [
                base + path if stage == DEFAULT_STAGE else f"{base}/{stage}{path}"
                for stage in api.stages
            ]
            if api.kind is ApiKind.REST and api.stages:
                # As `sam local start-api` serves them: at the root, without the stage.
                urls.append(f"{base}{path}  (root)")
            table.add_row(label, route.method, "\n".join(urls), _target(route, app))
            label = ""
    for url in app.function_urls.values():
        address = f"http://{url.url_id}.lambda-url.{app.identity.region}.localhost:{port}/"
        mode = "streaming" if url.invoke_mode == "RESPONSE_STREAM" else "buffered"
        table.add_row("Function URL", "ANY", address, f"λ {url.function_name} ({mode})")
    return table
