import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/bootstrap/config.ts';
import { ConfigError } from '../../src/domain/errors.ts';

describe('APP_ENV_METRICS_ENABLED', () => {
  it('is on by default and turned off by false, 0 or no', () => {
    expect(loadConfig({}).metricsEnabled).toBe(true);
    expect(loadConfig({ APP_ENV_METRICS_ENABLED: 'true' }).metricsEnabled).toBe(true);
    for (const off of ['false', 'FALSE', '0', 'no']) expect(loadConfig({ APP_ENV_METRICS_ENABLED: off }).metricsEnabled).toBe(false);
  });

  it('stops start-up on anything else, naming the variable', () => {
    let caught: unknown;
    try {
      loadConfig({ APP_ENV_METRICS_ENABLED: 'sometimes' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).variable).toBe('APP_ENV_METRICS_ENABLED');
  });
});
