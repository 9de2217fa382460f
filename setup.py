from setuptools import find_packages, setup

setup(
    name="statushub",
    version="0.1.0",
    description="Deploy container topologies on Docker and stream their health live over WebSocket",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # twisted.plugins is listed explicitly: it has no __init__.py of ours,
    # and twistd finds the plugin through it.
    packages=find_packages(exclude=["tests", "tests.*"]) + ["twisted.plugins"],
    package_data={"statushub": ["static/*", "static/**/*", "static_wamp/*"]},
    include_package_data=True,
    install_requires=[
        # [tls]: pyOpenSSL and service_identity, for --listen ssl:...
        "twisted[tls]>=24.3",
        "autobahn>=24.4",
        "docker>=7.0",
        "zope.interface>=6.0",
        # /metrics: the official client, with its twisted.web resource
        "prometheus_client>=0.17",
        # [cluster] redis: several hubs as one (statushub/cluster), every
        # command off the reactor thread
        "redis>=5.0",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-twisted>=1.14",
            "treq>=24.9",
            "playwright>=1.49",
            # property tests: any bytes a log may carry; generated bodies,
            # headers and queries thrown at a real hub
            "hypothesis>=6.100",
            # lint-imports: the layers of .importlinter, run by make test
            "import-linter>=2.1",
        ],
    },
    entry_points={"console_scripts": ["statushub = statushub.cli:main"]},
)
