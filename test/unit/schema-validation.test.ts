// schemaOperation (src/schema-validation.ts): the zod schemas of an operation are loaded once, on
// the first call; a failed load (a chunk that could not be fetched, a page gone offline) is not
// cached, so a later call can still succeed; and nothing is sent before the schemas are there.
import { describe, expect, it } from 'vitest';
import { createKinesisClient, send } from '../../src/client.ts';
import { KinesisValidationError } from '../../src/errors.ts';
import { schemaOperation } from '../../src/schema-validation.ts';
import * as shapes from '../../src/shape-schemas.ts';
import { createFakeFetch, json } from '../support/fake-fetch.ts';

function client(fetch = createFakeFetch()) {
  return { fetch, client: createKinesisClient({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 's' }, fetch, retry: { maxAttempts: 1 } }) };
}

describe('schemaOperation', () => {
  it('loads the schemas once, on the first call', async () => {
    let loads = 0;
    const spec = schemaOperation(
      'DescribeStreamSummary',
      async () => {
        loads++;
        return { input: shapes.DescribeStreamSummaryInputSchema(), output: shapes.DescribeStreamSummaryOutputSchema() };
      },
      true,
    );
    expect(loads).toBe(0);
    const { fetch, client: c } = client();
    const summary = { StreamName: 's', StreamARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/s', StreamStatus: 'ACTIVE', RetentionPeriodHours: 24, StreamCreationTimestamp: 1_700_000_000, EnhancedMonitoring: [], OpenShardCount: 1 };
    fetch.push(json({ StreamDescriptionSummary: summary }), json({ StreamDescriptionSummary: summary }));
    await send(c, spec, { StreamName: 's' });
    const second = (await send(c, spec, { StreamName: 's' })) as { StreamDescriptionSummary: { StreamCreationTimestamp: Date } };
    expect(loads).toBe(1);
    expect(second.StreamDescriptionSummary.StreamCreationTimestamp).toEqual(new Date(1_700_000_000_000));
  });

  it('does not keep a failed load: the next call loads again, and nothing was sent meanwhile', async () => {
    let attempt = 0;
    const spec = schemaOperation(
      'DescribeStreamSummary',
      async () => {
        attempt++;
        if (attempt === 1) throw new TypeError('Failed to fetch dynamically imported module');
        return { input: shapes.DescribeStreamSummaryInputSchema(), output: shapes.DescribeStreamSummaryOutputSchema() };
      },
      true,
    );
    const { fetch, client: c } = client();
    await expect(send(c, spec, { StreamName: 's' })).rejects.toThrow('Failed to fetch dynamically imported module');
    expect(fetch.requests).toHaveLength(0);
    // Once loaded, input rules apply before anything is sent.
    await expect(send(c, spec, { StreamName: '' })).rejects.toBeInstanceOf(KinesisValidationError);
    expect(attempt).toBe(2);
    expect(fetch.requests).toHaveLength(0);
  });

  it('refuses to validate before load(): a programming error, not bad input', () => {
    const spec = schemaOperation('DescribeStreamSummary', async () => ({ input: undefined, output: undefined }), false);
    expect(() => spec.input({}, { maxRecordBytes: 1, maxRequestBytes: 1 })).toThrow('schemas used before load()');
    expect(spec.output).toBeUndefined();
  });
});
