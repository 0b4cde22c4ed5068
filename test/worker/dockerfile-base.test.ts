import { describe, expect, it } from 'vitest';
import { parseBaseImage } from '../../src/worker/dockerfile-base.js';
import { dockerStepLine } from '../../src/worker/json-message.js';

describe('parseBaseImage', () => {
  it.each([
    ['FROM scratch\n', 'scratch', 'latest'],
    ['# comment\n\nfrom quay.io/org/app:1.2 AS build\nFROM other\n', 'quay.io/org/app', '1.2'],
    ['FROM --platform=linux/amd64 127.0.0.1:5000/test/base\n', '127.0.0.1:5000/test/base', 'latest'],
    ['FROM registry:5000/a/b@sha256:0123\n', 'registry:5000/a/b', 'latest'],
    ['ARG VERSION=3.19\nARG NAME="alpine"\nFROM docker.io/library/${NAME}:$VERSION\n', 'docker.io/library/alpine', '3.19'],
    ['FROM \\\n  localhost/base:v2\n', 'localhost/base', 'v2'],
  ])('%j → %s:%s', (text, image, tag) => {
    expect(parseBaseImage(text)).toEqual({ image, tag });
  });

  it('rejects what quay-builder rejects, with its messages', () => {
    expect(() => parseBaseImage('# only a comment\n')).toThrow('Empty Dockerfile');
    expect(() => parseBaseImage('RUN echo hi\nFROM scratch\n')).toThrow("First line in Dockerfile isn't FROM or ARG");
    expect(() => parseBaseImage('FROM\n')).toThrow('FROM line specifies an invalid base image');
  });
});

describe('dockerStepLine', () => {
  it("rewrites buildah's STEP lines to Docker's spelling and leaves others alone", () => {
    expect(dockerStepLine('STEP 1/3: FROM scratch')).toBe('Step 1/3 : FROM scratch');
    expect(dockerStepLine('STEP 12/20: RUN echo "STEP 1/2: x"')).toBe('Step 12/20 : RUN echo "STEP 1/2: x"');
    expect(dockerStepLine('Step 1/2 : FROM scratch')).toBe('Step 1/2 : FROM scratch');
    expect(dockerStepLine('COMMIT localhost/a:b')).toBe('COMMIT localhost/a:b');
  });
});
