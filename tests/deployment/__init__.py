"""The deployment files (deployments/docker, deployments/kubernetes) checked with real tools:
docker-compose renders every profile, kustomize renders every overlay, kubernetes-validate
checks the objects, and the ARC_* variables they set are checked against the services'
settings classes (docs/deployment.md)."""
