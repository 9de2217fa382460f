"""
Deployments on a container engine: the deployment manager and each
deployment's state machine, the health poller, the bridge from poll results
to node statuses, the engine's event stream, adoption, and the
L{statushub.interfaces.IDeploymentControl} the API acts through.
"""
