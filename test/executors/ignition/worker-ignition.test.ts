import { describe, expect, it } from 'vitest';
import type { ExecutorCommonConfig } from '../../../src/config/config-types.js';
import { BuildmanError } from '../../../src/errors/buildman-error.js';
import { fromDataUrl, toDataUrl } from '../../../src/executors/ignition/data-url.js';
import {
  CA_CERT_PATH,
  OVERRIDES_PATH,
  registryOf,
  workerEnvFromIgnition,
  workerIgnition,
  workerIgnitionJson,
  type IgnitionConfig,
  type WorkerIgnitionOptions,
} from '../../../src/executors/ignition/worker-ignition.js';
import { execArg } from '../../../src/executors/ignition/worker-units.js';

const BUILD = '7b3a1f0e-2c4d-4e5f-8a9b-0c1d2e3f4a5b';

function config(over: Partial<ExecutorCommonConfig> = {}): ExecutorCommonConfig {
  return { NAME: 'ec2-main', MINIMUM_RETRY_THRESHOLD: 0, DEBUG: false, WORKER_TAG: 'v3.12', ...over };
}

function options(over: Partial<ExecutorCommonConfig> = {}, extra: Partial<WorkerIgnitionOptions> = {}): WorkerIgnitionOptions {
  return { buildId: BUILD, token: 'reg.jwt.token', server: 'buildman.example.com:55443', registryHostname: 'quay.example.com', config: config(over), ...extra };
}

function fileText(ign: IgnitionConfig, path: string): string | undefined {
  const f = ign.storage.files.find((x) => x.path === path);
  return f && fromDataUrl(f.contents.source);
}

function unit(ign: IgnitionConfig, name: string) {
  return ign.systemd.units.find((u) => u.name === name);
}

/** The value of one `Key=` line of a unit file (undefined when absent). */
function directive(contents: string | undefined, key: string): string | undefined {
  const line = contents?.split('\n').find((l) => l.startsWith(`${key}=`));
  return line?.slice(key.length + 1);
}

describe('workerIgnition structure', () => {
  it('is Ignition 3.0.0 with the core user, hostname, overrides and the four units', () => {
    const ign = workerIgnition(options({ SSH_AUTHORIZED_KEYS: ['ssh-ed25519 AAAA one', 'ssh-rsa BBBB two'] }));
    expect(ign.ignition.version).toBe('3.0.0');
    expect(ign.passwd.users).toEqual([{ name: 'core', groups: ['sudo'], sshAuthorizedKeys: ['ssh-ed25519 AAAA one', 'ssh-rsa BBBB two'] }]);
    expect(fileText(ign, '/etc/hostname')).toBe(BUILD);
    expect(fileText(ign, '/etc/zincati/config.d/90-disable-auto-updates.toml')).toBe('[updates]\nenabled = false\n');
    expect(fileText(ign, '/usr/local/bin/disable-aws-metadata.sh')).toContain('--to-destination 1.1.1.1');
    expect(ign.storage.files.find((f) => f.path === '/usr/local/bin/disable-aws-metadata.sh')?.mode).toBe(0o755);
    expect(ign.storage.files.find((f) => f.path === OVERRIDES_PATH)?.mode).toBe(0o600);
    expect(ign.systemd.units.map((u) => u.name)).toEqual([
      'quay-builder.service',
      'machine-lifetime.service',
      'disable-aws-metadata.service',
      'systemd-journal-gatewayd.socket',
    ]);
    expect(ign.systemd.units.every((u) => u.enabled)).toBe(true);
    // No CA configured: no CA file.
    expect(fileText(ign, CA_CERT_PATH)).toBeUndefined();
  });

  it('writes overrides.list in env-file form with Quay\'s variables', () => {
    const text = fileText(workerIgnition(options({ CONTAINER_RUNTIME: 'docker' }, { insecure: false })), OVERRIDES_PATH);
    expect(text).toBe(
      [
        'TOKEN=reg.jwt.token',
        'SERVER=buildman.example.com:55443',
        `BUILD_UUID=${BUILD}`,
        'REGISTRY_HOSTNAME=quay.example.com',
        'CONTAINER_RUNTIME=docker',
        'INSECURE=false',
        'GODEBUG=x509ignoreCN=0',
        '',
      ].join('\n'),
    );
  });

  it('places the CA at the trust anchor and in the runtime certs.d of the registry', () => {
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB+/=%x\n-----END CERTIFICATE-----\n';
    const docker = workerIgnition(options({ CA_CERT: pem }));
    expect(fileText(docker, CA_CERT_PATH)).toBe(pem);
    expect(fileText(docker, '/etc/docker/certs.d/quay.example.com/client.crt')).toBe(pem);
    const podman = workerIgnition(options({ CA_CERT: pem, CONTAINER_RUNTIME: 'podman' }));
    expect(fileText(podman, '/etc/containers/certs.d/quay.example.com/client.crt')).toBe(pem);
    expect(fileText(podman, '/etc/containers/registries.conf')).toContain('short-name-mode = "permissive"');
    expect(unit(podman, 'podman.socket')?.enabled).toBe(true);
  });

  it('refuses a config without WORKER_TAG, naming the key', () => {
    const err = (() => {
      try {
        workerIgnition(options({ WORKER_TAG: undefined }));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(BuildmanError);
    expect((err as BuildmanError).kind).toBe('permanent');
    expect((err as Error).message).toContain('WORKER_TAG');
  });

  it('refuses a value with a line break, which would inject another variable', () => {
    expect(() => workerIgnition(options({ HTTP_PROXY: 'http://p:3128\nTOKEN=evil' }))).toThrow(/HTTP_PROXY.*line break/);
  });
});

describe('quay-builder.service', () => {
  it('docker: exact ExecStart, timeouts and the poweroff after the build', () => {
    const u = unit(workerIgnition(options({ MAX_LIFETIME_S: 7200 })), 'quay-builder.service')!;
    expect(directive(u.contents, 'Type')).toBe('oneshot');
    expect(directive(u.contents, 'ExecStart')).toBe(
      '/usr/bin/docker run --user 0 --rm --privileged --env-file /root/overrides.list --net=host' +
        ' -v /var/run/docker.sock:/var/run/docker.sock -v /etc/pki/ca-trust-source/anchors:/certs' +
        ' quay.io/coreos/registry-build-worker:v3.12',
    );
    expect(directive(u.contents, 'TimeoutStartSec')).toBe('7200');
    expect(directive(u.contents, 'TimeoutStopSec')).toBe('2000');
    expect(directive(u.contents, 'ExecStopPost')).toBe('/bin/sh -c "/bin/sleep 120; /usr/bin/systemctl --no-block poweroff"');
    expect(directive(u.contents, 'ExecStartPre')).toBeUndefined();
    expect(directive(u.contents, 'Requires')).toBe('docker.service');
  });

  it('podman: exact ExecStart with the podman socket and environment', () => {
    const u = unit(workerIgnition(options({ CONTAINER_RUNTIME: 'podman', WORKER_IMAGE: 'quay.io/projectquay/quay-builder' })), 'quay-builder.service')!;
    expect(directive(u.contents, 'ExecStart')).toBe(
      '/usr/bin/podman run --user 0 --rm --privileged --env-file /root/overrides.list' +
        ' -e CONTAINER_RUNTIME=podman -e DOCKER_HOST=unix:/var/run/podman/podman.sock' +
        ' -v /var/run/podman/podman.sock:/var/run/podman/podman.sock -v /etc/pki/ca-trust-source/anchors:/certs' +
        ' quay.io/projectquay/quay-builder:v3.12',
    );
    expect(directive(u.contents, 'Requires')).toBe('podman.socket');
    expect(directive(u.contents, 'TimeoutStartSec')).toBe('10800');
  });

  it('DEBUG: no poweroff after the build, so the machine stays for inspection', () => {
    const ign = workerIgnition(options({ DEBUG: true }));
    const u = unit(ign, 'quay-builder.service')!;
    expect(directive(u.contents, 'ExecStopPost')).toBeUndefined();
    expect(directive(u.contents, 'ExecStart')).toMatch(/^\/usr\/bin\/docker run /);
    expect(workerEnvFromIgnition(ign).DEBUG).toBe('true');
  });

  it('logs in to the image registry with the password on stdin from a root-only file', () => {
    const ign = workerIgnition(options({ QUAY_USERNAME: 'robot+builder', QUAY_PASSWORD: 's3cr%t pass', WORKER_IMAGE: 'registry.example.com:8443/team/worker' }));
    const u = unit(ign, 'quay-builder.service')!;
    expect(directive(u.contents, 'ExecStartPre')).toBe('/usr/bin/docker login --username robot+builder --password-stdin registry.example.com:8443');
    expect(directive(u.contents, 'StandardInput')).toBe('file:/root/registry-password');
    expect(fileText(ign, '/root/registry-password')).toBe('s3cr%t pass');
    expect(ign.storage.files.find((f) => f.path === '/root/registry-password')?.mode).toBe(0o600);
    expect(u.contents).not.toContain('s3cr');

    const podman = unit(workerIgnition(options({ QUAY_USERNAME: 'u', QUAY_PASSWORD: 'p', CONTAINER_RUNTIME: 'podman' })), 'quay-builder.service')!;
    expect(directive(podman.contents, 'ExecStartPre')).toBe('/usr/bin/podman login --username u --password-stdin quay.io');
  });

  it('no login without both username and password', () => {
    const ign = workerIgnition(options({ QUAY_USERNAME: 'only-user' }));
    expect(directive(unit(ign, 'quay-builder.service')!.contents, 'ExecStartPre')).toBeUndefined();
    expect(fileText(ign, '/root/registry-password')).toBeUndefined();
  });
});

describe('the other units', () => {
  it('machine-lifetime powers off after MAX_LIFETIME_S, in every mode', () => {
    for (const over of [{}, { DEBUG: true }, { CONTAINER_RUNTIME: 'podman' as const }]) {
      const u = unit(workerIgnition(options({ MAX_LIFETIME_S: 3600, ...over })), 'machine-lifetime.service')!;
      expect(directive(u.contents, 'ExecStart')).toBe('/bin/sh -c "/bin/sleep 3600; /usr/bin/systemctl --no-block poweroff"');
    }
    const dflt = unit(workerIgnition(options()), 'machine-lifetime.service')!;
    expect(directive(dflt.contents, 'ExecStart')).toBe('/bin/sh -c "/bin/sleep 10800; /usr/bin/systemctl --no-block poweroff"');
  });

  it('disable-aws-metadata runs its script before the worker; the journal gateway socket is enabled', () => {
    const ign = workerIgnition(options());
    const u = unit(ign, 'disable-aws-metadata.service')!;
    expect(directive(u.contents, 'ExecStart')).toBe('/usr/local/bin/disable-aws-metadata.sh');
    expect(directive(u.contents, 'Before')).toBe('quay-builder.service');
    expect(unit(ign, 'systemd-journal-gatewayd.socket')).toEqual({ name: 'systemd-journal-gatewayd.socket', enabled: true });
  });
});

describe('environment round trip', () => {
  it('workerEnvFromIgnition reads back exactly what was written, from the object or the JSON', () => {
    const opts = options({ CONTAINER_RUNTIME: 'podman' }, { insecure: true, token: 'a.b=c.d' });
    const expected = {
      TOKEN: 'a.b=c.d',
      SERVER: 'buildman.example.com:55443',
      BUILD_UUID: BUILD,
      REGISTRY_HOSTNAME: 'quay.example.com',
      CONTAINER_RUNTIME: 'podman',
      INSECURE: 'true',
      GODEBUG: 'x509ignoreCN=0',
    };
    expect(workerEnvFromIgnition(workerIgnition(opts))).toEqual(expected);
    expect(workerEnvFromIgnition(workerIgnitionJson(opts))).toEqual(expected);
  });

  it('passes every proxy variable that is set (Quay passed only one, Q10)', () => {
    const env = workerEnvFromIgnition(
      workerIgnition(options({ HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://proxy:3129', NO_PROXY: 'localhost,.svc,10.0.0.0/8' })),
    );
    expect(env).toMatchObject({ HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://proxy:3129', NO_PROXY: 'localhost,.svc,10.0.0.0/8' });
    expect(workerEnvFromIgnition(workerIgnition(options({ NO_PROXY: 'x' })))).not.toHaveProperty('HTTP_PROXY');
  });

  it('leaves out what was not given', () => {
    const env = workerEnvFromIgnition(workerIgnition(options({}, { registryHostname: undefined })));
    expect(Object.keys(env)).toEqual(['TOKEN', 'SERVER', 'BUILD_UUID', 'GODEBUG']);
  });
});

describe('data URLs', () => {
  it('every file is a percent-encoded data: URL that decodes to text', () => {
    const ign = workerIgnition(
      options({ CA_CERT: 'pem with spaces, %, #, ?, & and\nnewlines', QUAY_USERNAME: 'u', QUAY_PASSWORD: 'p w#?%', CONTAINER_RUNTIME: 'podman', HTTP_PROXY: 'http://u:p@proxy:3128/?a=b&c' }),
    );
    expect(ign.storage.files.length).toBeGreaterThanOrEqual(8);
    for (const f of ign.storage.files) {
      expect(f.contents.source).toMatch(/^data:,[A-Za-z0-9\-_.!~*'()%]*$/);
      expect(() => fromDataUrl(f.contents.source)).not.toThrow();
      expect(f.path.startsWith('/')).toBe(true);
    }
    expect(fileText(ign, CA_CERT_PATH)).toBe('pem with spaces, %, #, ?, & and\nnewlines');
    expect(fileText(ign, '/root/registry-password')).toBe('p w#?%');
  });

  it('round-trips arbitrary text and also decodes base64 data URLs', () => {
    const text = 'ünïcödé 100% #1 ?x=y&z\n\t"quoted"';
    expect(fromDataUrl(toDataUrl(text))).toBe(text);
    expect(fromDataUrl(`data:;base64,${Buffer.from(text).toString('base64')}`)).toBe(text);
    expect(() => fromDataUrl('https://example.com')).toThrow();
  });
});

describe('helpers', () => {
  it('registryOf finds the host of an image reference', () => {
    expect(registryOf('quay.io/coreos/registry-build-worker:v1')).toBe('quay.io');
    expect(registryOf('localhost/worker')).toBe('localhost');
    expect(registryOf('registry:5000/worker')).toBe('registry:5000');
    expect(registryOf('library/ubuntu')).toBe('docker.io');
    expect(registryOf('ubuntu')).toBe('docker.io');
  });

  it('execArg keeps systemd from expanding % and $ and quotes spaces', () => {
    expect(execArg('plain-word:1.0')).toBe('plain-word:1.0');
    expect(execArg('100%')).toBe('100%%');
    expect(execArg('$HOME')).toBe('$$HOME');
    expect(execArg('two words "q"')).toBe('"two words \\"q\\""');
  });
});
