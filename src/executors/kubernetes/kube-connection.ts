import {
  BatchV1Api,
  CoreV1Api,
  createConfiguration,
  KubeConfig,
  ServerConfiguration,
  type Cluster,
  type Middleware,
  type RequestContext,
  type User,
} from '@kubernetes/client-node';
import type { KubernetesExecutorConfig } from '../../config/config-types.js';

export interface KubeClients {
  batch: BatchV1Api;
  core: CoreV1Api;
  /** The URL requests go to, for messages. */
  server: string;
}

/**
 * The API server URL as Quay builds it: https when a token or a client certificate is set,
 * plain http otherwise. A K8S_API_SERVER that already names its scheme is used as it is.
 */
export function apiServerUrl(config: KubernetesExecutorConfig): string {
  if (/^https?:\/\//.test(config.K8S_API_SERVER)) return config.K8S_API_SERVER.replace(/\/+$/, '');
  const secure = Boolean(config.SERVICE_ACCOUNT_TOKEN || (config.K8S_API_TLS_CERT && config.K8S_API_TLS_KEY));
  return `${secure ? 'https' : 'http'}://${config.K8S_API_SERVER}`;
}

/**
 * The real client-node API objects for one executor. Files (CA, client certificate and key) are
 * named, not read here: the client reads them on each request, so rotated certificates are
 * picked up. Unlike Quay, VERIFY_TLS is honoured: verification is skipped only when it is false.
 */
export function kubeClients(config: KubernetesExecutorConfig): KubeClients {
  const server = apiServerUrl(config);
  const cluster: Cluster = {
    name: 'buildman',
    server,
    // client-node refuses an http: server unless skipTLSVerify is set; there is no TLS to verify there.
    skipTLSVerify: server.startsWith('http:') || !config.VERIFY_TLS,
    ...(config.K8S_API_TLS_CA ? { caFile: config.K8S_API_TLS_CA } : {}),
  };
  const user: User = {
    name: 'buildman',
    ...(config.SERVICE_ACCOUNT_TOKEN ? { token: config.SERVICE_ACCOUNT_TOKEN } : {}),
    ...(config.K8S_API_TLS_CERT && config.K8S_API_TLS_KEY ? { certFile: config.K8S_API_TLS_CERT, keyFile: config.K8S_API_TLS_KEY } : {}),
  };

  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [user],
    contexts: [{ name: 'buildman', cluster: 'buildman', user: 'buildman', namespace: config.BUILDER_NAMESPACE }],
    currentContext: 'buildman',
  });
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [requestTimeout(config.K8S_API_TIMEOUT * 1000)],
  });
  return { batch: new BatchV1Api(configuration), core: new CoreV1Api(configuration), server };
}

/** K8S_API_TIMEOUT per request: the request is aborted (an AbortError) when no answer came in time. */
function requestTimeout(ms: number): Middleware {
  return {
    async pre(context: RequestContext) {
      context.setSignal(AbortSignal.timeout(ms));
      return context;
    },
    async post(context) {
      return context;
    },
  };
}
