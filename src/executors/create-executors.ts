import type { ExecutorConfig } from '../config/config-types.js';
import type { BuildExecutor, ExecutorContext } from './build-executor.js';
import { Ec2Executor } from './ec2/ec2-executor.js';
import { KubernetesExecutor } from './kubernetes/kubernetes-executor.js';
import { LocalExecutor } from './local/local-executor.js';
import { RateLimitedExecutor } from './rate-limited-executor.js';

/** Control-plane call rate per executor: enough for bursts, gentle enough not to be throttled. */
export interface ExecutorLimits {
  ratePerSecond?: number;
  burst?: number;
}

/** Builds the configured executors, in fallback order, keyed by NAME. */
export function createExecutors(
  configs: readonly ExecutorConfig[],
  ctx: ExecutorContext,
  limits: ExecutorLimits = {},
): Map<string, BuildExecutor> {
  const executors = new Map<string, BuildExecutor>();
  for (const config of configs) {
    executors.set(config.NAME, createExecutor(config, ctx, limits));
  }
  return executors;
}

function createExecutor(config: ExecutorConfig, ctx: ExecutorContext, limits: ExecutorLimits): BuildExecutor {
  switch (config.EXECUTOR) {
    case 'popen':
      // Local processes have no API to protect.
      return new LocalExecutor(config, ctx);
    case 'kubernetes':
    case 'kubernetesPodman':
      return new RateLimitedExecutor(new KubernetesExecutor(config, ctx), limits);
    case 'ec2':
      return new RateLimitedExecutor(new Ec2Executor(config, ctx), limits);
  }
}
