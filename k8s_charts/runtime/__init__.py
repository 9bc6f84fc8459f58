"""Scripts that run inside the pods (stdlib + boto3 only); each is shipped as a ConfigMap."""
