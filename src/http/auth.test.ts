import { describe, expect, it } from 'vitest';
import { apiTokenFrom, bearerMatches, checkBindable, isLoopbackHost } from './auth.ts';

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['app.localhost', true],
    ['::1', true],
    ['[::1]', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
    ['128.0.0.1', false],
    ['localhost.example.com', false],
    ['example.com', false],
  ])('%s → %s', (host, loopback) => expect(isLoopbackHost(host)).toBe(loopback));
});

describe('bearerMatches', () => {
  const token = 'abcdefghijklmnop-0123';
  it.each([
    [`Bearer ${token}`, true],
    [`bearer ${token}`, true],
    [`Bearer  ${token} `, true],
    [`Bearer ${token}x`, false],
    [`Bearer ${token.slice(1)}`, false],
    [`Basic ${token}`, false],
    [token, false],
    ['Bearer', false],
    ['', false],
    [undefined, false],
  ])('%j → %s', (header, ok) => expect(bearerMatches(header, token)).toBe(ok));
});

describe('tokens and binding', () => {
  it('takes ORCH_API_TOKEN, ignores a blank one and refuses a short one', () => {
    expect(apiTokenFrom({ ORCH_API_TOKEN: ' 0123456789abcdef0 ' })).toBe('0123456789abcdef0');
    expect(apiTokenFrom({ ORCH_API_TOKEN: '  ' })).toBeNull();
    expect(apiTokenFrom({})).toBeNull();
    expect(() => apiTokenFrom({ ORCH_API_TOKEN: 'abc' })).toThrow(/at least 16 characters \(it has 3\)/);
  });

  it('refuses a public bind without a token only', () => {
    expect(() => checkBindable('0.0.0.0', null)).toThrow(/ORCH_API_TOKEN/);
    expect(() => checkBindable('10.0.0.5', null)).toThrow(/refusing to serve on 10\.0\.0\.5/);
    expect(() => checkBindable('0.0.0.0', 'x'.repeat(16))).not.toThrow();
    expect(() => checkBindable('127.0.0.1', null)).not.toThrow();
    expect(() => checkBindable('::1', null)).not.toThrow();
  });
});
