// vitest globalSetup (vite.config.ts): one kinesis-local for the whole run, handed to test
// files with `inject('kinesisEndpoint')`. Set KINESIS_ENDPOINT to use an already running one.
import type { TestProject } from 'vitest/node';
import { startKinesisLocal } from './kinesis-local.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Plain-HTTP endpoint of the local Kinesis, e.g. `http://127.0.0.1:41234`. */
    kinesisEndpoint: string;
  }
}

/**
 * Starts kinesis-local (unless `KINESIS_ENDPOINT` is set) and returns the teardown that stops it.
 * @example
 * // in a test file
 * import { inject } from 'vitest';
 * const endpoint = inject('kinesisEndpoint');
 */
export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const external = process.env.KINESIS_ENDPOINT;
  if (external !== undefined && external !== '') {
    project.provide('kinesisEndpoint', external);
    return undefined;
  }
  const local = await startKinesisLocal();
  try {
    project.provide('kinesisEndpoint', local.endpoint);
  } catch (error) {
    await local.stop();
    throw error;
  }
  return () => local.stop();
}
