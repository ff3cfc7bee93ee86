"""The REST API's routes, one router per resource.

Each module makes ``router`` (a FastAPI ``APIRouter``); ``rigd.service._api``
includes them in order, one line each. A new resource is a new module here
and one ``include_router`` line there; a route takes the daemon as a
``DaemonDep`` parameter, and a router guarded by the bearer token is made
with ``APIRouter(dependencies=GUARDED)``.
"""
