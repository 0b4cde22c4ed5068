import type { AnyStateMachine } from 'xstate';
import { buildJobMachine } from '../../machines/build-job-machine.js';
import { executorMachine } from '../../machines/executor-machine.js';

/** One machine of machines/, under the file name its exports get. */
export interface Statechart {
  name: string;
  /** Where it is defined, relative to the package root. */
  source: string;
  machine: AnyStateMachine;
}

/** Every machine in machines/. A new machine is added here to be exported. */
export const STATECHARTS: readonly Statechart[] = [
  { name: 'build-job', source: 'machines/build-job-machine.ts', machine: buildJobMachine },
  { name: 'executor', source: 'machines/executor-machine.ts', machine: executorMachine },
];
