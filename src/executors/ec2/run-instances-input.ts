import type { RunInstancesCommandInput } from '@aws-sdk/client-ec2';
import type { Ec2ExecutorConfig } from '../../config/config-types.js';
import { builderTags, clientTokenFor } from './ec2-tags.js';

export interface LaunchRequest {
  buildId: string;
  attempt: number;
  /** The registration token; only its first 36 characters reach a tag. */
  token: string;
  installationId: string;
  imageId: string;
  /** The ignition JSON. Holds the token: never log it or the input built from it. */
  userData: string;
}

/** Quay's run_instances arguments (reference §5.2), plus our tags and a deterministic ClientToken. */
export function runInstancesInput(config: Ec2ExecutorConfig, req: LaunchRequest): RunInstancesCommandInput {
  const groups = config.EC2_SECURITY_GROUP_IDS ?? [];
  const input: RunInstancesCommandInput = {
    ImageId: req.imageId,
    InstanceType: config.EC2_INSTANCE_TYPE as RunInstancesCommandInput['InstanceType'],
    KeyName: config.EC2_KEY_NAME || undefined,
    UserData: Buffer.from(req.userData, 'utf8').toString('base64'),
    InstanceInitiatedShutdownBehavior: 'terminate',
    MinCount: 1,
    MaxCount: 1,
    ClientToken: clientTokenFor(req.buildId, req.attempt),
    BlockDeviceMappings: [
      { DeviceName: '/dev/xvda', Ebs: { VolumeSize: config.BLOCK_DEVICE_SIZE, VolumeType: 'gp2', DeleteOnTermination: true } },
    ],
    TagSpecifications: [{ ResourceType: 'instance', Tags: builderTags(req) }],
  };
  if (config.EC2_VPC_SUBNET_ID) {
    // With a subnet the groups go on the interface: EC2 refuses instance-level groups alongside one.
    input.NetworkInterfaces = [{ DeviceIndex: 0, SubnetId: config.EC2_VPC_SUBNET_ID, Groups: groups, AssociatePublicIpAddress: true }];
  } else if (groups.length > 0) {
    input.SecurityGroupIds = groups;
  }
  return input;
}
