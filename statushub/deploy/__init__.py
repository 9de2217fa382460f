"""
Deployments: topology validation, the deployment manager, the health poller,
the bridge from poll results to node statuses, the engine's event stream,
and the HTTP API.
"""
