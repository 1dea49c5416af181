/**
 * A setup file (vitest.config.ts `setupFiles`): after each test file, whatever its tests made through
 * the scratch registry is removed, also when a test failed.
 */
import { afterAll } from 'vitest';
import { cleanUp } from './scratch.js';

afterAll(async () => {
  const failures = await cleanUp();
  if (failures.length > 0) throw new Error(`cleanup failed: ${failures.join('; ')}`);
});
