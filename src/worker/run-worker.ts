import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Phase, phaseToJSON, type BuildPack } from '../../proto/gen/buildman.js';
import { unpackBuildPack } from './build-package.js';
import type { ContainerRuntime, RegistryAuth, RuntimeIo } from './container-runtime.js';
import { createRuntime } from './create-runtime.js';
import { DockerfileError, parseBaseImage, type BaseImageRef } from './dockerfile-base.js';
import { HeartbeatLoop } from './heartbeat-loop.js';
import { dockerStepLine, errorMessage, statusMessage, streamMessage } from './json-message.js';
import { grpcErrorText, ManagerSession } from './manager-session.js';
import { SecretScrubber } from './secret-scrubber.js';
import { BuildFailure, RegistrationFailure, WorkerStopped } from './worker-errors.js';
import { readWorkerSettings, SettingsError, type WorkerSettings } from './worker-settings.js';

export interface WorkerResult {
  /**
   * 0: built and pushed (COMPLETE reported). 1: the build failed (ERROR reported).
   * 2: never registered (bad environment, manager unreachable, token refused). 143: stopped by a signal.
   */
  exitCode: 0 | 1 | 2 | 143;
  outcome: 'complete' | 'error' | 'unregistered' | 'stopped';
  /** Why it did not complete. */
  message?: string;
}

export interface WorkerOptions {
  /** Aborting stops the build at once (the process entry wires SIGTERM here). */
  signal?: AbortSignal;
  /** Where the worker's own messages go; default stderr. Secrets are scrubbed before this sees them. */
  log?: (line: string) => void;
}

/** quay-builder's stand-in id for `scratch`, which has no image of its own. */
const SCRATCH_IMAGE_ID = '511136ea3c5a64f264b78b5433614aec563103b4d4702f3ba7d4d2698e22c158';
// The path grammar of image references (Docker Distribution): lowercase components with `.`, `_`, `__` or dashes between.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_NAME = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PUSH_ATTEMPTS = 3;

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Runs one build the way quay-builder does on the wire (reference §12): register with the manager,
 * report phases, stream the build log, build and push with the container runtime. Unlike
 * quay-builder it reports a failure as an `{"error"}` log line plus `SetPhase ERROR`.
 */
export async function runWorker(env: NodeJS.ProcessEnv, opts: WorkerOptions = {}): Promise<WorkerResult> {
  const scrubber = new SecretScrubber();
  const emit = opts.log ?? ((line: string) => void process.stderr.write(line + '\n'));
  const say = (line: string) => emit(scrubber.scrub(line));

  let settings: WorkerSettings;
  try {
    settings = readWorkerSettings(env);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    say(`error: ${err.message}`);
    return { exitCode: 2, outcome: 'unregistered', message: err.message };
  }
  scrubber.add(settings.token);

  // One controller ends the build early: the caller's signal, or the manager rejecting heartbeats.
  const abort = new AbortController();
  const onStop = () => abort.abort(new WorkerStopped('the worker was told to stop'));
  if (opts.signal?.aborted) onStop();
  else opts.signal?.addEventListener('abort', onStop, { once: true });

  say(
    `buildman worker: build ${settings.buildUuid || '(unknown)'}, manager ${settings.server} ` +
      `(${settings.insecure ? 'plaintext' : 'TLS'}), runtime ${settings.runtime}`,
  );

  let session: ManagerSession;
  let pack: BuildPack;
  try {
    session = await ManagerSession.connect(settings, say, (t) => scrubber.scrub(t), abort.signal);
    try {
      pack = await session.register(settings.token, abort.signal);
    } catch (err) {
      session.close();
      throw err;
    }
  } catch (err) {
    opts.signal?.removeEventListener('abort', onStop);
    if (err instanceof WorkerStopped) return stopped(say);
    const message = err instanceof RegistrationFailure ? err.message : `cannot register: ${messageOf(err)}`;
    say(`error: ${message}`);
    return { exitCode: 2, outcome: 'unregistered', message };
  }
  scrubber.add(pack.jobJwt, pack.pushToken, pack.pullToken, pack.baseImage?.password, pack.gitPackage?.privateKey);
  scrubber.add(urlPassword(pack.gitPackage?.url), urlPassword(pack.packageUrl));
  say(`registered: repository ${pack.repository || '(none)'} at ${pack.registry || '(no registry: OCI archives)'}, tags ${pack.tagNames.join(', ') || 'latest'}`);

  const heartbeat = new HeartbeatLoop(session.client, pack.jobJwt, {
    say,
    onRejected: (why) => abort.abort(new BuildFailure(`${why}; the build was stopped`)),
  });
  let workDir: string | undefined;
  let secretsDir: string | undefined;
  try {
    workDir = settings.workDir ?? (await mkdtemp(join(tmpdir(), 'buildman-worker-')));
    await mkdir(workDir, { recursive: true });
    // Auth files and the git key live apart from a caller-given work dir, and always go away.
    secretsDir = await mkdtemp(join(tmpdir(), 'buildman-secrets-'));
    await buildAndPush({ session, pack, settings, workDir, secretsDir, signal: abort.signal, say });
    await heartbeat.stop();
    await session.logs.flush();
    if (!(await session.setPhase(Phase.COMPLETE))) say('warning: the build manager did not accept the COMPLETE phase');
    say('build complete');
    return { exitCode: 0, outcome: 'complete' };
  } catch (err) {
    if (err instanceof WorkerStopped || abort.signal.reason instanceof WorkerStopped) {
      await heartbeat.stop();
      return stopped(say);
    }
    const message = err instanceof BuildFailure ? err.message : `the worker failed: ${grpcErrorText(err)}`;
    say(`error: ${message}`);
    session.logs.send(errorMessage(message));
    await heartbeat.stop();
    await session.logs.flush();
    try {
      await session.setPhase(Phase.ERROR);
    } catch (phaseErr) {
      say(`warning: could not report the ERROR phase: ${grpcErrorText(phaseErr)}`);
    }
    return { exitCode: 1, outcome: 'error', message: scrubber.scrub(message) };
  } finally {
    opts.signal?.removeEventListener('abort', onStop);
    await heartbeat.stop();
    session.close();
    if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
    // DEBUG keeps the unpacked package for inspection; a caller-given work dir is the caller's.
    if (workDir && !settings.workDir && !settings.debug) await rm(workDir, { recursive: true, force: true }).catch(() => {});
  }
}

function stopped(say: (line: string) => void): WorkerResult {
  // No phase is reported: the manager stops workers this way when it cancels, and knows already.
  say('stopped by signal');
  return { exitCode: 143, outcome: 'stopped', message: 'the worker was told to stop' };
}

function urlPassword(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return u.password ? decodeURIComponent(u.password) : undefined;
  } catch {
    return undefined;
  }
}

interface BuildContext {
  session: ManagerSession;
  pack: BuildPack;
  settings: WorkerSettings;
  workDir: string;
  secretsDir: string;
  signal: AbortSignal;
  say: (line: string) => void;
}

/** UNPACKING → PULLING → BUILDING → PUSHING; throws `BuildFailure` (or the abort reason) on the way. */
async function buildAndPush(ctx: BuildContext): Promise<void> {
  const { session, pack, settings, signal } = ctx;
  const logs = session.logs;
  const log = (message: Parameters<typeof logs.send>[0]) => {
    logs.send(message);
    if (settings.debug) ctx.say(`log: ${JSON.stringify(message)}`);
  };
  const phase = async (p: Phase, pullMetadata?: Parameters<ManagerSession['setPhase']>[1]) => {
    signal.throwIfAborted();
    if (!(await session.setPhase(p, pullMetadata, signal))) {
      throw new BuildFailure(`the build manager refused the ${phaseToJSON(p)} phase`);
    }
  };

  const tags = pack.tagNames.length > 0 ? pack.tagNames : ['latest'];
  if (!REPOSITORY_NAME.test(pack.repository)) throw new BuildFailure(`the build pack's repository ${JSON.stringify(pack.repository)} is not a valid repository name`);
  const badTag = tags.find((t) => !TAG_NAME.test(t));
  if (badTag !== undefined) throw new BuildFailure(`the build pack's tag ${JSON.stringify(badTag)} is not a valid tag name`);
  if (!pack.registry && !settings.imageDir) {
    throw new BuildFailure('the build pack names no registry and BUILDMAN_IMAGE_DIR is not set: there is nowhere to put the image');
  }

  const runtime = createRuntime(settings, ctx.secretsDir);
  await runtime.check(signal);

  await phase(Phase.UNPACKING);
  const workspace = await unpackBuildPack(pack, {
    workDir: ctx.workDir,
    env: settings.childEnv,
    signal,
    onLine: (line) => log(streamMessage(line)),
  });

  let base: BaseImageRef;
  try {
    base = parseBaseImage(await readFile(workspace.dockerfilePath, 'utf8'));
  } catch (err) {
    if (err instanceof DockerfileError) throw new BuildFailure(err.message);
    throw err;
  }

  await phase(Phase.PULLING, {
    registryUrl: pack.registry,
    baseImage: base.image,
    baseImageTag: base.tag,
    pullUsername: pack.baseImage?.username ?? '',
  });
  // The runtime pulls the base image itself during the build; the cached tag is only a hint here.
  try {
    const baseId = base.image === 'scratch' ? SCRATCH_IMAGE_ID : '';
    const cached = await session.determineCachedTag(base.image, base.tag, baseId, signal);
    ctx.say(`cached tag hint: ${cached || '(none)'}`);
  } catch (err) {
    signal.throwIfAborted();
    ctx.say(`warning: DetermineCachedTag failed: ${grpcErrorText(err)}`);
  }

  await phase(Phase.BUILDING);
  const repoName = `${pack.registry || 'localhost'}/${pack.repository}`;
  const images = tags.map((tag) => `${repoName}:${tag}`);
  // Base-image credentials belong to the build's own registry; never hand them to another one.
  const pullAuth: RegistryAuth | undefined =
    pack.baseImage?.username && pack.registry && base.image.startsWith(pack.registry + '/')
      ? { registry: pack.registry, username: pack.baseImage.username, password: pack.baseImage.password }
      : undefined;
  await runtime.build(
    { contextDir: workspace.contextDir, dockerfile: workspace.dockerfilePath, images, pullAuth },
    {
      signal,
      onLine: (line, stream) => {
        // The runtime's final `Error:` line becomes the `{"error"}` message instead.
        if (stream === 'stderr' && /^error:/i.test(line.trim())) return;
        log(streamMessage(dockerStepLine(line)));
      },
    },
  );

  await phase(Phase.PUSHING);
  const pushIo: RuntimeIo = {
    signal,
    onLine: (line, stream) => {
      if (stream === 'stderr' && /^error:/i.test(line.trim())) return;
      if (line.trim()) log(statusMessage(line));
    },
  };
  if (pack.registry) {
    // Quay's convention: the push token is a password for the user `$token`.
    const auth: RegistryAuth | undefined = pack.pushToken ? { registry: pack.registry, username: '$token', password: pack.pushToken } : undefined;
    for (const image of images) await pushWithRetries(runtime, image, auth, pushIo, log);
  } else {
    const dir = join(settings.imageDir!, pack.repository.replaceAll('/', '_'));
    await mkdir(dir, { recursive: true });
    for (const [i, tag] of tags.entries()) {
      const path = join(dir, `${tag}.oci.tar`);
      await rm(path, { force: true });
      await runtime.saveArchive(images[i], path, `${pack.repository}:${tag}`, pushIo);
      log(streamMessage(`wrote image ${path}`));
    }
  }
  await runtime.remove(images, { signal, onLine: () => {} });
}

/** quay-builder tries a push three times before failing the build. */
async function pushWithRetries(
  runtime: ContainerRuntime,
  image: string,
  auth: RegistryAuth | undefined,
  io: RuntimeIo,
  log: (m: ReturnType<typeof streamMessage>) => void,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await runtime.push(image, auth, io);
      log(streamMessage(`pushed ${image}`));
      return;
    } catch (err) {
      if (!(err instanceof BuildFailure) || attempt >= PUSH_ATTEMPTS) throw err;
      log(streamMessage(`${err.message}; retrying (attempt ${attempt + 1} of ${PUSH_ATTEMPTS})`));
      await new Promise((r) => setTimeout(r, 1000 * attempt));
      io.signal.throwIfAborted();
    }
  }
}
