import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load-config.js';
import type { Ec2ExecutorConfig } from '../../../src/config/config-types.js';
import type { ExecutorContext } from '../../../src/executors/build-executor.js';
import { Ec2Executor, type Ec2ExecutorOptions } from '../../../src/executors/ec2/ec2-executor.js';
import { PACKAGE_ROOT } from '../../../src/util/package-root.js';
import { startEc2Emulator, type Ec2Emulator, type Ec2EmulatorOptions } from '../../emulators/ec2/ec2-emulator.js';

// The SDK warns once per process that its 2027 releases need Node 22; known, pinned, and noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** The credentials in examples/config.example.yaml: the emulator accepts exactly these. */
export const EXAMPLE_ACCESS_KEY = 'some-key';
export const EXAMPLE_SECRET_KEY = 'some-secret';
/** A registration token stand-in: JWT-shaped, so a leak of any part of it is easy to spot. */
export const TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3Qta2lkIn0.eyJzdWIiOiJidWlsZCJ9.c2lnbmF0dXJlLW5vdC1mb3ItbG9ncw';
export const INSTALLATION = 'bm-ec2-test';
export const GRPC_ADDRESS = 'buildman.example.com:55443';

/** The `ec2` executor of the seed example config, pointed at the emulator. */
export async function exampleEc2Config(endpoint: string, over: Partial<Ec2ExecutorConfig> = {}): Promise<Ec2ExecutorConfig> {
  const cfg = await loadConfig({ file: join(PACKAGE_ROOT, 'examples', 'config.example.yaml'), env: {} });
  const ec2 = cfg.manager.EXECUTORS.find((e): e is Ec2ExecutorConfig => e.EXECUTOR === 'ec2');
  if (!ec2) throw new Error('the example config has no ec2 executor');
  return { ...ec2, EC2_ENDPOINT: endpoint, ...over };
}

export interface LogLine {
  level: 'info' | 'warn' | 'error';
  obj: object;
  msg?: string;
}

export function testContext(lines: LogLine[], over: Partial<ExecutorContext> = {}): ExecutorContext {
  const sink = (level: LogLine['level']) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return {
    managerHostname: 'buildman.example.com',
    grpcAddress: GRPC_ADDRESS,
    installationId: INSTALLATION,
    registryHostname: 'quay.example.com',
    dataDir: '/tmp/buildman-ec2-test',
    log: { info: sink('info'), warn: sink('warn'), error: sink('error') },
    ...over,
  };
}

/** A running emulator that knows the example credentials, and an executor for it; `close()` ends both. */
export interface Ec2Harness {
  emulator: Ec2Emulator;
  executor: Ec2Executor;
  config: Ec2ExecutorConfig;
  lines: LogLine[];
  close(): Promise<void>;
}

export async function ec2Harness(
  opts: { emulator?: Ec2EmulatorOptions; config?: Partial<Ec2ExecutorConfig>; executor?: Ec2ExecutorOptions; context?: Partial<ExecutorContext> } = {},
): Promise<Ec2Harness> {
  const emulator = await startEc2Emulator({ bootDelayMs: 20, shutdownDelayMs: 20, credentials: { [EXAMPLE_ACCESS_KEY]: EXAMPLE_SECRET_KEY }, ...opts.emulator });
  const config = await exampleEc2Config(emulator.endpoint, opts.config);
  const lines: LogLine[] = [];
  const executor = new Ec2Executor(config, testContext(lines, opts.context), { requestTimeoutMs: 2000, ...opts.executor });
  return {
    emulator,
    executor,
    config,
    lines,
    async close() {
      await executor.close();
      await emulator.close();
    },
  };
}

/** Every log line as text (fields and message), for leak checks. */
export function logText(lines: readonly LogLine[]): string {
  return lines.map((l) => `${l.level} ${JSON.stringify(l.obj)} ${l.msg ?? ''}`).join('\n');
}
