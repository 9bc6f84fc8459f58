"""The builder instance: launch, wait for SSM, stop, find its data volume."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from settings import names

from ..build_plan import BuildPlan
from ..core.aws_errors import error_code, translate
from ..core.errors import BuilderLost, InsufficientCapacity
from ..core.tags import base_tags, tag_list

if TYPE_CHECKING:  # the check_* and stop handlers import this module and never need the settings parser
    from ..core.defaults import PipelineDefaults

# A standalone Bottlerocket builder (never joins a cluster):
# - the admin host container runs the pull script (its bash, jq; `sheltie` reaches the host); the
#   control container (SSM agent) is on by default and stated for clarity;
# - hostname-override-source = "instance-id": at boot, pluto (bottlerocket-core-kit
#   sources/api/pluto/src/main.rs, generate_node_name) otherwise follows the aws-k8s default
#   "private-dns-name" and calls ec2:DescribeInstances, which the builder role does not grant; with
#   "instance-id" it reads IMDS only. Its other generators need no AWS API without a cluster name
#   (cluster DNS IP falls back to IMDS; max-pods and provider ID come from IMDS). So the role stays
#   SSM core + ECR read, and no boot-settings unit fails.
USER_DATA = """\
[settings.host-containers.admin]
enabled = true

[settings.host-containers.control]
enabled = true

[settings.kubernetes]
hostname-override-source = "instance-id"
"""

CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity", "Unsupported"})


def client_token(execution_arn: str) -> str:
    """RunInstances idempotency token: a retried launch step returns the same instance, not a second one."""
    return hashlib.sha256(execution_arn.encode()).hexdigest()[:64]


def launch_request(
    *, plan: BuildPlan, execution_arn: str, defaults: PipelineDefaults, subnet_id: str, security_group_id: str,
    instance_profile_arn: str, root_volume_size: int,
) -> dict[str, Any]:
    """The RunInstances request: private subnet, no public IP, IMDSv2 only, encrypted gp3 data volume."""
    instance_tags = base_tags(defaults.pipelineName, execution_arn, names.ROLE_BUILDER_INSTANCE)
    volume_tags = base_tags(defaults.pipelineName, execution_arn, names.ROLE_BUILDER_VOLUME)
    return {
        "ImageId": plan.ami_id,
        "InstanceType": defaults.builderInstanceType,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": client_token(execution_arn),
        "IamInstanceProfile": {"Arn": instance_profile_arn},
        "UserData": USER_DATA,
        # An OS-initiated shutdown terminates (and so deletes the volumes): nothing outlives a crash.
        "InstanceInitiatedShutdownBehavior": "terminate",
        "NetworkInterfaces": [
            {"DeviceIndex": 0, "SubnetId": subnet_id, "Groups": [security_group_id], "AssociatePublicIpAddress": False, "DeleteOnTermination": True}
        ],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [
            {
                "DeviceName": names.BUILDER_ROOT_DEVICE,
                "Ebs": {"VolumeSize": root_volume_size, "VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
            },
            {
                "DeviceName": names.BUILDER_DATA_DEVICE,
                "Ebs": {
                    "VolumeSize": defaults.dataVolumeSizeGiB,
                    "VolumeType": "gp3",
                    "Iops": defaults.dataVolumeIops,
                    "Throughput": defaults.dataVolumeThroughput,
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            },
        ],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list(instance_tags)},
            {"ResourceType": "volume", "Tags": tag_list(volume_tags)},
            {"ResourceType": "network-interface", "Tags": tag_list(instance_tags)},
        ],
    }


def root_volume_size(ec2: Any, ami_id: str) -> int:
    """Size of the AMI's root device: an encrypted override of the root mapping must state it."""
    images = ec2.describe_images(ImageIds=[ami_id])["Images"]
    if not images:
        raise BuilderLost(f"AMI {ami_id} from the Bottlerocket parameter is not visible in this region")
    image = images[0]
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") in (image.get("RootDeviceName"), names.BUILDER_ROOT_DEVICE) and "Ebs" in mapping:
            return int(mapping["Ebs"].get("VolumeSize") or 2)
    return 2  # Bottlerocket's OS volume


def launch(ec2: Any, *, plan: BuildPlan, execution_arn: str, defaults: PipelineDefaults, subnet_ids: list[str],
           security_group_id: str, instance_profile_arn: str) -> dict[str, Any]:
    """Launch in the first private subnet (AZ) with capacity; InsufficientCapacity if none has."""
    size = root_volume_size(ec2, plan.ami_id)
    tried: list[str] = []
    # Start at a subnet picked from the token so repeated builds spread over AZs deterministically.
    start = int(client_token(execution_arn), 16) % len(subnet_ids)
    for subnet_id in subnet_ids[start:] + subnet_ids[:start]:
        request = launch_request(plan=plan, execution_arn=execution_arn, defaults=defaults, subnet_id=subnet_id,
                                 security_group_id=security_group_id, instance_profile_arn=instance_profile_arn, root_volume_size=size)
        # One token per subnet: an idempotent retry in the same subnet, a fresh attempt in the next.
        request["ClientToken"] = client_token(f"{execution_arn}/{subnet_id}")
        try:
            instance = ec2.run_instances(**request)["Instances"][0]
        except ClientError as exc:
            if error_code(exc) in CAPACITY_CODES:
                tried.append(subnet_id)
                continue
            raise translate(exc) from exc
        return {"instanceId": instance["InstanceId"], "subnetId": subnet_id,
                "availabilityZone": instance.get("Placement", {}).get("AvailabilityZone")}
    raise InsufficientCapacity(
        f"no capacity for {defaults.builderInstanceType} in subnets {tried}; the state machine retries later, "
        "or set coldstart:builderInstanceType to a type with more capacity"
    )


def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        if error_code(exc) == "InvalidInstanceID.NotFound":
            raise BuilderLost(f"builder {instance_id} no longer exists") from exc
        raise translate(exc) from exc
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise BuilderLost(f"builder {instance_id} no longer exists")
    return instances[0]


def check_online(ec2: Any, ssm: Any, instance_id: str) -> dict[str, Any]:
    """{"online": bool, "state": ...}: SSM reports the agent Online. A dead instance fails now, not at timeout."""
    state = describe_instance(ec2, instance_id)["State"]["Name"]
    if state in ("shutting-down", "terminated", "stopping", "stopped"):
        raise BuilderLost(f"builder {instance_id} is {state} before SSM reported it online (see its console output)")
    info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])["InstanceInformationList"]
    ping = info[0].get("PingStatus") if info else "NotRegistered"
    return {"online": ping == "Online", "pingStatus": ping, "state": state}


def stop(ec2: Any, instance_id: str) -> None:
    """Stop (not terminate) so the data volume's file system is consistent when it is snapshotted."""
    ec2.stop_instances(InstanceIds=[instance_id])


def check_stopped(ec2: Any, instance_id: str) -> dict[str, Any]:
    state = describe_instance(ec2, instance_id)["State"]["Name"]
    if state in ("shutting-down", "terminated"):
        raise BuilderLost(f"builder {instance_id} is {state}; its data volume is gone")
    return {"stopped": state == "stopped", "state": state}


def data_volume_id(ec2: Any, instance_id: str) -> str:
    instance = describe_instance(ec2, instance_id)
    for mapping in instance.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == names.BUILDER_DATA_DEVICE:
            return str(mapping["Ebs"]["VolumeId"])
    raise BuilderLost(f"builder {instance_id} has no {names.BUILDER_DATA_DEVICE} data volume attached")
