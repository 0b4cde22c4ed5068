import { afterAll, beforeAll } from 'vitest';
import { KubernetesExecutor } from '../../../src/executors/kubernetes/kubernetes-executor.js';
import { KubeApiEmulator } from '../../emulators/kubernetes/kube-api-emulator.js';
import { TestPki } from '../../emulators/kubernetes/test-pki.js';
import { executorContract } from '../contract/executor-contract.js';
import { emulatorKeys, kubeConfig, kubeContext } from './kube-fixture.js';
import { nodeWorker } from './worker-process.js';

let pki: TestPki;
beforeAll(() => {
  pki = TestPki.create();
});
afterAll(() => pki.remove());

for (const kind of ['kubernetesPodman', 'kubernetes'] as const) {
  executorContract(`${kind} (Kubernetes API emulator, real worker processes)`, async () => {
    const worker = nodeWorker();
    const emulator = await KubeApiEmulator.start({ pki, runWorker: worker.runWorker });
    const executor = new KubernetesExecutor(kubeConfig({ EXECUTOR: kind, ...emulatorKeys(emulator) }), kubeContext());
    return {
      executor,
      faults: { break: () => emulator.refuseConnections(), heal: () => emulator.acceptConnections() },
      workerProcesses: () => emulator.liveWorkers,
      cleanup: async () => {
        await executor.close();
        await emulator.close();
      },
    };
  });
}
