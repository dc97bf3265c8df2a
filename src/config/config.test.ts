import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadClientConfig, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('has the documented defaults and freezes the result', () => {
    const c = loadConfig({ env: {}, cwd: '/srv' });
    expect(c).toMatchObject({ host: '0.0.0.0', apiPort: 8080, mqttPort: 8883, httpsPort: 8443, dataDir: '/srv/gatehouse-data', logLevel: 'info', domain: 'localhost', workers: 1, bulkBatchLines: 1000, mqttLimits: {} });
    expect(c.databaseUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes file < env < flags, including the MQTT limits', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ apiPort: 9000, mqttPort: 9001, 'mqttLimits.maxSubscriptionsPerClient': 7 }));
    const c = loadConfig({ env: { GATEHOUSE_MQTT_PORT: '9100', GATEHOUSE_MQTT_MAX_CONNECTIONS_PER_IP: '0' }, flags: { mqttPort: '9200' }, configFile: file, cwd: dir });
    expect(c.apiPort).toBe(9000);
    expect(c.mqttPort).toBe(9200);
    expect(c.mqttLimits).toEqual({ maxSubscriptionsPerClient: 7, maxConnectionsPerIp: 0 });
  });

  it('names the setting and its origin in errors', () => {
    expect(() => loadConfig({ env: { GATEHOUSE_API_PORT: '70000' } })).toThrow(/GATEHOUSE_API_PORT/);
    expect(() => loadConfig({ env: { GATEHOUSE_LOG_LEVEL: 'loud' } })).toThrow(/logLevel/);
    expect(() => loadConfig({ env: { GATEHOUSE_DATABASE_URL: 'mysql://x' } })).toThrow(/postgres/);
    expect(loadConfig({ env: { GATEHOUSE_BULK_BATCH_LINES: '500' } }).bulkBatchLines).toBe(500);
    expect(() => loadConfig({ env: { GATEHOUSE_BULK_BATCH_LINES: '0' } })).toThrow(/GATEHOUSE_BULK_BATCH_LINES .*1-10000/);
    expect(() => loadConfig({ env: { GATEHOUSE_BULK_BATCH_LINES: '20000' } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(loadConfig({ env: {} }).templateMaxLength).toBe(10_240);
    expect(loadConfig({ env: { GATEHOUSE_TEMPLATE_MAX_LENGTH: '65536' } }).templateMaxLength).toBe(65_536);
    expect(loadConfig({ env: {}, flags: { templateMaxLength: '2048' } }).templateMaxLength).toBe(2048);
    expect(() => loadConfig({ env: { GATEHOUSE_TEMPLATE_MAX_LENGTH: '1000' } })).toThrow(/GATEHOUSE_TEMPLATE_MAX_LENGTH must be a whole number 1024-262144, got 1000/);
    expect(() => loadConfig({ env: { GATEHOUSE_TEMPLATE_MAX_LENGTH: '300000' } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    const dir = mkdtempSync(path.join(tmpdir(), 'gh-cfg-'));
    writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ colour: 'red' }));
    expect(() => loadConfig({ env: {}, configFile: 'bad.json', cwd: dir })).toThrow(expect.objectContaining({ code: 'CONFIG_UNKNOWN_SETTING' }));
    expect(() => loadConfig({ env: {}, configFile: 'missing.json', cwd: dir })).toThrow(expect.objectContaining({ code: 'CONFIG_FILE_UNREADABLE' }));
  });
});

describe('loadClientConfig', () => {
  it('takes an http(s) GATEHOUSE_URL without its trailing slashes', () => {
    expect(loadClientConfig({ GATEHOUSE_URL: 'https://gh.example:8443/' }, '/srv')).toEqual({ url: 'https://gh.example:8443', token: undefined, dataDir: '/srv/gatehouse-data' });
    expect(loadClientConfig({ GATEHOUSE_URL: '' }, '/srv').url).toBeUndefined();
  });

  it('refuses a GATEHOUSE_URL that is not the server base URL, naming what to give', () => {
    // '10.0.0.5:8080' parses as a URL whose scheme is "10.0.0.5:": fetch then fails with "Failed to parse URL"
    for (const url of ['10.0.0.5:8080', 'localhost:8080', 'ftp://gh.example', 'http://gh.example?x=1', 'not a url']) {
      expect(() => loadClientConfig({ GATEHOUSE_URL: url }), url).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: `GATEHOUSE_URL must be the server's http:// or https:// URL, e.g. http://127.0.0.1:8080 (got "${url}")` }));
    }
  });
});
