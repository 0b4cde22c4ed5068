import { MemoryOrchestrator } from '../../src/orchestrator/memory-orchestrator.js';
import { orchestratorContract } from './orchestrator-contract.js';

orchestratorContract('MemoryOrchestrator', async () => {
  const orchestrator = new MemoryOrchestrator();
  return { orchestrator, prefix: 'buildman/', dispose: () => orchestrator.close() };
});
