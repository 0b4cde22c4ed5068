import { STATE_CODES, type EmulatedInstance, type InstanceStateName } from './emulated-instance.js';

/** EC2 responses, written by template in the shapes EC2 itself returns for API version 2016-11-15. */
export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';
export const OWNER_ID = '123456789012';

/** Escapes element text (the templates put values only in text, never in attributes). */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!);
}

const el = (name: string, value: string | number | boolean | undefined): string =>
  value === undefined ? '' : `<${name}>${xmlEscape(String(value))}</${name}>`;

/** EC2's error document (note: `RequestID` here, `requestId` in success bodies). */
export function errorXml(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<Response><Errors><Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error></Errors>` +
    `<RequestID>${requestId}</RequestID></Response>`
  );
}

function stateXml(name: string, state: InstanceStateName): string {
  return `<${name}><code>${STATE_CODES[state]}</code><name>${state}</name></${name}>`;
}

function tagSetXml(tags: Map<string, string>): string {
  if (tags.size === 0) return '';
  return `<tagSet>${[...tags].map(([k, v]) => `<item>${el('key', k)}${el('value', v)}</item>`).join('')}</tagSet>`;
}

function instanceXml(i: EmulatedInstance): string {
  const groups = i.securityGroupIds.map((g) => `<item>${el('groupId', g)}${el('groupName', g)}</item>`).join('');
  const devices = i.blockDevices
    .map(
      (d) =>
        `<item>${el('deviceName', d.deviceName)}<ebs>${el('volumeId', d.volumeId)}${el('status', 'attached')}` +
        `${el('attachTime', i.launchTime.toISOString())}${el('deleteOnTermination', d.deleteOnTermination)}</ebs></item>`,
    )
    .join('');
  const gone = i.state === 'terminated' || i.state === 'shutting-down';
  return (
    `<item>${el('instanceId', i.instanceId)}${el('imageId', i.imageId)}${stateXml('instanceState', i.state)}` +
    `${el('privateDnsName', gone ? '' : `ip-${i.privateIpAddress.replaceAll('.', '-')}.ec2.internal`)}<dnsName/>` +
    `${el('reason', i.stateReason ?? '')}${el('keyName', i.keyName)}<amiLaunchIndex>0</amiLaunchIndex><productCodes/>` +
    `${el('instanceType', i.instanceType)}${el('launchTime', i.launchTime.toISOString())}` +
    `<placement><availabilityZone>us-east-1a</availabilityZone><groupName/><tenancy>default</tenancy></placement>` +
    `<monitoring><state>disabled</state></monitoring>${el('subnetId', i.subnetId)}` +
    `${gone ? '' : el('privateIpAddress', i.privateIpAddress)}<groupSet>${groups}</groupSet>` +
    `${i.stateReason ? `<stateReason>${el('code', i.stateReason)}${el('message', i.stateReason)}</stateReason>` : ''}` +
    `<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>` +
    `<blockDeviceMapping>${devices}</blockDeviceMapping><virtualizationType>hvm</virtualizationType>` +
    `${el('clientToken', i.clientToken ?? '')}${tagSetXml(i.tags)}<hypervisor>xen</hypervisor>` +
    `<instanceInitiatedShutdownBehavior>${i.shutdownBehavior}</instanceInitiatedShutdownBehavior></item>`
  );
}

function reservationBody(reservationId: string, instances: readonly EmulatedInstance[]): string {
  return `${el('reservationId', reservationId)}${el('ownerId', OWNER_ID)}<groupSet/><instancesSet>${instances.map(instanceXml).join('')}</instancesSet>`;
}

function wrap(action: string, requestId: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NAMESPACE}">${el('requestId', requestId)}${body}</${action}Response>`;
}

export function runInstancesXml(requestId: string, reservationId: string, instances: readonly EmulatedInstance[]): string {
  return wrap('RunInstances', requestId, reservationBody(reservationId, instances));
}

export function describeInstancesXml(requestId: string, reservations: ReadonlyArray<{ reservationId: string; instances: EmulatedInstance[] }>, nextToken?: string): string {
  const items = reservations.map((r) => `<item>${reservationBody(r.reservationId, r.instances)}</item>`).join('');
  return wrap('DescribeInstances', requestId, `<reservationSet>${items}</reservationSet>${el('nextToken', nextToken)}`);
}

export function terminateInstancesXml(requestId: string, changes: ReadonlyArray<{ instanceId: string; previous: InstanceStateName; current: InstanceStateName }>): string {
  const items = changes
    .map((c) => `<item>${el('instanceId', c.instanceId)}${stateXml('currentState', c.current)}${stateXml('previousState', c.previous)}</item>`)
    .join('');
  return wrap('TerminateInstances', requestId, `<instancesSet>${items}</instancesSet>`);
}
