import { Ec2ApiError } from './ec2-api-error.js';
import { listOf, structsOf, type QueryParams } from './query-params.js';

/** A RunInstances request after EC2's checks: what the emulator launches. */
export interface LaunchSpec {
  imageId: string;
  instanceType: string;
  keyName?: string;
  minCount: number;
  maxCount: number;
  userData?: string;
  /** UserData decoded (EC2 hands the machine the decoded bytes). */
  userDataText?: string;
  shutdownBehavior: 'stop' | 'terminate';
  clientToken?: string;
  subnetId?: string;
  securityGroupIds: string[];
  associatePublicIpAddress?: boolean;
  blockDevices: Array<{ deviceName: string; volumeSize: number; volumeType: string; deleteOnTermination: boolean }>;
  tags: Map<string, string>;
}

const VOLUME_TYPES = ['standard', 'gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1'];
const RESOURCE_TYPES = ['instance', 'volume', 'network-interface', 'spot-instances-request'];
const MAX_USER_DATA_BYTES = 16 * 1024;

const missing = (name: string) => new Ec2ApiError('MissingParameter', `The request must contain the parameter ${name}`);
const invalid = (name: string, value: string, why = '') =>
  new Ec2ApiError('InvalidParameterValue', `Value (${value}) for parameter ${name} is invalid.${why ? ` ${why}` : ''}`);

/** Reads and checks RunInstances parameters, refusing what EC2 refuses. Throws Ec2ApiError. */
export function parseRunInstances(p: QueryParams, known: { images?: readonly string[]; keyPairs?: readonly string[] }): LaunchSpec {
  const imageId = p.get('ImageId');
  if (!imageId) throw missing('ImageId');
  if (!/^ami-[0-9a-f]{8,17}$/.test(imageId)) throw new Ec2ApiError('InvalidAMIID.Malformed', `Invalid id: "${imageId}" (expecting "ami-...")`);
  if (known.images && !known.images.includes(imageId)) throw new Ec2ApiError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);

  const minCount = count(p, 'MinCount');
  const maxCount = count(p, 'MaxCount');
  if (minCount > maxCount) throw new Ec2ApiError('InvalidParameterValue', `MinCount (${minCount}) must not be greater than MaxCount (${maxCount})`);

  const instanceType = p.get('InstanceType') ?? 'm1.small';
  if (!/^[a-z][a-z0-9-]*\.[a-z0-9-]+$/.test(instanceType)) throw invalid('InstanceType', instanceType);

  const keyName = p.get('KeyName');
  if (keyName !== undefined && known.keyPairs && !known.keyPairs.includes(keyName))
    throw new Ec2ApiError('InvalidKeyPair.NotFound', `The key pair '${keyName}' does not exist`);

  const shutdownBehavior = p.get('InstanceInitiatedShutdownBehavior') ?? 'stop';
  if (shutdownBehavior !== 'stop' && shutdownBehavior !== 'terminate') throw invalid('InstanceInitiatedShutdownBehavior', shutdownBehavior);

  const clientToken = p.get('ClientToken');
  if (clientToken !== undefined && (clientToken.length > 64 || !/^[\x20-\x7e]*$/.test(clientToken)))
    throw invalid('ClientToken', clientToken, 'A client token must be at most 64 ASCII characters.');

  const userData = p.get('UserData');
  let userDataText: string | undefined;
  if (userData !== undefined) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(userData) || userData.length % 4 !== 0) throw new Ec2ApiError('InvalidParameterValue', 'Invalid BASE64 encoding of user data.');
    const bytes = Buffer.from(userData, 'base64');
    if (bytes.length > MAX_USER_DATA_BYTES) throw new Ec2ApiError('InvalidParameterValue', `User data is limited to ${MAX_USER_DATA_BYTES} bytes`);
    userDataText = bytes.toString('utf8');
  }

  const topGroups = listOf(p, 'SecurityGroupId');
  const nics = structsOf(p, 'NetworkInterface');
  if (nics.length > 0 && topGroups.length > 0)
    throw new Ec2ApiError('InvalidParameterCombination', 'Network interfaces and an instance-level security groups may not be specified on the same request');
  if (nics.length > 0 && p.has('SubnetId'))
    throw new Ec2ApiError('InvalidParameterCombination', 'Network interfaces and an instance-level subnet ID may not be specified on the same request');
  const nic = nics[0];
  if (nic !== undefined && p.get(`${nic}.DeviceIndex`) !== '0') throw invalid(`${nic}.DeviceIndex`, p.get(`${nic}.DeviceIndex`) ?? '', 'The primary network interface must have DeviceIndex 0.');
  const subnetId = nic ? p.get(`${nic}.SubnetId`) : p.get('SubnetId');
  if (subnetId !== undefined && !subnetId.startsWith('subnet-')) throw new Ec2ApiError('InvalidSubnetID.Malformed', `Invalid subnet ID: "${subnetId}"`);
  const securityGroupIds = nic ? listOf(p, `${nic}.SecurityGroupId`) : topGroups;
  for (const g of securityGroupIds) if (!g.startsWith('sg-')) throw new Ec2ApiError('InvalidGroupId.Malformed', `Invalid id: "${g}" (expecting "sg-...")`);
  const publicIp = nic ? p.get(`${nic}.AssociatePublicIpAddress`) : undefined;
  if (publicIp !== undefined && publicIp !== 'true' && publicIp !== 'false') throw invalid('AssociatePublicIpAddress', publicIp);

  const blockDevices = structsOf(p, 'BlockDeviceMapping').map((b) => {
    const deviceName = p.get(`${b}.DeviceName`);
    if (!deviceName) throw missing(`${b}.DeviceName`);
    const volumeType = p.get(`${b}.Ebs.VolumeType`) ?? 'gp2';
    if (!VOLUME_TYPES.includes(volumeType)) throw invalid(`${b}.Ebs.VolumeType`, volumeType);
    const size = p.get(`${b}.Ebs.VolumeSize`) ?? '8';
    const volumeSize = Number(size);
    if (!Number.isInteger(volumeSize) || volumeSize < 1 || volumeSize > 16384) throw invalid(`${b}.Ebs.VolumeSize`, size, 'Volume size must be between 1 and 16384 GiB.');
    const del = p.get(`${b}.Ebs.DeleteOnTermination`) ?? 'true';
    return { deviceName, volumeType, volumeSize, deleteOnTermination: del === 'true' };
  });

  const tags = new Map<string, string>();
  for (const spec of structsOf(p, 'TagSpecification')) {
    const type = p.get(`${spec}.ResourceType`);
    if (!type) throw missing(`${spec}.ResourceType`);
    if (!RESOURCE_TYPES.includes(type)) throw invalid(`${spec}.ResourceType`, type);
    if (type !== 'instance') continue;
    for (const t of structsOf(p, `${spec}.Tag`)) {
      const key = p.get(`${t}.Key`);
      const value = p.get(`${t}.Value`) ?? '';
      if (!key) throw missing(`${t}.Key`);
      if (key.length > 128) throw invalid('Tag.Key', key, 'Tag keys are at most 128 characters.');
      if (value.length > 256) throw invalid('Tag.Value', value, 'Tag values are at most 256 characters.');
      if (key.toLowerCase().startsWith('aws:')) throw invalid('Tag.Key', key, "Tag keys starting with 'aws:' are reserved for internal use");
      if (tags.has(key)) throw invalid('Tag.Key', key, 'Duplicate tag key.');
      tags.set(key, value);
    }
    if (tags.size > 50) throw new Ec2ApiError('TagLimitExceeded', 'The maximum number of tags per resource is 50');
  }

  return {
    imageId,
    instanceType,
    keyName,
    minCount,
    maxCount,
    userData,
    userDataText,
    shutdownBehavior,
    clientToken,
    subnetId,
    securityGroupIds,
    associatePublicIpAddress: publicIp === undefined ? undefined : publicIp === 'true',
    blockDevices,
    tags,
  };
}

function count(p: QueryParams, name: 'MinCount' | 'MaxCount'): number {
  const raw = p.get(name);
  if (raw === undefined) throw missing(name);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw invalid(name, raw, `${name} must be a positive integer.`);
  return n;
}
