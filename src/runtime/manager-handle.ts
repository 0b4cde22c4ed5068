import type { BuildService } from '../api/build-service.js';

/** A running manager: the actor host, the gRPC server and the stores, without the HTTP front. */
export interface ManagerHandle {
  service: BuildService;
  /** host:port the gRPC server listens on (the real port when 0 was asked). */
  grpcAddress: string;
  grpcPort: number;
  /** This instance's id among the managers sharing a Redis ('local' for the embedded default). */
  instanceId: string;
  /** The name this installation's workers are labelled or tagged with. */
  installationId: string;
  /** The live inspection WebSocket port, when started with `inspectPort`. */
  inspectPort?: number;
  /** Stops scheduling, closes the gRPC server, stops local workers, closes stores. */
  stop(): Promise<void>;
}
