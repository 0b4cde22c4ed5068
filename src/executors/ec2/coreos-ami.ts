import { PermanentError } from '../../errors/buildman-error.js';
import { classifyHttpFailure, classifyNetworkFailure } from '../executor-errors.js';

/** Fedora CoreOS publishes one stream document per channel; Quay reads the AMI from it when COREOS_AMI is unset. */
export const COREOS_STREAM_URL = 'https://builds.coreos.fedoraproject.org/streams/{channel}.json';
/** Quay caches the lookup for an hour. */
export const AMI_CACHE_MS = 60 * 60_000;
const LOOKUP_TIMEOUT_MS = 10_000;

interface StreamDocument {
  architectures?: { x86_64?: { images?: { aws?: { regions?: Record<string, { image?: string }> } } } };
}

/**
 * The Fedora CoreOS AMI for a channel and region, from the stream document at
 * `architectures.x86_64.images.aws.regions[<region>].image` (reference §5.2), cached for an hour.
 */
export class CoreosAmiLookup {
  private readonly cache = new Map<string, { ami: string; until: number }>();

  constructor(
    private readonly urlTemplate = COREOS_STREAM_URL,
    private readonly now: () => number = Date.now,
  ) {}

  async ami(channel: string, region: string, executorName: string): Promise<string> {
    const key = `${channel}/${region}`;
    const hit = this.cache.get(key);
    if (hit && hit.until > this.now()) return hit.ami;

    const url = this.urlTemplate.replace('{channel}', encodeURIComponent(channel));
    const where = { executor: `executor ${executorName} (ec2)`, action: `read the Fedora CoreOS ${channel} stream (COREOS_AMI is unset)` };
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS) });
      text = await res.text();
    } catch (err) {
      throw withSetAmi(classifyNetworkFailure(err, where));
    }
    if (!res.ok) throw withSetAmi(classifyHttpFailure(res.status, text.slice(0, 200), undefined, where));

    let ami: string | undefined;
    try {
      ami = (JSON.parse(text) as StreamDocument).architectures?.x86_64?.images?.aws?.regions?.[region]?.image;
    } catch {
      ami = undefined;
    }
    if (!ami) {
      throw new PermanentError(
        `${where.executor}: the Fedora CoreOS ${channel} stream (${url}) lists no x86_64 AMI for region ${region}. Set COREOS_AMI to an AMI in ${region}, or check EC2_REGION and COREOS_CHANNEL`,
        'EC2_NO_AMI',
      );
    }
    this.cache.set(key, { ami, until: this.now() + AMI_CACHE_MS });
    return ami;
  }
}

/** The lookup is optional: say how to do without it. */
function withSetAmi<E extends Error>(err: E): E {
  err.message = `${err.message} Or set COREOS_AMI to skip the lookup.`;
  return err;
}
