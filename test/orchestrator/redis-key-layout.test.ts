import { describe, expect, it } from 'vitest';
import { escapeGlob, isSiblingKey, RedisKeyLayout } from '../../src/orchestrator/redis-key-layout.js';
import { withExpiredKeyspaceEvents } from '../../src/redis/keyspace-events.js';
import { parseSentinelAddress } from '../../src/redis/sentinel-address.js';

describe('RedisKeyLayout', () => {
  it("names Quay's event channel from ORCHESTRATOR_PREFIX, with or without slashes", () => {
    expect(new RedisKeyLayout('buildman/production/').channel).toBe('buildman/production/orchestrator_events');
    expect(new RedisKeyLayout('buildman/production').channel).toBe('buildman/production/orchestrator_events');
    expect(new RedisKeyLayout('/buildman/').channel).toBe('buildman/orchestrator_events');
    expect(new RedisKeyLayout('').channel).toBe('orchestrator_events');
  });

  it('keeps the deadlines set and the keyspace pattern under the prefix', () => {
    const layout = new RedisKeyLayout('buildman/production/');
    expect(layout.expiries).toBe('buildman/production/expiries');
    expect(layout.keyspacePattern(0)).toBe('__keyspace@0__:buildman/production/*/expiring');
    expect(layout.keyspacePattern(3)).toBe('__keyspace@3__:buildman/production/*/expiring');
    expect(new RedisKeyLayout('').keyspacePattern(0)).toBe('__keyspace@0__:*/expiring');
    expect(new RedisKeyLayout('a*b?/[x]\\/').keyspacePattern(0)).toBe('__keyspace@0__:a\\*b\\?/\\[x\\]\\\\/*/expiring');
  });

  it('gives each script the main key, its siblings and the deadlines set', () => {
    expect(new RedisKeyLayout('p/').scriptKeys('p/building/1')).toEqual([
      'p/building/1',
      'p/building/1/expiring',
      'p/building/1/expired',
      'p/expiries',
    ]);
  });

  it('reads the main key back from a keyspace channel of the same db', () => {
    const layout = new RedisKeyLayout('p/');
    expect(layout.keyFromKeyspaceChannel(0, '__keyspace@0__:p/building/1/expiring')).toBe('p/building/1');
    expect(layout.keyFromKeyspaceChannel(0, '__keyspace@1__:p/building/1/expiring')).toBeUndefined();
    expect(layout.keyFromKeyspaceChannel(0, '__keyspace@0__:p/building/1')).toBeUndefined();
  });

  it('escapes glob characters and recognises sibling keys', () => {
    expect(escapeGlob('plain/prefix/')).toBe('plain/prefix/');
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    expect(isSiblingKey('p/building/1/expiring')).toBe(true);
    expect(isSiblingKey('p/building/1/expired')).toBe(true);
    expect(isSiblingKey('p/building/1')).toBe(false);
  });
});

describe('keyspace notification flags', () => {
  it('adds K and x to what the server has, and nothing it already has', () => {
    expect(withExpiredKeyspaceEvents('')).toBe('Kx');
    expect(withExpiredKeyspaceEvents('xE')).toBe('xEK');
    expect(withExpiredKeyspaceEvents('Eg')).toBe('EgKx');
    expect(withExpiredKeyspaceEvents('xK')).toBe('xK');
    expect(withExpiredKeyspaceEvents('AKE')).toBe('AKE');
    expect(withExpiredKeyspaceEvents('AE')).toBe('AEK');
  });
});

describe('sentinel addresses', () => {
  it('reads host:port and [v6]:port, and refuses anything else', () => {
    expect(parseSentinelAddress('sentinel-1:26379')).toEqual({ host: 'sentinel-1', port: 26379 });
    expect(parseSentinelAddress(' 10.0.0.1:1 ')).toEqual({ host: '10.0.0.1', port: 1 });
    expect(parseSentinelAddress('[::1]:26379')).toEqual({ host: '::1', port: 26379 });
    for (const bad of ['sentinel-1', ':26379', 'host:', 'host:0', 'host:65536', '::1:26379', 'redis://host:26379', 'a b:1'])
      expect(parseSentinelAddress(bad)).toBeUndefined();
  });
});
