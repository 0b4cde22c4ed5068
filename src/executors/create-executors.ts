import type { ExecutorConfig } from '../config/config-types.js';
import { PermanentError } from '../errors/buildman-error.js';
import type { BuildExecutor, ExecutorContext } from './build-executor.js';
import { LocalExecutor } from './local/local-executor.js';

/** Builds the configured executors, in fallback order, keyed by NAME. */
export function createExecutors(configs: readonly ExecutorConfig[], ctx: ExecutorContext): Map<string, BuildExecutor> {
  const executors = new Map<string, BuildExecutor>();
  for (const config of configs) {
    switch (config.EXECUTOR) {
      case 'popen':
        executors.set(config.NAME, new LocalExecutor(config, ctx));
        break;
      default:
        throw new PermanentError(
          `executor ${config.NAME}: EXECUTOR ${config.EXECUTOR} is accepted by the config but cannot run builds in this version yet; use EXECUTOR: popen`,
          'EXECUTOR_UNSUPPORTED',
        );
    }
  }
  return executors;
}
