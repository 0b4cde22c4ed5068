import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildManagerService, BuildPack, CachedTag, Phase, SetPhaseRequest } from '../../proto/gen/buildman.js';

const root = join(import.meta.dirname, '../..');

describe('wire contract', () => {
  it('the committed generated code matches a fresh generation from proto/buildman.proto', () => {
    const out = mkdtempSync(join(tmpdir(), 'proto-gen-'));
    execFileSync(process.execPath, [join(root, 'scripts/gen-proto.mjs'), out], { cwd: root, stdio: 'pipe' });
    const fresh = readFileSync(join(out, 'buildman.ts'), 'utf8');
    const committed = readFileSync(join(root, 'proto/gen/buildman.ts'), 'utf8');
    expect(committed === fresh, 'proto/gen is stale: run `npm run proto:gen` and commit the result').toBe(true);
  });

  it('has Quay’s service path for every rpc', () => {
    const paths = Object.values(BuildManagerService).map((m) => m.path);
    expect(paths).toEqual([
      '/buildman_pb.BuildManager/Ping',
      '/buildman_pb.BuildManager/RegisterBuildJob',
      '/buildman_pb.BuildManager/Heartbeat',
      '/buildman_pb.BuildManager/SetPhase',
      '/buildman_pb.BuildManager/LogMessage',
      '/buildman_pb.BuildManager/DetermineCachedTag',
    ]);
    expect(BuildManagerService.heartbeat.requestStream && BuildManagerService.heartbeat.responseStream).toBe(true);
    expect(BuildManagerService.logMessage.requestStream && BuildManagerService.logMessage.responseStream).toBe(true);
  });

  it('encodes Quay’s field numbers and enum values', () => {
    // Tag byte = field number << 3 | wire type (2 = length-delimited, 0 = varint).
    const tags = (bytes: Uint8Array) => {
      const seen: number[] = [];
      for (let i = 0; i < bytes.length; ) {
        const tag = bytes[i];
        seen.push(tag >> 3);
        const wire = tag & 7;
        i++;
        if (wire === 0) {
          while (bytes[i] & 0x80) i++;
          i++;
        } else {
          const len = bytes[i];
          i += 1 + len;
        }
      }
      return seen;
    };
    const pack = BuildPack.encode({
      jobJwt: 'j',
      gitPackage: { url: 'u', sha: 's', privateKey: '' },
      context: 'c',
      dockerfilePath: 'd',
      repository: 'r',
      registry: 'g',
      pullToken: 'p',
      pushToken: 'q',
      tagNames: ['t'],
      baseImage: { username: 'x', password: 'y' },
    }).finish();
    expect(tags(pack)).toEqual([1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(tags(BuildPack.encode({ ...BuildPack.fromPartial({ packageUrl: 'http://x' }) }).finish())).toEqual([2]);
    expect(Phase.WAITING).toBe(0);
    expect(Phase.ERROR).toBe(6);
    const phase = SetPhaseRequest.encode({ jobJwt: 'j', sequenceNumber: 3, phase: Phase.PUSHING, pullMetadata: { registryUrl: 'a', baseImage: 'b', baseImageTag: 'c', pullUsername: 'd' } }).finish();
    expect(tags(phase)).toEqual([1, 2, 3, 4]);
    expect(Buffer.from(CachedTag.encode({ CachedTag: 'v1' }).finish())).toEqual(Buffer.from([0x0a, 2, 0x76, 0x31]));
  });
});
