"""The operator commands' logic: plain functions over boto3 clients (one module per command).

``coldstart/cli.py`` only parses options, builds clients and prints; everything here takes its
clients and paths as arguments so tests call it directly against moto.
"""
