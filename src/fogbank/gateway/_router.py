"""Route matching as API Gateway does it: literal segments first, then `{param}`, then `{greedy+}`.

A router is a tree of path segments built once per API deployment; matching walks it with
backtracking, so `/a/{x}/c` still matches `/a/b/c` when `/a/b` exists without a `c` child.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from fogbank.model import ANY, DEFAULT_ROUTE, Route


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    param_name: str = ""
    greedy_name: str = ""
    greedy: dict[str, Route] = field(default_factory=dict)
    """Methods of a `{name+}` child: it swallows one or more remaining segments."""
    methods: dict[str, Route] = field(default_factory=dict)


class RouteConflict(ValueError):
    """Two routes of one API have the same method and the same path shape."""


def split_path(path: str) -> list[str]:
    """`/a/b/` -> `["a", "b"]`: empty segments (trailing or doubled slashes) are not routes."""
    return [seg for seg in path.split("/") if seg]


class Router:
    """Matches a method and a path against one API's routes."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self._root = _Node()
        self.default: Route | None = None
        """The HTTP API `$default` route, matched when nothing else is."""
        self.paths: set[str] = set()
        for route in routes:
            self._add(route)

    def _add(self, route: Route) -> None:
        if route.path == DEFAULT_ROUTE:
            self.default = route
            return
        self.paths.add(route.path)
        node = self._root
        segments = split_path(route.path)
        for i, seg in enumerate(segments):
            if seg.startswith("{") and seg.endswith("+}"):
                if i != len(segments) - 1:
                    raise RouteConflict(f"{route.path}: a greedy segment must come last")
                node.greedy_name = seg[1:-2]
                self._put(node.greedy, route)
                return
            if seg.startswith("{") and seg.endswith("}"):
                name = seg[1:-1]
                if node.param is None:
                    node.param, node.param_name = _Node(), name
                elif node.param_name != name:
                    # API Gateway refuses sibling variables with different names.
                    raise RouteConflict(
                        f"{route.path}: {{{name}}} clashes with {{{node.param_name}}}"
                    )
                node = node.param
            else:
                node = node.literal.setdefault(unquote(seg), _Node())
        self._put(node.methods, route)

    @staticmethod
    def _put(methods: dict[str, Route], route: Route) -> None:
        method = route.method.upper()
        if method in methods:
            raise RouteConflict(f"{method} {route.path} is defined twice")
        methods[method] = route

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route for a request and its path parameters (decoded), or None."""
        segments = [unquote(seg) for seg in split_path(raw_path)]
        params: dict[str, str] = {}
        route = self._walk(self._root, segments, 0, method.upper(), params)
        if route is not None:
            return route, params
        if self.default is not None:
            return self.default, {}
        return None

    def _walk(
        self, node: _Node, segments: list[str], i: int, method: str, params: dict[str, str]
    ) -> Route | None:
        if i == len(segments):
            return node.methods.get(method) or node.methods.get(ANY)
        seg = segments[i]
        child = node.literal.get(seg)
        if child is not None:
            found = self._walk(child, segments, i + 1, method, params)
            if found is not None:
                return found
        if node.param is not None:
            found = self._walk(node.param, segments, i + 1, method, params)
            if found is not None:
                params[node.param_name] = seg
                return found
        if node.greedy:
            found = node.greedy.get(method) or node.greedy.get(ANY)
            if found is not None:
                params[node.greedy_name] = "/".join(segments[i:])
                return found
        return None
