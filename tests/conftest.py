# Fixtures live in tests/fixtures/, one module per kind of real part the
# tests start (the hub process, a private Docker engine, a router, a browser,
# a Prometheus server).
# Add a module here when you add one there.
pytest_plugins = [
    "tests.fixtures.hubprocess",
    "tests.fixtures.docker",
    "tests.fixtures.swarm",
    "tests.fixtures.crossbar",
    "tests.fixtures.browser",
    "tests.fixtures.prometheus",
    "tests.fixtures.redis",
]
