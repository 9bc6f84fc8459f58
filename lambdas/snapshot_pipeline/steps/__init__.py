"""The step logic, one module per group of states: plain functions that take their AWS clients as
arguments. ``handlers/<name>.py`` calls into the module named here:

- resolve_input -> ``resolve_input``;  gate -> ``gate``;
- launch_builder, check_online, stop_builder, check_stopped -> ``builder``;
- start_pull, check_pull, verify_images -> ``pull`` (the SSM document it runs: ``pull_script``);
- create_snapshot, check_snapshot -> ``snapshot``;  publish -> ``publish`` (Fast Snapshot Restore: ``fsr``);
- cleanup -> ``cleanup``;  janitor -> ``janitor``;  retention -> ``retention``.
"""
